"""The endpoints' limits table (issue 34, item 7): the README shows the table the code makes, and every length or
value the table says is refused is refused, at the number the table gives, by the endpoint itself."""

from __future__ import annotations

import inspect

import gradio as gr
import pytest
from PIL import Image

from playground.errors import UserError
from playground.readme_blocks import read_block
from playground.ui import build_app
from playground.ui.endpoint_limits import LIMITS, REFUSED, table

# a valid value for each parameter a probe does not set (the embedded models, offline)
BASE = {
    "tokenize": {"text": "hello", "tokenizer": "gpt2"},
    "explain_word": {"tokenizer": "gpt2", "word": "hello"},
    "attention": {"model": "bert-base-uncased", "text": "hello", "target_text": ""},
    "generate": {"prompt": "hello", "model": "gpt2", "max_new_tokens": 2},
    "inside": {"model": "gpt2", "text": "hello", "layer": 0, "head": 0, "token": -1},
    "score": {"text": "hello there", "model": "gpt2"},
    "fill_mask": {"text": "hello [MASK]", "model": "bert-base-uncased", "top_k": 5},
    "embed": {"sentences": "a\nb", "model": "bert-base-uncased"},
    "text2text": {"text": "add: 1 + 2", "model": "t5-small", "num_beams": 1, "max_new_tokens": 4},
    "denoise": {"model": "google/ddpm-cifar10-32", "prompt": "Bag", "scheduler": "DDIM", "steps": 2, "guidance_scale": 1.0,
                "seed": 0, "negative_prompt": ""},
    "cross_attention": {"model": "segmind/tiny-sd", "prompt": "a red circle", "seed": 0, "steps": 2, "guidance_scale": 2.0},
    "train_toy": {"dataset": "moons", "steps": 2, "seed": 0},
    "train_flow": {"dataset": "moons", "steps": 2, "seed": 0},
    "train_gpt": {"text": "To be, or not to be. " * 100, "steps": 2, "seed": 0},
    "ablate": {"model": "gpt2", "text": "I am Lord Angelo's man. Lord", "heads": "0.0", "mode": "zero", "top_k": 5},
    "patch": {"model": "gpt2", "clean": "I am Lord Angelo's man. Lord", "corrupt": "I am Lord John's man. Lord", "answer": "Angelo",
              "wrong": "John", "what": "residual"},
    "sink": {"model": "gpt2", "text": "To be, or not to be", "layers": "all"},
    "kv_cache": {"model": "gpt2", "prompt": "ROMEO.", "max_new_tokens": 2},
    "route": {"model": "gpt2", "text": "ROMEO."},
    "clip": {"texts": "a red circle\na blue square", "image": None},
    "unclip": {"prompt": "a red circle", "seed": 0, "steps": 2, "guidance_scale": 4.0},
    "variations": {"image": Image.new("RGB", (32, 32)), "n": 1, "seed": 0},
    "designs": {"prompt": "a red circle", "seed": 0, "steps": 2, "guidance_scale": 5.0},
}


def past(limit):
    """A value one past `limit`."""
    if limit.unit.startswith("characters"):
        text = "a" * (limit.most + 1)
        return f"{text}\nb" if limit.unit == "characters a line" else text
    if limit.unit == "lines":
        return "\n".join(["a line"] * (limit.most + 1))
    if limit.unit == "[MASK]s":
        return " ".join(["[MASK]"] * (limit.most + 1))
    if limit.unit == "heads":
        return ", ".join(f"{i}.0" for i in range(limit.most + 1))
    if limit.unit == "tokens":  # a word a token (and a space), well past the limit
        return " word" * (limit.most + 8)
    assert limit.unit == "", limit
    return limit.most + 1 if isinstance(limit.most, int) else limit.most + 0.5


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory):
    from playground.config import Settings

    demo = build_app(Settings(offline=True, device="cpu", hf_cache=tmp_path_factory.mktemp("hf-cache")))
    return {fn.api_name: fn.fn for fn in demo.fns.values() if fn.api_name}


def test_the_readme_shows_the_table_the_code_makes():
    assert read_block("limits") == table(), "run python -m playground.ui.endpoint_limits"


@pytest.mark.parametrize("limit", [limit for limit in LIMITS if limit.past == REFUSED],
                         ids=lambda limit: f"{limit.endpoint}-{limit.parameter}-{limit.unit or 'value'}")
def test_one_past_each_limit_is_refused_with_the_limit_named(endpoints, limit):
    endpoint = endpoints[limit.endpoint]
    names = list(inspect.signature(endpoint).parameters)
    arguments = {**BASE[limit.endpoint], limit.parameter: past(limit)}
    with pytest.raises((UserError, gr.Error)) as refused:  # the project's error, as the page and the API show it
        answer = endpoint(*(arguments[name] for name in names if name in arguments))
        if inspect.isgenerator(answer):
            next(answer)
    message = str(refused.value)
    assert any(f"{n}" in message for n in (f"{limit.most:,}", f"{limit.most}", f"{limit.most:g}")), message
