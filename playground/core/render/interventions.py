"""HTML and SVG for the Interventions tab: before/after bars and layer-by-head or layer-by-position heatmaps.

Server-side only (no JavaScript); every function takes a result dataclass of `core/text/interventions.py` (data,
never a model). Colours diverge around 0: blue below, orange above, white at 0; every cell's exact value is in its
hover title, and printed in it when the grid is small enough to read.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from playground.core.text.interventions import Ablation, Candidate, Patching, SinkKnockout
from playground.core.text.tokenize import visible

BLUE = (70, 130, 210)
ORANGE = (228, 87, 46)
FONT_PX = 11
MAX_STRENGTH = 0.8  # the strongest cell mixes 80% of its colour into white: dark ink on it keeps 5.5:1 contrast (WCAG AA)
INK = "#1f2328"
MAX_GRID_PX = 640  # a grid wider than this gets smaller cells (the page shrinks it further on a phone)


def _e(text: str) -> str:
    return html.escape(text.replace("\n", "↵"))


def _tok(token: str) -> str:
    """A token's text, escaped, its whitespace made visible (a token of spaces or a newline is otherwise a blank)."""
    return html.escape(visible(token) or "∅")


def _short(label: str, limit: int = 12) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _fill(value: float, scale: float) -> str:
    """The cell's colour: blue for negative, orange for positive, its strength |value| / scale."""
    if not math.isfinite(value):
        return "#999999"
    strength = MAX_STRENGTH * min(1.0, abs(value) / (scale or 1.0))
    r, g, b = ORANGE if value > 0 else BLUE
    mix = [round(255 + (c - 255) * strength) for c in (r, g, b)]
    return f"rgb({mix[0]},{mix[1]},{mix[2]})"


def grid_svg(values: Sequence[Sequence[float]], rows: Sequence[str], cols: Sequence[str], *, what: str, scale: float | None = None,
             digits: int = 2, marked: tuple[int, int] | None = None, element_id: str = "") -> str:
    """A heatmap of `values` [row][col] with row and column labels; `scale`: |value| of full colour (default: the largest);
    `marked`: a cell outlined. `what` names the values in each cell's hover title."""
    nr, nc = len(values), len(values[0]) if values else 0
    cell = max(14, min(40, MAX_GRID_PX // max(nc, 1)))
    left = 10 + 7 * max((len(r) for r in rows), default=2)
    top = 10 + 6 * max((len(_short(c)) for c in cols), default=2)
    reach = 4 * max((len(_short(c)) for c in cols), default=2)  # the last column label leans right as it rises (−60°)
    width, height = left + nc * cell + 6 + reach, top + nr * cell + 6
    flat = [abs(v) for row in values for v in row if math.isfinite(v)]
    scale = scale or max(flat, default=1.0) or 1.0
    ident = f' id="{_e(element_id)}"' if element_id else ""
    out = [f'<svg{ident} class="iv-grid" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="ui-monospace, monospace" font-size="{FONT_PX}">']
    for i, label in enumerate(rows):
        out.append(f'<text x="{left - 4}" y="{top + i * cell + cell / 2 + 4:.1f}" text-anchor="end" fill="{INK}">{_e(label)}</text>')
    for j, label in enumerate(cols):
        x, y = left + j * cell + cell / 2 + 4, top - 4
        out.append(f'<text x="{x:.1f}" y="{y}" transform="rotate(-60 {x:.1f} {y})" fill="{INK}">{_e(_short(label))}</text>')
    show = cell >= 30
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            x, y = left + j * cell, top + i * cell
            out.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{_fill(v, scale)}" stroke="#ffffff">'
                       f'<title>{_e(rows[i])} · {_e(cols[j])}: {what} {v:.4g}</title></rect>')
            if show:
                out.append(f'<text x="{x + cell / 2}" y="{y + cell / 2 + 4}" text-anchor="middle" font-size="10" fill="{INK}" '
                           f'pointer-events="none">{v:.{digits}f}</text>')
    if marked is not None:
        i, j = marked
        out.append(f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell}" height="{cell}" fill="none" stroke="#1f2328" '
                   'stroke-width="2.5"/>')
    out.append("</svg>")
    legend = (f'<div class="iv-legend"><span class="iv-swatch" style="background:{_fill(-scale, scale)}"></span>{-scale:.3g} '
              f'<span class="iv-swatch" style="background:#ffffff"></span>0 '
              f'<span class="iv-swatch" style="background:{_fill(scale, scale)}"></span>{scale:.3g}</div>')
    return "".join(out) + legend


