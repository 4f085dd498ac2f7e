"""HTML and SVG for CLIP's space: the picture x caption similarity grid, zero-shot bars, the two clouds on one map."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

import numpy as np

from playground.core.multimodal.clip_space import Projection, ZeroShot
from playground.core.render.lm import _short, place_labels


def _e(text: str) -> str:
    return html.escape(str(text))


def thumbnail(image: np.ndarray, side: int = 48) -> str:
    """A picture as an inline PNG <img>, enlarged with hard pixel edges."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG")
    data = base64.b64encode(buf.getvalue()).decode()
    return (f'<img src="data:image/png;base64,{data}" width="{side}" height="{side}" alt="" '
            'style="image-rendering:pixelated;vertical-align:middle;border:1px solid #888">')


def grid_html(images: Sequence[np.ndarray], image_labels: Sequence[str], captions: Sequence[str], cos: Sequence[Sequence[float]],
              probs: Sequence[Sequence[float]], pairs: Sequence[int | None]) -> str:
    """A row per picture, a column per caption: each cell the cosine (and, in its hover, softmax(scale · cos) over the
    row: the zero-shot probability); the cell of a picture's own caption (`pairs[i]`, None for none) is outlined, the
    row's best caption in bold. Shading spans the grid's own lowest to highest cosine."""
    m = np.asarray(cos, dtype=float)
    lo, hi = float(m.min()), float(m.max())
    head = "".join(f'<th title="{_e(c)}"><div class="clip-cap">{j + 1}. {_e(_short(c, 28))}</div></th>' for j, c in enumerate(captions))
    rows = []
    for i, (img, label) in enumerate(zip(images, image_labels)):
        best = int(m[i].argmax())
        cells = []
        for j in range(len(captions)):
            shade = (m[i, j] - lo) / ((hi - lo) or 1.0)
            own = pairs[i] == j
            style = f"background:rgba(70,130,210,{0.85 * shade:.2f});color:#111"
            style += ";outline:3px solid #d55e00;outline-offset:-3px" if own else ""
            text = f"<b>{m[i, j]:.2f}</b>" if j == best else f"{m[i, j]:.2f}"
            cells.append(f'<td style="{style}" title="{_e(label)} · {_e(captions[j])}: cos {m[i, j]:.3f}, p {probs[i][j]:.3f}">{text}</td>')
        rows.append(f'<tr><th class="clip-row">{thumbnail(img)} <span>{_e(label)}</span></th>{"".join(cells)}</tr>')
    return (f'<table class="lm-sim clip-grid" id="clip-grid-table"><tr><th></th>{head}</tr>{"".join(rows)}</table>'
            '<p><small>Each cell: cos(picture, caption). Outlined: the caption the picture was drawn from; bold: the row\'s '
            "best match (its zero-shot answer). Hover a cell for the softmax probability over the row.</small></p>")


def zero_shot_html(results: Sequence[ZeroShot]) -> str:
    """Per attribute, the classes as bars of probability, the most probable first and marked."""
    blocks = []
    for z in results:
        order = sorted(range(len(z.classes)), key=lambda k: -z.probs[k])
        rows = "".join(
            f'<div class="lm-bar-row{" lm-chosen" if k == order[0] else ""}"><span class="lm-bar-label">{_e(z.classes[k])}</span>'
            f'<span class="lm-bar" style="width:{160 * z.probs[k]:.0f}px"></span><span class="lm-bar-value">{z.probs[k]:.3f}</span></div>'
            for k in order)
        blocks.append(f'<div class="lm-bars"><div class="lm-bars-title">{_e(z.attribute)}: {_e(z.classes[order[0]])}</div>{rows}</div>')
    return f'<div class="clip-zero-shot" style="display:flex;flex-wrap:wrap;gap:16px">{"".join(blocks)}</div>'


