"""HTML for mixture-of-experts routing: each layer's tokens coloured by their top expert, and the experts' load."""

from __future__ import annotations

import html

from playground.core.text.routing import ExpertTokens, Routing

# Okabe-Ito and two more, light enough behind dark ink (each expert keeps its colour in every layer)
EXPERT_COLOURS = ("#9ecae9", "#f6b87a", "#8fd6b8", "#f1a6c9", "#d9d36e", "#b9a7e0", "#c9c9c9", "#f59d8f")


def _e(text: str) -> str:
    return html.escape(text)


def routing_html(r: Routing) -> str:
    """A row per layer: the tokens, each on its top expert's colour, the experts it went to and their probabilities in its
    hover title; then each layer's load over the experts."""
    legend = " ".join(f'<span class="rt-chip" style="background:{EXPERT_COLOURS[e % len(EXPERT_COLOURS)]}">expert {e}</span>'
                      for e in range(r.experts))
    rows = []
    for layer, (picks, probs) in enumerate(zip(r.chosen, r.router_probs)):
        chips = []
        for i, face in enumerate(r.faces):
            top = picks[i][0]
            title = ", ".join(f"expert {e}: {probs[i][e]:.2f}" for e in picks[i])
            chips.append(f'<span class="rt-chip" style="background:{EXPERT_COLOURS[top % len(EXPERT_COLOURS)]}" '
                         f'title="{_e(face)} → {_e(title)}">{_e(face)}<sub>{top}</sub></span>')
        load = " · ".join(f"{e}: {share:.0%}" for e, share in enumerate(r.load[layer]))
        rows.append(f'<div class="rt-layer"><b>layer {layer}</b> <small>load {load}</small><div>{"".join(chips)}</div></div>')
    notes = "".join(f'<div class="att-note">{_e(n)}</div>' for n in r.notes)
    return (f'<div class="lm-gen rt-view" id="rt-result"><p>{r.experts} experts a layer, {r.top_k} a token: each token sits on its '
            f"top expert's colour (the small number); hover for the experts it went to and the router's probabilities. The load "
            f"is the share of tokens each expert got (a layer's shares sum to {r.top_k}).</p><p>{legend}</p>{''.join(rows)}{notes}</div>")


MAX_EXPERTS_SHOWN = 16  # rows of the expert-token table (the JSON download has every expert)


def expert_tokens_html(x: ExpertTokens) -> str:
    """A table, an expert a row and a layer a column: the tokens each expert most often gets as their first choice,
    "token n/m" (sent here first n of the m times it occurs)."""
    shown = min(x.experts, MAX_EXPERTS_SHOWN)
    head = "".join(f"<th>layer {layer}</th>" for layer in range(len(x.top)))
    rows = []
    for e in range(shown):
        colour = EXPERT_COLOURS[e % len(EXPERT_COLOURS)]
        cells = []
        for layer, per_expert in enumerate(x.top):
            chips = " ".join(f'<span class="rt-chip" style="background:{colour}" title="sent to expert {e} first {n} of the {m} '
                             f'times it occurs">{_e(face)} <small>{n}/{m}</small></span>' for face, n, m in per_expert[e])
            cells.append(f"<td><small>{x.load[layer][e]:.0%} of tokens</small><br>{chips or '<small>none often enough</small>'}</td>")
        rows.append(f"<tr><th>expert {e}</th>{''.join(cells)}</tr>")
    more = f"<p><small>The first {shown} of {x.experts} experts.</small></p>" if shown < x.experts else ""
    return (f'<div class="lm-gen rt-view" id="rt-experts"><p><b>What each expert\'s tokens have in common.</b> Over {x.tokens:,} '
            f"tokens of {_e(x.source)}, the tokens each expert most often gets as its first choice, by the share of the "
            f"token's occurrences (n/m: first choice here n of the m times it occurs; tokens seen at least 3 times). A frequent "
            f"word visits every expert now and then; a token one expert gets nearly every time says what that expert is "
            f'for.</p><table class="rt-table"><tr><th></th>{head}</tr>{"".join(rows)}</table>{more}</div>')