def _bars(rows: Sequence[Candidate], heading: str, mark: str | None = None) -> str:
    top = max((c.prob for c in rows), default=1.0) or 1.0
    body = "".join(
        f'<div class="lm-bar-row{" lm-chosen" if c.token == mark else ""}"><span class="lm-bar-label">{_tok(c.token)}</span>'
        f'<span class="lm-bar" style="width:{140 * c.prob / top:.0f}px"></span><span class="lm-bar-value">{c.prob:.3f}</span></div>'
        for c in rows)
    return f'<div class="lm-bars"><div class="lm-bars-title">{_e(heading)}</div>{body}</div>'


def _tokens(faces: Sequence[str], other: Sequence[str] | None = None) -> str:
    """Token chips; where `other` differs at a position, the chip is marked (the patching pair's difference)."""
    chips = []
    for i, face in enumerate(faces):
        differs = other is not None and i < len(other) and other[i] != face
        chips.append(f'<span class="lm-chip{" iv-differs" if differs else ""}" title="position {i}">{_e(face)}</span>')
    return f'<div class="lm-chips">{"".join(chips)}</div>'


def _notes(notes: Sequence[str]) -> str:
    return "".join(f'<div class="att-note">{_e(n)}</div>' for n in notes)


def _prob(rows: Sequence[Candidate], token: str) -> float | None:
    return next((c.prob for c in rows if c.token == token), None)


def ablation_html(r: Ablation) -> str:
    """Named heads knocked out: the next-token distribution before and after, and what changed."""
    heads = ", ".join(f"{layer}.{head}" for layer, head in r.heads)
    after = _prob(r.ablated or [], r.clean_token)
    after_text = f"{after:.3f}" if after is not None else f"below the top {len(r.ablated or [])}"
    summary = (f"Knocked out ({r.mode}): head{'s' if len(r.heads) > 1 else ''} {heads}. The clean top token "
               f"<b>{_tok(r.clean_token)}</b> had probability {r.clean[0].prob:.3f}; after: {after_text}. "
               f"Change in its log-probability: <b>{r.delta_logprob:+.3f}</b> nats; KL(clean ‖ ablated) = <b>{r.kl:.4f}</b> nats.")
    return (f'<div class="iv-view" id="iv-ablation-result">{_tokens(r.faces)}<p>{summary}</p><div class="lm-bars-pair">'
            f'{_bars(r.clean, "as the model stands", r.clean_token)}{_bars(r.ablated or [], "heads knocked out", r.clean_token)}'
            f"</div>{_notes(r.notes)}</div>")


def strongest(values: Sequence[Sequence[float]], most: str = "abs") -> tuple[int, int]:
    """(row, col) of the largest |value| (`abs`) or the smallest value (`min`)."""
    cells = [(i, j) for i in range(len(values)) for j in range(len(values[i]))]
    key = (lambda c: abs(values[c[0]][c[1]])) if most == "abs" else (lambda c: -values[c[0]][c[1]])
    return max(cells, key=key)


