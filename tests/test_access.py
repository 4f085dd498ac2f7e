"""Colour-blind-safe palettes: every palette that carries meaning stays readable under a simulation of complete
protanopia, deuteranopia and tritanopia (Machado et al. 2009, `tests/cvd.py`).

- categorical palettes (one colour per head, per curve, per token): every pair at least `MIN_DELTA_E` apart;
- sequential ramps (attention weight, surprisal, word maps): lightness strictly ordered, so the order reads
  without hue.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from playground.config import ASSETS_DIR
from playground.core.render import attention as render_attention
from playground.core.render import inside as render_inside
from playground.core.render import lm as render_lm
from playground.core.render import word_maps as render_word_maps
from tests.cvd import MACHADO, delta_e, lightness

MIN_DELTA_E = 15.0  # CIE76; the old matplotlib tab10 head palette had red/green pairs at 4.6 under protanopia
VIEWERS = [None, *MACHADO]


def _css(selector: str) -> str:
    css = (ASSETS_DIR / "style.css").read_text()
    return re.search(re.escape(selector) + r"\s*\{[^}]*background:\s*(#[0-9a-fA-F]{6})", css).group(1)


CATEGORICAL = {
    "attention heads (lines view)": render_attention.HEAD_COLOURS,
    "curves of a chart": render_lm.CHART_COLOURS,
    "alternate token chips": (_css(".tok-c0"), _css(".tok-c1")),
    "negative vs positive numbers (Inside)": (render_inside.NEG, render_inside.POS),
    "a probability bar vs the chosen one": (_css(".lm-bar"), _css(".lm-chosen .lm-bar")),
}
RAMPS = {
    "attention weight (white to blue)": [tuple(255 - v * (255 - np.array(render_attention.BLUE))) for v in np.linspace(0, 1, 6)],
    "surprisal levels": [level[1] for level in render_lm.SURPRISE_LEVELS],
    "word maps (inferno)": [tuple(c) for c in render_word_maps._RAMP],
}


@pytest.mark.parametrize("viewer", VIEWERS, ids=lambda v: v or "typical")
@pytest.mark.parametrize("name", CATEGORICAL)
def test_categorical_palettes_stay_apart_under_colour_blindness(name, viewer):
    palette = CATEGORICAL[name]
    closest = min((delta_e(a, b, viewer), a, b) for a, b in itertools.combinations(palette, 2))
    assert closest[0] >= MIN_DELTA_E, (
        f"{name}: {closest[1]} and {closest[2]} are ΔE {closest[0]:.1f} apart for {viewer or 'typical'} vision"
    )


@pytest.mark.parametrize("viewer", VIEWERS, ids=lambda v: v or "typical")
@pytest.mark.parametrize("name", RAMPS)
def test_sequential_ramps_are_ordered_by_lightness_under_colour_blindness(name, viewer):
    light = [lightness(c, viewer) for c in RAMPS[name]]
    steps = np.diff(light)
    assert (steps < 0).all() or (steps > 0).all(), (
        f"{name}: lightness {np.round(light, 1)} is not monotone for {viewer or 'typical'} vision"
    )


def test_the_simulation_catches_a_red_green_palette():
    """The check itself: red and green, far apart for typical vision, nearly merge for a deuteranope."""
    assert delta_e("#d62728", "#2ca02c") > 60 and delta_e("#d62728", "#2ca02c", "deuteranopia") < MIN_DELTA_E


def test_head_lines_past_the_palette_are_dashed_and_the_legend_shows_it():
    assert render_attention.head_dash(0) == "" and "dasharray" in render_attention.head_dash(len(render_attention.HEAD_COLOURS))
    assert "dasharray" in render_attention.head_swatch(9) and render_attention.HEAD_COLOURS[1] in render_attention.head_swatch(9)
