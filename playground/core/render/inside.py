"""The Inside tab's pictures, drawn on the server from an `Inside` result (data in, HTML/SVG out).

Vectors are heat strips: one cell per dimension on a diverging blue-white-orange scale (a colour-blind-safe pair),
full colour at ±2.5 x the vector's RMS (its caption states that, its norm and its largest |value|).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np

from playground.core.render.lm import line_chart_svg, projection_svg
from playground.core.text.inside import Inside, Neighbour

NEG, POS = (33, 102, 172), (179, 88, 6)  # blue for negative, orange for positive


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


def _colour(value: float, top: float) -> str:
    f = 0.0 if top == 0 else max(-1.0, min(1.0, value / top))
    r, g, b = POS if f > 0 else NEG
    a = abs(f)
    return f"rgb({255 + (r - 255) * a:.0f},{255 + (g - 255) * a:.0f},{255 + (b - 255) * a:.0f})"


def _range(a: np.ndarray) -> float:
    """The value that gets the full colour: 2.5 x the vector's RMS (a few large dimensions would wash the rest out to white)."""
    return float(2.5 * np.sqrt(np.mean(a * a))) if a.size else 0.0


def _strip_png(a: np.ndarray, top: float) -> str:
    """The vector as a 1-pixel-high PNG (a data URI): one pixel per dimension, scaled up by the browser without smoothing.
    A few hundred bytes where an SVG cell per dimension took tens of kilobytes (128 tokens x k and v). `top`: the value
    drawn in full colour (`_range(a)`)."""
    import base64
    import io

    from PIL import Image

    f = np.clip(a / top, -1, 1) if top > 0 else np.zeros_like(a)
    ends = np.where(f[:, None] > 0, np.array(POS, dtype=np.float64), np.array(NEG, dtype=np.float64))
    rgb = 255 + (ends - 255) * np.abs(f)[:, None]
    buffer = io.BytesIO()
    Image.fromarray(rgb.round().astype(np.uint8)[None, :, :], "RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def strip(values: Sequence[float] | None, label: str = "", width: int = 360, height: int = 14) -> str:
    """A vector as a row of coloured cells, with its norm, largest |value| and size beside it."""
    if values is None:
        return f'<div class="ins-strip"><span class="ins-label">{_e(label)}</span> <i>none</i></div>'
    n = len(values)
    top = max((abs(v) for v in values), default=0.0)
    norm = math.sqrt(sum(v * v for v in values))
    a = np.asarray(values, dtype=np.float64)
    full = _range(a)
    meta = f"‖·‖ = {norm:.3g} · max |v| = {top:.3g} · full colour at ±{full:.3g} · {n} dims"
    return (
        f'<div class="ins-strip"><span class="ins-label">{_e(label)}</span>'
        f'<img class="ins-cells" src="{_strip_png(a, full)}" width="{width}" height="{height}" style="height:{height}px" '
        f'alt="{_e(label)}: {_e(meta)}" '
        f'title="{_e(meta)}">'
        f'<span class="ins-meta">{_e(meta)}</span></div>'
    )


def embeddings_view(r: Inside, neighbours: Sequence[Neighbour], points: Sequence[tuple[str, float, float]] | None) -> str:
    e = r.embedding
    tok = (r.faces or r.tokens)[r.token]
    pos_note = {
        "gpt2": "GPT-2 learns an absolute position embedding per position and adds it.",
        "bert": "BERT adds a learned position embedding and a token-type (segment) embedding, then a LayerNorm.",
        "t5": "T5 adds no position embedding: it adds a learned relative-position bias to the attention scores instead (below).",
        "llama": "Llama adds no position embedding: inside attention it rotates every query and key by an angle that grows with "
                 "the token's position (RoPE, section 2), so a score depends on how far apart two tokens are.",
    }[r.family]
    parts = [
        f'<div class="ins-view"><div class="ins-title">Token {r.token}: {_e(tok)}</div><p>{_e(pos_note)}</p>',
        strip(e.token, "token embedding"),
        strip(e.position, f"position {r.token} embedding") if e.position is not None else "",
        strip(e.token_type, "token-type 0 embedding") if e.token_type is not None else "",
        strip(e.sum, "their sum: the first layer's input"),
    ]
    rows = "".join(f"<tr><td>{_e(n.token)}</td><td>{n.cosine:.3f}</td></tr>" for n in neighbours)
    parts.append(f'<table class="ins-table"><caption>Nearest tokens in the input embedding matrix (cosine)</caption>'
                 f"<tr><th>token</th><th>cosine</th></tr>{rows}</table>")
    if r.relative_bias is not None:
        parts.append(relative_bias_view(r.relative_bias, r.stack))
    parts.append("</div>")
    if points:
        parts.append(projection_svg([w for w, _, _ in points], np.array([[x, y] for _, x, y in points])))
    return "".join(parts)


def relative_bias_view(table: dict, stack: str) -> str:
    """T5's bias b(j − i) per head (rows) and distance (columns), added to every layer's scores."""
    values = table["values"]
    top = max((abs(v) for row in values for v in row), default=0.0)
    head = "".join(f"<th>{d}</th>" if d % 8 == 0 else "<th></th>" for d in table["distances"])
    rows = []
    for h, row in enumerate(values):
        cells = "".join(
            f'<td style="background:{_colour(v, top)}" title="distance {d}: {v:.3f}"></td>' for d, v in zip(table["distances"], row)
        )
        rows.append(f"<tr><th>head {h}</th>{cells}</tr>")
    rows = "".join(rows)
    where = "the decoder's (one-sided: it sees only the past)" if stack == "decoder" else "the encoder's (both directions)"
    return (f'<div class="ins-scroll"><table class="ins-bias"><caption>Relative-position bias of {where}: distance j − i (columns) × '
            f'head (rows); blue lowers a score, orange raises it</caption><tr><th></th>{head}</tr>{rows}</table></div>')


def head_view(r: Inside) -> str:
    """One head, step by step, for the query token: x, q, then per key token k_j, v_j, the score and the weight."""
    d = len(r.q)
    norm = {"gpt2": "x = LayerNorm(h) (GPT-2 normalizes before attention)", "t5": "x = RMSNorm(h) (T5 normalizes before attention)",
            "bert": "x = h (BERT normalizes after attention, so the head reads the layer's input itself)",
            "llama": "x = RMSNorm(h) = h / √(mean(h²) + ε) · g (Llama normalizes before attention; no mean subtracted, no bias)"}[r.family]
    scale = (
        f"scale = 1/√d_k = 1/√{d} = {r.scale:.4g}" if r.family != "t5" else "no scale: T5 folds 1/√d_k into its initialisation (scale = 1)"
    )
    steps = [
        f'<div class="ins-view"><div class="ins-title">Layer {r.layer}, head {r.head}, query token {r.token} '
        f'({_e((r.faces or r.tokens)[r.token])})</div>',
        f"<p>{_e(norm)}; q = W_Q x, k_j = W_K x_j, v_j = W_V x_j ({d} numbers each); score_j = q·k_j; {_e(scale)}"
        + ("; + the relative-position bias b(j − i)" if r.position_bias is not None else "")
        + ("; the causal mask sets later tokens to −∞" if not all(r.mask) else "")
        + "; weights = softmax; output = Σ_j weight_j v_j.</p>",
        strip(r.x, "x (normalized input)"),
        strip(r.q, "q"),
    ]
    top = max(r.weights) or 1.0
    body = []
    for j, tok in enumerate(r.faces or r.tokens):
        bias = f"{r.position_bias[j]:+.3f}" if r.position_bias is not None else ""
        logit = r.scores[j] * r.scale + (r.position_bias[j] if r.position_bias is not None else 0.0)
        allowed = r.mask[j]
        body.append(
            f'<tr class="{"ins-query" if j == r.token else ""}"><td>{j}</td><td '
            f'class="ins-tok">{_e(tok)}</td><td>{strip(r.k[j], "", 120, 10)}</td>'
            f"<td>{strip(r.v[j], '', 120, 10)}</td><td>{r.scores[j]:.3f}</td>" + (f"<td>{bias}</td>" if bias else "") +
            f"<td>{f'{logit:.3f}' if allowed else '−∞ (masked)'}</td>"
            f'<td><span class="ins-bar" style="width:{80 * r.weights[j] / top:.0f}px"></span> {r.weights[j]:.3f}</td></tr>'
        )
    bias_head = "<th>+ bias b(j−i)</th>" if r.position_bias is not None else ""  # a column only for a model that has a bias
    steps.append(
        f'<div class="ins-scroll"><table class="ins-table ins-steps"><tr><th>j</th><th>token</th><th>k_j</th><th>v_j</th><th>q·k_j</th>'
        f"{bias_head}<th>{'× scale + bias' if bias_head else '× scale'}</th><th>softmax weight</th></tr>{''.join(body)}</table></div>"
    )
    if r.rope is not None:
        steps.append(rope_view(r))
    steps += [strip(r.head_output, "head output Σ weight_j v_j"), strip(r.head_projected, "through this head's slice of W_O"), "</div>"]
    return "".join(steps)


def rope_scores(q: Sequence[float], k: Sequence[float], base: float, distances: int = 64) -> list[float]:
    """q·k after rotating q by each distance Δ = 0..distances-1 and k by 0 (RoPE's rotate-half layout: pair (i, i + d/2)
    turned by Δ·base^(−2i/d)): the score of the same two vectors as they move apart. Only Δ matters: rotating both by
    the same extra angle changes nothing.

    >>> [round(s, 3) for s in rope_scores([1.0, 0.0], [1.0, 0.0], 10_000.0, 3)]   # d = 2: one pair, θ_0 = 1: cos Δ
    [1.0, 0.54, -0.416]
    """
    qa, ka = np.asarray(q, dtype=np.float64), np.asarray(k, dtype=np.float64)
    d = len(qa)
    inv = base ** (-np.arange(0, d, 2) / d)
    out = []
    for delta in range(distances):
        ang = np.concatenate([inv, inv]) * delta
        rotated = qa * np.cos(ang) + np.concatenate([-qa[d // 2:], qa[: d // 2]]) * np.sin(ang)
        out.append(float(rotated @ ka))
    return out


def rope_view(r: Inside) -> str:
    """Rotary positions for this head: q and the query token's own k before and after rotation, the angle of each pair."""
    rope = r.rope
    d = len(rope["q_rotated"])
    group = "" if r.n_kv_heads is None else (
        f" Grouped-query attention: this query head reads key/value head {r.kv_head} of {r.n_kv_heads} (the k and v above are "
        "that head's, shared with the other query heads of its group).")
    angles = ", ".join(f"{a:.3g}" for a in rope["angles"][:6]) + (" ..." if len(rope["angles"]) > 6 else "")
    return "".join([
        f"<p><b>RoPE</b> (Su et al. 2021): dimension pairs of q and k are rotated by θ_i·position, θ_i = base^(−2i/d) with base "
        f"{rope['base']:g}, d = {d}; for the query token (position {r.token}) the angles are {angles} radians. Rotating both "
        f"makes q·k depend on the distance between the tokens, not where they are.{_e(group)}</p>",
        strip(rope["q_unrotated"], "q before rotation"), strip(rope["q_rotated"], "q rotated (the q above)"),
        strip(rope["k_unrotated"][r.token], f"k of token {r.token} before rotation"),
        strip(rope["k_rotated"][r.token], f"k of token {r.token} rotated"),
        "<p>The same q and k, moved apart: their score q·k when the query sits Δ tokens after the key (RoPE alone, "
        "no other change). It depends on Δ only, and the high-frequency pairs make it swing at short range while the "
        "slow ones carry far.</p>",
        '<div class="ins-pair" style="display:flex;flex-wrap:wrap;gap:12px">',
        '<div style="flex:1 1 360px;max-width:420px"><b>RoPE (this model)</b>',
        line_chart_svg({"q·k": (list(range(64)), rope_scores(rope["q_unrotated"], rope["k_unrotated"][r.token], rope["base"]))},
                       "distance Δ (tokens)", "score", width=400, height=200),
        "</div>", _learned_positions(r.learned_positions), "</div>",
    ])


def _learned_positions(learned: dict | None) -> str:
    """GPT-2's learned position embeddings beside the RoPE chart: cos(p_t, p_{t−Δ}) for a query at a few positions t."""
    if not learned:
        return ""
    series = {f"query at position {t}": (list(range(len(c))), c) for t, c in learned["curves"].items()}
    return (f"<div style='flex:1 1 360px;max-width:420px'><b>Learned positions ({_e(learned['model'])})</b>"
            + line_chart_svg(series, "distance Δ (tokens)", "cos(p_t, p_t−Δ)", width=400, height=200)
            + f"<p>GPT-2 adds a learned vector p_t for each position (its context: {learned['context']} positions). How alike "
              "two positions are depends on where they are, not only how far apart: the curves differ by t, and nothing "
              "past the context exists. RoPE's score depends on Δ alone, at any position.</p></div>")


def block_view(r: Inside) -> str:
    """The block: every head through W_O, the residual add, the MLP, the second residual add."""
    placement = ("pre-norm: h' = h + Attention(norm(h)) + MLP(norm(h + Attention))" if r.norm_placement == "pre"
                 else "post-norm: m = LayerNorm(h + Attention(h)); h' = LayerNorm(m + MLP(m))")
    act = {"gelu_new": "GELU (tanh approximation)", "gelu": "GELU", "relu": "ReLU"}.get(r.activation, r.activation)
    if r.family == "llama":
        act = "SwiGLU: W_down (silu(W_gate y) ⊙ W_up y), y = RMSNorm(h + attention); the neurons are silu(W_gate y) ⊙ W_up y"
    rows = "".join(f"<tr><td>{n.index}</td><td>{n.activation:.3f}</td></tr>" for n in r.neurons)
    table = ('<table class="ins-table"><caption>The MLP\'s most active neurons for this token (after the activation)</caption>'
             f"<tr><th>neuron</th><th>activation</th></tr>{rows}</table>")
    if r.experts:
        x = r.experts
        act = (f"a mixture of {x['count']} experts: the router scores them, p = softmax(W_r y), y = RMSNorm(h + attention); the "
               f"top {x['top_k']} run, each a SwiGLU W_down,e (silu(W_gate,e y) ⊙ W_up,e y), their outputs mixed by their p "
               "renormalized to sum to 1; the others do nothing for this token")
        ran = set(x["chosen"])
        rows = "".join(f"<tr><td>expert {e}</td><td>{p:.3f}</td><td>{'ran' if e in ran else ''}</td></tr>"
                       for e, p in enumerate(x["router_probs"]))
        table = (f'<table class="ins-table"><caption>The router, for this token: each expert\'s probability; the top '
                 f"{x['top_k']} ran</caption><tr><th>expert</th><th>p</th><th></th></tr>{rows}</table>")
    cross = strip(r.cross_attention_output, "cross-attention output (reads the encoder)") if r.cross_attention_output is not None else ""
    return (
        f'<div class="ins-view"><div class="ins-title">Layer {r.layer}: the block, for token {r.token}</div><p>{_e(placement)}. '
        f"MLP activation: {_e(act)}.</p>"
        + strip(r.hidden_in, "h: the hidden state before the layer")
        + strip(r.attention_output, "all heads through W_O (attention output)")
        + cross
        + strip(r.mlp_output, "MLP output")
        + strip(r.hidden_out, "h': the hidden state after the layer")
        + table + "</div>"
    )


def residual_chart(r: Inside) -> str:
    layers = [s.layer for s in r.residual]
    series = {"‖h‖ before the layer": (layers, [s.hidden_in_norm for s in r.residual]),
              "‖attention added‖": (layers, [s.attention_norm for s in r.residual]),
              "‖MLP added‖": (layers, [s.mlp_norm for s in r.residual])}
    return line_chart_svg(series, "layer", "norm", width=460, height=260, mark=(r.layer, f"layer {r.layer}"))
