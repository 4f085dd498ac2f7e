"""The Training tab's plots, drawn on the server as SVG: point clouds, the noise field's arrows, reverse trajectories.

Series are told apart by colour (Okabe-Ito) and by marker shape, never by colour alone.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from playground.core.render.lm import CHART_COLOURS

SIZE = 320  # px, square plots
EXTENT = 1.6  # the plotted square is [-EXTENT, EXTENT]²


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


def _xy(p: Sequence[float], extent: float = EXTENT) -> tuple[float, float]:
    x, y = float(p[0]), float(p[1])
    return (x + extent) / (2 * extent) * SIZE, (extent - y) / (2 * extent) * SIZE


def _frame(body: str, title: str, legend: str) -> str:
    return (
        f'<figure class="trn-plot"><figcaption>{_e(title)}</figcaption>'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}" viewBox="0 0 {SIZE} {SIZE}" role="img" '
        f'aria-label="{_e(title)}"><rect x="0.5" y="0.5" width="{SIZE - 1}" height="{SIZE - 1}" fill="#fff" stroke="#d0d7de"/>'
        f'<line x1="{SIZE / 2}" y1="0" x2="{SIZE / 2}" y2="{SIZE}" stroke="#eee"/><line x1="0" y1="{SIZE / 2}" x2="{SIZE}" '
        f'y2="{SIZE / 2}" stroke="#eee"/>'
        f'{body}</svg><div class="lm-legend">{legend}</div></figure>'
    )


def _marker(kind: int, x: float, y: float, colour: str) -> str:
    if kind == 0:
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.8" fill="{colour}"/>'
    return f'<rect x="{x - 1.6:.1f}" y="{y - 1.6:.1f}" width="3.2" height="3.2" fill="none" stroke="{colour}" stroke-width="0.9"/>'


def scatter_svg(series: dict[str, Sequence[Sequence[float]]], title: str, limit: int = 1500) -> str:
    """Point clouds (e.g. data and samples), each its own colour and marker (dots, then hollow squares)."""
    body, legend = [], []
    for i, (name, points) in enumerate(series.items()):
        colour = CHART_COLOURS[i % len(CHART_COLOURS)]
        step = max(1, len(points) // limit)
        body += [_marker(i % 2, *_xy(p), colour) for p in list(points)[::step] if abs(p[0]) <= EXTENT and abs(p[1]) <= EXTENT]
        shape = (f'<circle cx="6" cy="6" r="3" fill="{colour}"/>' if i % 2 == 0 else
                 f'<rect x="3" y="3" width="6" height="6" fill="none" stroke="{colour}"/>')
        legend.append(
            f'<span class="lm-key"><svg width="12" height="12" aria-hidden="true">{shape}</svg> {_e(name)} ({len(points):,})</span>'
        )
    return _frame("".join(body), title, " ".join(legend))


def arrows_svg(grid: Sequence[Sequence[float]], vectors: Sequence[Sequence[float]], data: Sequence[Sequence[float]], title: str) -> str:
    """The learned score field on a grid (arrows, longest scaled to a grid cell), over the data in light grey."""
    import math

    cell = SIZE / max(2, int(round(math.sqrt(len(grid)))))
    top = max((math.hypot(*v) for v in vectors), default=0.0) or 1.0
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.2" fill="#c8c8c8"/>' for x, y in (_xy(p) for p in list(data)[::2]))
    arrows = []
    for p, v in zip(grid, vectors):
        x, y = _xy(p)
        dx, dy = v[0] / top * cell * 0.9, -v[1] / top * cell * 0.9
        arrows.append(
            f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x + dx:.1f}" y2="{y + dy:.1f}" stroke="#0072B2" stroke-width="1.2" '
            'marker-end="url(#trn-head)"/>'
        )
    head = ('<defs><marker id="trn-head" viewBox="0 0 6 6" refX="5" refY="3" markerWidth="4" markerHeight="4" orient="auto">'
            '<path d="M0,0 L6,3 L0,6 z" fill="#0072B2"/></marker></defs>')
    legend = ('<span class="lm-key">arrows: −ε_θ(x, t) / √(1 − ᾱ_t), the score, where the model moves a point</span> '
              '<span class="lm-key">grey: data</span>')
    return _frame(head + dots + "".join(arrows), title, legend)


def trajectories_svg(paths: dict[str, Sequence[Sequence[Sequence[float]]]], data: Sequence[Sequence[float]], title: str) -> str:
    """Reverse trajectories [steps][points][2] of each sampler from the same starting noise, over the data."""
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.2" fill="#d8d8d8"/>' for x, y in (_xy(p) for p in list(data)[::2]))
    lines, legend = [], []
    dashes = ("", "4 2")
    for i, (name, path) in enumerate(paths.items()):
        colour = CHART_COLOURS[i % len(CHART_COLOURS)]
        n_points = len(path[0])
        for k in range(n_points):
            pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (_xy(step[k]) for step in path))
            lines.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1" stroke-opacity="0.7" stroke-dasharray="{dashes[i % 2]}" '
                f'points="{pts}"/>'
            )
            ex, ey = _xy(path[-1][k])
            lines.append(_marker(i % 2, ex, ey, colour))
        legend.append(
            f'<span class="lm-key"><svg width="24" height="8" aria-hidden="true"><line x1="0" y1="4" x2="24" y2="4" stroke="{colour}" '
            f'stroke-width="2" stroke-dasharray="{dashes[i % 2]}"/></svg> {_e(name)}</span>'
        )
    return _frame(dots + "".join(lines), title, " ".join(legend))
