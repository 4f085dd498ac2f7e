"""HTML for the GPT, BERT and T5 tabs: candidate bars, token chips, beam steps, a similarity heatmap.

Server-side HTML only (no JavaScript); every function takes data (ids already turned into
strings by the caller), never a model or a tokenizer.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np

from playground.core.text.generation import GenStep
from playground.core.text.seq2seq import BeamStep


def _e(text: str) -> str:
    return html.escape(text.replace("\n", "↵"))


def chips(tokens: Sequence[str], classes: Sequence[str] | None = None, title: str = "") -> str:
    """Tokens as chips; `classes` adds a CSS class per token (e.g. "lm-new", "lm-forced")."""
    classes = classes or [""] * len(tokens)
    inner = "".join(f'<span class="lm-chip {c}">{_e(t)}</span>' for t, c in zip(tokens, classes))
    head = f'<div class="lm-chips-title">{_e(title)}</div>' if title else ""
    return f'<div class="lm-chips">{head}{inner}</div>'


def _bars(rows: Sequence[tuple[str, float, bool]], heading: str) -> str:
    top = max((p for _, p, _ in rows), default=1.0) or 1.0
    body = "".join(
        f'<div class="lm-bar-row{" lm-chosen" if chosen else ""}"><span class="lm-bar-label">{_e(label)}</span>'
        f'<span class="lm-bar" style="width:{160 * p / top:.0f}px"></span><span class="lm-bar-value">{p:.3f}</span></div>'
        for label, p, chosen in rows
    )
    return f'<div class="lm-bars"><div class="lm-bars-title">{_e(heading)}</div>{body}</div>'


def step_bars(step: GenStep, token_text: Sequence[str], raw_text: Sequence[str], sampled: bool = True) -> str:
    """The candidates of one generation step before and after the logits processors, the chosen one marked.

    `token_text[i]` / `raw_text[i]` are the display strings of `step.candidates[i]` / `step.raw_candidates[i]`;
    `sampled`: the token was drawn at random (sampling) rather than taken as the most likely (greedy).
    """
    after = [(t, c.prob, c.token_id == step.token_id) for t, c in zip(token_text, step.candidates)]
    before = [(t, c.raw_prob, c.token_id == step.token_id) for t, c in zip(raw_text, step.raw_candidates)]
    how = ("forced by you" if step.forced else "drawn at random from the distribution on the right (sampling)" if sampled
           else "the most likely one (greedy decoding)")
    return (f'<div class="lm-step"><div class="lm-step-title">Step {step.index + 1}: the highlighted token was {how}</div>'
            f'<div class="lm-bars-pair">{_bars(before, "model: softmax of the logits")}'
            f'{_bars(after, "after the sampling rules: only the tokens they kept" if sampled else "after repetition penalty")}</div></div>')


def beam_steps(steps: Sequence[BeamStep], text_of) -> str:
    """Every beam-search step: the live beams with their scores, then each candidate and its fate."""
    parts = []
    for step in steps:
        live = "".join(f'<li><span class="lm-beam">{_e(text_of(b.ids) or "∅")}</span> <small>{b.score:.3f}</small></li>' for b in step.live)
        cands = "".join(
            f'<li class="lm-{c.status}"><span class="lm-beam">{_e(text_of(c.ids))}</span> <small>{c.score:.3f} · {c.status}</small></li>'
            for c in step.candidates
        )
        parts.append(f'<div class="lm-beam-step"><div class="lm-step-title">Step {step.index + 1}</div>'
                     f'<div class="lm-beam-cols"><div><b>live beams</b><ol>{live}</ol></div>'
                     f'<div><b>best extensions</b><ol>{cands}</ol></div></div></div>')
    legend = ('<div class="lm-legend"><span class="lm-live">live: kept for the next step</span> '
              '<span class="lm-pruned">pruned: fell out of the best k</span> '
              '<span class="lm-finished">finished: ended with &lt;/s&gt;, set aside</span> · scores are sums of log-probs</div>')
    return f'<div class="lm-beam-steps">{legend}{"".join(parts)}</div>'


def similarity_heatmap(labels: Sequence[str], matrix: np.ndarray) -> str:
    """A cosine-similarity matrix as a coloured table (darker = more similar)."""
    lo = float(matrix.min())
    head = "".join(f'<th title="{_e(s)}">{i + 1}</th>' for i, s in enumerate(labels))
    rows = []
    for i, s in enumerate(labels):
        cells = []
        for j in range(len(labels)):
            v = float(matrix[i, j])
            shade = (v - lo) / ((1.0 - lo) or 1.0)
            # white to a mid blue, dark ink throughout: at least 4.8:1 contrast on every cell (WCAG AA)
            cells.append(
                f'<td style="background:rgba(70,130,210,{shade:.2f});color:#111" title="{_e(labels[i])} · {_e(labels[j])}">{v:.2f}</td>'
            )
        rows.append(f'<tr><th class="lm-sim-label">{i + 1}. {_e(s[:60])}</th>{"".join(cells)}</tr>')
    return f'<table class="lm-sim"><tr><th></th>{head}</tr>{"".join(rows)}</table>'


def _short(text: str, limit: int = 24) -> str:
    """`text` cut to `limit` characters, with an ellipsis when it was cut (the whole text is in the hover title).

    >>> _short("Bring me a cup of sack, and quickly."), _short("Short.")
    ('Bring me a cup of sack,…', 'Short.')
    """
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def place_labels(anchors: Sequence[tuple[float, float]], texts: Sequence[str], width: float, height: float,
                 char_px: float = 6.8, line_px: float = 13) -> list[tuple[float, float]]:
    """(x, y) of each label's baseline start beside its point: right of it, else left, above or below, whichever first
    overlaps no label placed before and stays inside width x height (else the first choice). Greedy, in order.

    >>> place_labels([(10, 50), (12, 50)], ["a", "b"], 200, 100)  # the second point's label moves off the first's
    [(18, 54), (20, 41)]
    """
    placed: list[tuple[float, float, float, float]] = []
    out = []
    for (x, y), text in zip(anchors, texts):
        w = len(text) * char_px
        choices = [(x + 8, y + 4), (x + 8, y - 9), (x + 8, y + 17), (x - 8 - w, y + 4), (x - 8 - w, y - 9), (x - 8 - w, y + 17),
                   (x + 8, y - 22), (x + 8, y + 30), (x - 8 - w, y - 22), (x - 8 - w, y + 30)]

        def free(c: tuple[float, float], w: float = w) -> bool:
            left, top = c[0], c[1] - line_px + 3
            inside = left >= 2 and top >= 2 and left + w <= width - 2 and top + line_px <= height - 2
            return inside and all(left + w <= a or a + aw <= left or top + line_px <= b or b + bh <= top for a, b, aw, bh in placed)

        chosen = next((c for c in choices if free(c)), choices[0] if x + 8 + w <= width - 2 else choices[3])
        placed.append((chosen[0], chosen[1] - line_px + 3, w, line_px))
        out.append((round(chosen[0], 1), round(chosen[1], 1)))
    return out


def projection_svg(labels: Sequence[str], points: np.ndarray, size: int = 360) -> str:
    """A 2-D scatter of `points` [N, 2], each labelled with its number and the start of its sentence; labels are placed
    so they do not overlap and stay inside the frame."""
    pad, extra = 40, 160
    width = size + extra
    lo, hi = points.min(0), points.max(0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    xy = pad + (points - lo) / span * (size - 2 * pad)
    anchors = [(float(x), float(size - y)) for x, y in xy]
    texts = [f"{i + 1}. {_short(s)}" for i, s in enumerate(labels)]
    spots = place_labels(anchors, texts, width, size - 16)  # the bottom 16 px hold the axis title
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#1f4e9c"><title>{_e(s)}</title></circle>'
                   for (x, y), s in zip(anchors, labels))
    names = "".join(f'<text x="{tx}" y="{ty}" font-size="12">{_e(t)}<title>{_e(s)}</title></text>'
                    for (tx, ty), t, s in zip(spots, texts, labels))
    return (
        f'<svg class="lm-projection" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{size}" viewBox="0 0 {width} {size}">'
        f'<rect x="1" y="1" width="{width - 2}" height="{size - 2}" fill="none" stroke="#ccc"/>{dots}{names}'
        f'<text x="{size / 2:.0f}" y="{size - 8}" font-size="11" text-anchor="middle" fill="#666">principal component 1</text>'
        f'<text x="14" y="{size / 2:.0f}" font-size="11" text-anchor="middle" fill="#666" transform="rotate(-90 14 {size / 2:.0f})">'
        "principal component 2</text></svg>"
    )


# Okabe-Ito, a palette colour-blind readers tell apart, the shades with at least 3:1 contrast on white (WCAG's bar for
# graphics); each series also has its own dash, so no line is told from another by colour alone.
CHART_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7")
CHART_DASHES = ("", "7 3", "2 3", "9 3 2 3")


def line_chart_svg(series: dict[str, tuple[Sequence[float], Sequence[float]]], x_label: str, y_label: str,
                   width: int = 460, height: int = 260, mark: tuple[float, str] | None = None) -> str:
    """Named (xs, ys) series as one SVG line chart with its axes' ranges and a legend that is always visible;
    `mark` = (x, label) draws a vertical line at x (e.g. the timestep being looked at), labelled a line per "\n"."""
    left, right, top, bottom = 48, 12, 12, 34
    xs_all = [x for xs, _ in series.values() for x in xs]
    ys_all = [y for _, ys in series.values() for y in ys]
    x0, x1, y0, y1 = min(xs_all), max(xs_all), min(ys_all), max(ys_all)
    sx = lambda x: left + (x - x0) / ((x1 - x0) or 1) * (width - left - right)  # noqa: E731
    sy = lambda y: top + (y1 - y) / ((y1 - y0) or 1) * (height - top - bottom)  # noqa: E731
    lines = "".join(
        f'<polyline fill="none" stroke="{CHART_COLOURS[i % len(CHART_COLOURS)]}" stroke-width="2" '
        f'stroke-dasharray="{CHART_DASHES[i % len(CHART_DASHES)]}" '
        f'points="{" ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys))}"><title>{_e(name)}</title></polyline>'
        for i, (name, (xs, ys)) in enumerate(series.items())
    )
    # each key draws its line (colour and dash); the name is in ink, so it reads in any colour vision
    legend = "".join(
        f'<span class="lm-key"><svg width="24" height="8" aria-hidden="true"><line x1="0" y1="4" x2="24" y2="4" '
        f'stroke="{CHART_COLOURS[i % len(CHART_COLOURS)]}" stroke-width="2" stroke-dasharray="{CHART_DASHES[i % len(CHART_DASHES)]}"/>'
        f"</svg> {_e(name)}</span> "
        for i, name in enumerate(series)
    )
    axes = (
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#999"/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#999"/>'
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" font-size="10">{y1:.3g}</text>'
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end" font-size="10">{y0:.3g}</text>'
        f'<text x="{left}" y="{height - bottom + 14}" font-size="10">{x0:.3g}</text>'
        f'<text x="{width - right}" y="{height - bottom + 14}" text-anchor="end" font-size="10">{x1:.3g}</text>'
        f'<text x="{(width + left) / 2:.0f}" y="{height - 4}" text-anchor="middle" font-size="11" fill="#555">{_e(x_label)}</text>'
        f'<text x="12" y="{(height - bottom) / 2:.0f}" font-size="11" fill="#555" transform="rotate(-90 12 {(height - bottom) / 2:.0f})" '
        f'text-anchor="middle">{_e(y_label)}</text>'
    )
    marker = ""
    if mark is not None:
        mx = sx(min(max(mark[0], x0), x1))
        anchor = "end" if mx > (left + width - right) / 2 else "start"
        labels = "".join(f'<text x="{mx + (-4 if anchor == "end" else 4):.1f}" y="{top + 20 + 13 * i}" text-anchor="{anchor}" '
                         f'font-size="11">{_e(line)}</text>' for i, line in enumerate(mark[1].split("\n")))  # a line each
        marker = (
            f'<g class="lm-mark"><line x1="{mx:.1f}" y1="{top}" x2="{mx:.1f}" y2="{height - bottom}" stroke="#1f2328" stroke-width="1.5" '
            f'stroke-dasharray="4 2"/>{labels}</g>'
        )
    return (
        f'<div class="lm-chart"><svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'{axes}{lines}{marker}</svg><div class="lm-legend">{legend}</div></div>'
    )


def surprisal_html(tokens: Sequence[str], probs: Sequence[float | None], ranks: Sequence[int | None],
                   top: Sequence[Sequence[tuple[str, float]]], bits_per_char: float) -> str:
    """Each token shaded by how surprising it was (−log2 p; darker = less expected), hover for p, its rank and the
    model's top five there. One blue hue, lightness only: it reads in any colour vision."""
    cells = []
    for tok, p, rank, best in zip(tokens, probs, ranks, top):
        if p is None:
            cells.append(
                f'<span class="lm-chip lm-surprise" style="background:#eeeeee" title="first token: nothing before it">{_e(tok)}</span>'
            )
            continue
        bits = -math.log2(max(p, 1e-12))
        background, ink = next((c, k) for limit, c, k in SURPRISE_LEVELS if bits <= limit)
        tip = f"p = {p:.4f} ({bits:.1f} bits), rank {rank}; the model's top 5: " + ", ".join(f"{t!r} {q:.3f}" for t, q in best)
        cells.append(f'<span class="lm-chip lm-surprise" style="background:{background};color:{ink}" title="{_e(tip)}">{_e(tok)}</span>')
    legend = "".join(f'<span class="lm-chip" style="background:{c};color:{k}">{label}</span>' for (_, c, k), label in
                     zip(SURPRISE_LEVELS, ["≤ 1 bit", "≤ 3 bits", "≤ 6 bits", "≤ 10 bits", "> 10 bits"]))
    return (f'<div class="lm-gen"><div class="lm-chips-title">Each token shaded by its surprise, −log2 p (darker: less expected); '
            f'hover for p, rank and the top five. <b>{bits_per_char:.3f} bits per character</b> over the scored tokens.</div>'
            f'<div class="lm-chips">{"".join(cells)}</div><div class="lm-chips">{legend}</div></div>')


# surprise in bits -> (upper limit, background, ink): ColorBrewer Blues, one hue, with each level's ink at 4.5:1 or more
SURPRISE_LEVELS = ((1.0, "#eaf1fb", "#1f2328"), (3.0, "#c6dbef", "#1f2328"), (6.0, "#9ecae1", "#1f2328"),
                   (10.0, "#2171b5", "#ffffff"), (math.inf, "#08306b", "#ffffff"))