def projection_svg(p: Projection, image_labels: Sequence[str], captions: Sequence[str], size: int = 380) -> str:
    """Pictures (orange squares) and captions (blue circles) on the same two principal axes; a grey line joins each
    picture to its own caption; the two clouds' centres are crosses joined by a dashed line: the modality gap."""
    pts = np.array([*p.image_points, *p.text_points], dtype=float)
    pad, extra = 40, 170
    width = size + extra
    lo, hi = pts.min(0), pts.max(0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    xy = pad + (pts - lo) / span * (size - 2 * pad)
    xy[:, 1] = size - xy[:, 1]
    n = len(p.image_points)
    links = "".join(f'<line x1="{xy[i, 0]:.1f}" y1="{xy[i, 1]:.1f}" x2="{xy[n + i, 0]:.1f}" y2="{xy[n + i, 1]:.1f}" stroke="#bbb"/>'
                    for i in range(min(n, len(p.text_points))))
    squares = "".join(f'<rect x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10" fill="#D55E00"><title>picture: {_e(s)}</title></rect>'
                      for (x, y), s in zip(xy[:n], image_labels))
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#0072B2"><title>caption: {_e(s)}</title></circle>'
                   for (x, y), s in zip(xy[n:], captions))
    ci, ct = xy[:n].mean(0), xy[n:].mean(0)
    cross = "".join(f'<path d="M{x - 7:.1f},{y - 7:.1f} L{x + 7:.1f},{y + 7:.1f} M{x - 7:.1f},{y + 7:.1f} L{x + 7:.1f},{y - 7:.1f}" '
                    f'stroke="{c}" stroke-width="3"/>' for (x, y), c in ((ci, "#D55E00"), (ct, "#0072B2")))
    gap = f'<line x1="{ci[0]:.1f}" y1="{ci[1]:.1f}" x2="{ct[0]:.1f}" y2="{ct[1]:.1f}" stroke="#111" stroke-dasharray="5 3"/>'
    labels = [f"{j + 1}" for j in range(len(captions))]
    spots = place_labels([(float(x), float(y)) for x, y in xy[n:]], labels, width, size - 16)
    names = "".join(f'<text x="{tx}" y="{ty}" font-size="11">{_e(t)}</text>' for (tx, ty), t in zip(spots, labels))
    legend = (f'<text x="{size + 6}" y="24" font-size="12"><tspan fill="#D55E00">■</tspan> pictures</text>'
              f'<text x="{size + 6}" y="42" font-size="12"><tspan fill="#0072B2">●</tspan> captions (numbered)</text>'
              f'<text x="{size + 6}" y="60" font-size="12">✕ centres; dashed: the gap</text>'
              f'<text x="{size + 6}" y="84" font-size="12">gap ‖mean picture − mean</text>'
              f'<text x="{size + 6}" y="100" font-size="12">caption‖ = {p.gap:.2f}</text>'
              f'<text x="{size + 6}" y="124" font-size="12">cos with own caption {p.paired_cosine:.2f}</text>'
              f'<text x="{size + 6}" y="140" font-size="12">cos with the others {p.cross_cosine:.2f}</text>')
    return (f'<svg class="clip-projection" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{size}" viewBox="0 0 {width} {size}">'
            f'<rect x="1" y="1" width="{size - 2}" height="{size - 2}" fill="none" stroke="#ccc"/>{links}{gap}{squares}{dots}{cross}{names}'
            f'{legend}<text x="{size / 2:.0f}" y="{size - 6}" font-size="11" text-anchor="middle" fill="#666">principal component 1 '
            f'({p.explained[0]:.0%} of the variance)</text><text x="14" y="{size / 2:.0f}" font-size="11" text-anchor="middle" fill="#666" '
            f'transform="rotate(-90 14 {size / 2:.0f})">principal component 2 ({p.explained[1]:.0%})</text></svg>')


def nearest_html(title: str, captions: Sequence[tuple[str, float]], pictures: Sequence[tuple[np.ndarray, str, float]]) -> str:
    """One column: an embedding's nearest captions (cosine) and nearest pictures (thumbnails, their captions, cosine)."""
    caps = "".join(f"<tr><td>{_e(c)}</td><td>{v:.3f}</td></tr>" for c, v in captions)
    pics = "".join(f'<div class="clip-pic" style="display:inline-block;margin:3px;text-align:center;font-size:11px">{thumbnail(img)}'
                   f'<br>{v:.3f}<br><span title="{_e(c)}">{_e(_short(c, 22))}</span></div>' for img, c, v in pictures)
    return (f'<div style="flex:1 1 340px"><b>{_e(title)}</b><table class="lm-sim"><tr><th>nearest captions</th><th>cos</th></tr>'
            f"{caps}</table><div>{pics}</div></div>")
