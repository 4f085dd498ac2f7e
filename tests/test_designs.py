"""The designs side by side (/designs): one prompt through every text-to-image design, on the embedded models."""

from __future__ import annotations

import base64
import io

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from playground.core.diffusion import designs
from playground.errors import UserError
from playground.ui import designs_section
from playground.ui.designs_section import designs_api

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def loader():
    from playground.config import Settings
    from playground.models import ModelLoader

    return ModelLoader(Settings(offline=True, device="cpu"))


def _pixels(entry: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(entry["image"]))).convert("RGB"))


@pytest.fixture(scope="module")
def answer(loader):
    return designs_api(loader, "red circle left blue square", 3, 4, 5.0)


def test_one_entry_per_design_in_order_with_the_contract_keys(answer):
    assert [e["design"] for e in answer] == list(designs.DESIGN_KEYS)
    for e in answer:
        assert {"design", "model", "image", "checker"} <= set(e)
        if e["image"] is None:  # a model not built here says how to build it
            assert "python -m playground.train" in e["note"] and e["checker"] is None
        else:
            assert _pixels(e).shape == (32, 32, 3)
            assert set(e["checker"]) == {"colour", "shape", "place", "relation"}
            assert e["checker"]["place"] is None  # two objects: no place asked
    built = [e for e in answer if e["image"] is not None]
    assert {"sd", "dalle2", "dalle3"} <= {e["design"] for e in built}


def test_dalle3s_row_is_sd_shapes_reading_the_expanded_prompt(loader, answer):
    by = {e["design"]: e for e in answer}
    assert by["dalle3"]["prompt_used"] == "a red circle left of a blue square"
    assert by["sd"]["prompt_used"] == "red circle left blue square"  # the others read it as typed
    expanded = {e["design"]: e for e in designs_api(loader, "a red circle left of a blue square", 3, 4, 5.0)}
    assert np.array_equal(_pixels(by["dalle3"]), _pixels(expanded["sd"]))  # the same model, prompt and noise
    assert np.array_equal(_pixels(expanded["dalle3"]), _pixels(expanded["sd"]))  # a grammar prompt is not changed


def test_the_checker_reads_each_picture_against_what_the_prompt_means(loader, answer):
    from playground.train import alt_text, shapes_check

    for e in answer:
        if e["image"] is not None:
            assert e["checker"] == shapes_check.reading(_pixels(e), alt_text.expand("red circle left blue square"))


@pytest.mark.parametrize("args, message", [
    (("", 0, 4, 5.0), "caption"),
    (("a red circle", 0, 0, 5.0), "steps"),
    (("a red circle", 0, 4, 25.0), "guidance_scale"),
    (("a red circle", -1, 4, 5.0), "seed"),
    (("x" * 201, 0, 4, 5.0), "200"),
])
def test_bad_input_is_refused_with_what_to_change(loader, args, message):
    with pytest.raises((UserError, gr.Error), match=message):
        designs_api(loader, *args)


def test_the_table_has_a_column_per_design_and_a_row_per_difference():
    table = designs_section.differences_markdown().splitlines()
    assert all(line.count("|") == len(designs.DESIGNS) + 2 for line in table)
    assert len(table) == 2 + 6


def test_the_lessons_choices_are_the_designs_names():
    from playground.lessons.path import DESIGN_NAMES

    assert DESIGN_NAMES == tuple(d.name for d in designs.DESIGNS)