def sweep_html(r: Ablation) -> str:
    """Every head knocked out alone: two layer x head maps, the change in the clean top token's log-probability and KL."""
    rows = [f"layer {i}" for i in range(r.layers)]
    cols = [f"head {j}" for j in range(r.n_heads)]
    worst = strongest(r.delta_logprob, "min")
    most = strongest(r.kl)
    summary = (f"Each of the {r.layers * r.n_heads} heads knocked out alone ({r.mode}), reading the clean top token "
               f"<b>{_tok(r.clean_token)}</b> (p = {r.clean[0].prob:.3f}). Its log-probability falls most when head "
               f"<b>{worst[0]}.{worst[1]}</b> is gone ({r.delta_logprob[worst[0]][worst[1]]:+.3f} nats); the whole distribution "
               f"moves most without head <b>{most[0]}.{most[1]}</b> (KL {r.kl[most[0]][most[1]]:.4f} nats).")
    delta = grid_svg(r.delta_logprob, rows, cols, what="Δ log p", marked=worst, element_id="iv-sweep-delta")
    kl = grid_svg(r.kl, rows, cols, what="KL", digits=3, marked=most, element_id="iv-sweep-kl")
    return (f'<div class="iv-view" id="iv-sweep-result">{_tokens(r.faces)}<p>{summary}</p><div class="iv-panels">'
            f'<figure><figcaption>Δ log p of {_tok(r.clean_token)} (blue: the head was helping)</figcaption>{delta}</figure>'
            f"<figure><figcaption>KL(clean ‖ ablated), nats</figcaption>{kl}</figure></div>{_notes(r.notes)}</div>")


def patching_html(r: Patching) -> str:
    """The recovery map: where the clean run's information lives, layer by position (or layer by head)."""
    rows = [f"layer {i}" for i in range(len(r.recovery))]
    cols = [f"{i}:{f}" for i, f in enumerate(r.faces)] if r.what == "residual" else [f"head {j}" for j in range(len(r.recovery[0]))]
    best = strongest(r.recovery)
    axis = "the residual stream entering each layer, one position at a time" if r.what == "residual" else \
        "each head's output, at every position"
    summary = (f"Logit difference LD = logit({_tok(r.answer)}) − logit({_tok(r.wrong)}) at the last position: clean "
               f"<b>{r.ld_clean:.3f}</b>, corrupted <b>{r.ld_corrupt:.3f}</b>. Each cell runs the corrupted prompt with {axis} "
               f"taken from the clean run: (LD_patched − LD_corrupt) / (LD_clean − LD_corrupt); 1 = the clean answer is back. "
               f"Largest: {r.recovery[best[0]][best[1]]:.2f} at {_e(rows[best[0]])}, {_e(cols[best[1]])}.")
    grid = grid_svg(r.recovery, rows, cols, what="recovery", scale=max(1.0, max(abs(v) for row in r.recovery for v in row)),
                    marked=best, element_id="iv-patch-grid")
    pair = (f'<div class="iv-pair"><div><b>clean</b>{_tokens(r.faces, r.corrupt_faces)}</div>'
            f'<div><b>corrupted</b>{_tokens(r.corrupt_faces, r.faces)}</div></div>')
    return (f'<div class="iv-view" id="iv-patch-result">{pair}<p>{summary}</p><figure><figcaption>recovery, '
            f'{"layer x position" if r.what == "residual" else "layer x head"}</figcaption>{grid}</figure>{_notes(r.notes)}</div>')


def sink_html(r: SinkKnockout) -> str:
    """How much each head parks on the first token, and the prediction with that attention taken away."""
    rows = [f"layer {i}" for i in range(len(r.sink_share))]
    cols = [f"head {j}" for j in range(len(r.sink_share[0]))]
    layers = "every layer" if len(r.layers) == len(rows) else "layer" + ("s " if len(r.layers) > 1 else " ") + \
        ", ".join(map(str, r.layers))
    summary = (f"The first token <b>{_e(r.faces[0])}</b> gets, on average over the tokens after it, the share of attention "
               f"in each cell. With that attention taken away in {layers} (α_i0 = 0, each row renormalized), bits per character "
               f"of the text go from <b>{r.bits_per_char_clean:.3f}</b> to <b>{r.bits_per_char_knocked_out:.3f}</b>.")
    grid = grid_svg(r.sink_share, rows, cols, what="attention on the first token", scale=1.0, element_id="iv-sink-grid")
    top = r.clean[0].token
    return (f'<div class="iv-view" id="iv-sink-result">{_tokens(r.faces)}<p>{summary}</p><div class="iv-panels"><figure><figcaption>'
            f"mean attention on the first token</figcaption>{grid}</figure><div class=\"lm-bars-pair\">"
            f'{_bars(r.clean, "next token, as the model stands", top)}{_bars(r.knocked_out, "first token knocked out", top)}'
            f"</div></div>{_notes(r.notes)}</div>")
