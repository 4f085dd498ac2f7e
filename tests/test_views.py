"""The learner walk's cosmetic faults (issue 29), each checked where the view is made: heat strips that keep their height,
scatter labels that neither overlap nor leave their frame, rotated labels with room to lean, no "�" for half a
character, tables that keep words whole and show every row. The browser tests screenshot the views."""

from __future__ import annotations

import re

import numpy as np
import pytest

from playground.config import Settings
from playground.models import Family, ModelLoader


def _boxes(svg: str, char_px: float = 6.8, line_px: float = 13) -> list[tuple[float, float, float, float]]:
    """(left, top, width, height) of each label of a projection SVG (font-size 12)."""
    out = []
    for x, y, text in re.findall(r'<text x="([\d.]+)" y="([\d.]+)" font-size="12">(.*?)<title>', svg):
        out.append((float(x), float(y) - line_px + 3, len(text.replace("&#x27;", "'").replace("&amp;", "&")) * char_px, line_px))
    return out


def test_scatter_labels_do_not_overlap_and_stay_in_the_frame():
    from playground.core.render.lm import projection_svg

    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(0, 0.02, (6, 2)), rng.normal(1, 0.5, (6, 2))])  # six words in a tight knot
    labels = ["king", "queen", "lord", "lady", "sword", "crown", "night", "day", "love", "hate", "man", "woman"]
    svg = projection_svg(labels, points)
    width = float(re.search(r'width="(\d+)"', svg).group(1))
    boxes = _boxes(svg)
    assert len(boxes) == 12 and re.search(rf'<rect x="1" y="1" width="{width - 2:g}"', svg)  # the frame spans the labels too
    assert all(left >= 0 and left + w <= width for left, _, w, _ in boxes)
    clashes = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:]
               if not (a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0] or a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1])]
    assert len(clashes) <= 1, clashes  # a knot of twelve in a 360 px square: at most one pair left touching


def test_heat_strips_keep_their_height():
    from playground.core.render.inside import strip

    html = strip(list(np.linspace(-1, 1, 256)), "token embedding")
    assert 'height="14" style="height:14px"' in html  # a 256 x 1 picture no longer shrinks to 1.4 px under max-width


def test_rotated_column_labels_have_room_to_lean():
    from playground.core.render.interventions import grid_svg

    svg = grid_svg([[0.1, 0.2]], ["layer 0"], ["[SEP]", "a-long-label"], what="x")
    width = float(re.search(r'width="(\d+)"', svg).group(1))
    last_x = max(float(x) for x in re.findall(r'<text x="([\d.]+)" y="[\d.]+" transform="rotate', svg))
    assert width >= last_x + 0.5 * 6 * len("a-long-labe…")  # cos 60° of the label's length, right of its foot


@pytest.fixture(scope="module")
def room() -> ModelLoader:
    return ModelLoader(Settings(offline=True, device="cpu"))


def test_half_a_character_shows_as_its_bytes_not_a_replacement_mark(room):
    from playground.ui.gpt_tab import _face

    tok = room.load("gpt2", Family.TOKENIZER).tokenizer
    ids = tok("🤗")["input_ids"]
    assert len(ids) > 1 and "\ufffd" in tok.decode(ids[:1])  # the emoji's first piece alone decodes to "�"
    faces = [_face(tok, i) for i in ids]
    assert all("\ufffd" not in f for f in faces) and faces[0].startswith("‹F0›")


def test_tables_keep_words_whole_and_every_preset_in_view():
    import gradio as gr

    from playground.ui import build_app

    demo = build_app(Settings(offline=True, device="cpu"))
    frames = {b.elem_id: b for b in demo.blocks.values() if isinstance(b, gr.Dataframe) and b.elem_id}
    assert frames["tok-table"].wrap is False  # wrapped into fixed shares, a phone broke "characters" letter by letter
    assert frames["models-presets"].max_height >= 1000  # 8 presets: the diffusion rows were behind an inner scroll


def test_the_head_table_has_a_bias_column_only_for_a_model_with_a_bias(room):
    """GPT-2 has no position bias: its head table had an empty, unlabelled column there."""
    import re as regex

    from playground.core.render.inside import head_view
    from playground.core.text.inside import inside

    for model, family, has_bias in (("gpt2", Family.CAUSAL_LM, False), ("t5-small", Family.SEQ2SEQ, True)):
        lm = room.load(model, family, attention=True)
        html = head_view(inside(lm.model, lm.tokenizer, "reverse words: red cat", 0, 0, -1, "encoder" if has_bias else ""))
        table = html[html.index('<table class="ins-table ins-steps">'):]
        headers = regex.findall(r"<th>(.*?)</th>", table.split("</tr>")[0])
        assert all(headers) and ("+ bias b(j−i)" in headers) == has_bias, headers
        first_row = table.split("</tr>")[1]
        assert first_row.count("<td") == len(headers)
