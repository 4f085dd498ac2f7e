"""The Tokenizer tab's handlers, called directly with an offline loader: no HTTP, no browser."""

from __future__ import annotations

import json

import gradio as gr
import pytest

from playground.config import Settings
from playground.core.text.tokenize import MAX_CHARS
from playground.models import ModelLoader
from playground.ui.tokenizer_tab import MAX_TOKENIZERS, TokenizeRequest, on_explain, on_split_tokenizer, on_tokenize, tokenize_api


@pytest.fixture(scope="module")
def loader() -> ModelLoader:
    return ModelLoader(Settings(offline=True, device="cpu"))


def test_on_tokenize_fills_every_output(loader):
    panels, table, chart, ids, split_tok, word, steps = on_tokenize(
        loader, TokenizeRequest("Hello world", ["gpt2", "bert-base-uncased"], "", False)
    )
    assert panels.count('class="tok-panel"') == 2
    assert ">␣world</span>" in panels and "raw &#x27;Ġworld&#x27;" in panels  # the face on the chip, the raw string on hover
    assert list(table["tokenizer"]) == ["gpt2", "bert-base-uncased"] and list(table["tokens"]) == [2, 4]
    assert list(chart.columns) == ["tokenizer", "tokens"]
    assert json.loads(ids) == {"gpt2": [15496, 995], "bert-base-uncased": [101, 7592, 2088, 102]}
    assert (split_tok["choices"], split_tok["value"]) == (["gpt2", "bert-base-uncased"], "gpt2")
    assert word["choices"] == [("Hello  (1 token)", "Hello"), ("␣world  (1 token)", " world")] and steps == ""


def test_on_tokenize_adds_the_other_tokenizer_once(loader):
    _, table, *_ = on_tokenize(loader, TokenizeRequest("Hi", ["gpt2"], " assets/models/t5-tasks ", True))
    assert list(table["tokenizer"]) == ["gpt2", "assets/models/t5-tasks"]
    _, table, *_ = on_tokenize(loader, TokenizeRequest("Hi", ["gpt2"], "gpt2", True))
    assert list(table["tokenizer"]) == ["gpt2"]


@pytest.mark.parametrize(
    "text, names, other, fragment",
    [
        ("x" * (MAX_CHARS + 1), ["gpt2"], "", f"limit is {MAX_CHARS:,}"),
        ("Hi", [], "", "at least one tokenizer"),
        (
            "Hi",
            [f"assets/tokenizers/{n}" for n in ("gpt2", "t5-small", "bert-base-uncased")] + ["gpt2", "t5-small", "bert-base-uncased", "x"],
            "",
            f"at most {MAX_TOKENIZERS}",
        ),
        ("Hi", ["../../etc"], "", "outside the folders"),
        (None, ["gpt2"], "", "must be text"),
    ],
)
def test_on_tokenize_rejects_bad_input_with_a_message(loader, text, names, other, fragment):
    with pytest.raises(gr.Error, match=fragment):
        on_tokenize(loader, TokenizeRequest(text, names, other, False))


def test_on_split_tokenizer_offers_the_most_split_words_first(loader):
    update = on_split_tokenizer(loader, "a Donaudampfschiff", "bert-base-uncased")
    label, value = update["choices"][0]
    assert value == "Donaudampfschiff" and "tokens)" in label and update["value"] == value
    assert on_split_tokenizer(loader, "a b", "")["choices"] == []


def test_on_explain_replays_the_algorithm(loader):
    html = on_explain(loader, "bert-base-uncased", "Tokenizers")
    assert "How bert-base-uncased split" in html and "##izer" in html
    with pytest.raises(gr.Error, match="Tokenize first"):
        on_explain(loader, "", "word")
    with pytest.raises(gr.Error, match="limit is 200"):
        on_explain(loader, "gpt2", "w" * 201)


def test_tokenize_api_returns_the_documented_json(loader):
    out = tokenize_api(loader, "Hello world", "gpt2")
    assert out["tokens"][1] == {"id": 995, "text": "Ġworld", "start": 5, "end": 11, "special": False}
    assert out["counts"]["tokens"] == 2 and out["lossless"] is True and out["algorithm"] == "BPE"


def test_an_internal_error_is_reported_as_such_not_as_the_users(loader, monkeypatch, caplog):
    import playground.ui.tokenizer_tab as tab

    def broken(*args, **kwargs):
        raise ValueError("a library's own message")  # not a UserError: a bug or an environment problem

    monkeypatch.setattr(tab, "tokenize", broken)
    with pytest.raises(gr.Error, match=r"Internal error \(ValueError: a library's own message\)\. This is a bug"):
        tokenize_api(loader, "Hi", "gpt2")
    assert "Traceback" in caplog.text or any(r.exc_info for r in caplog.records)  # logged with its traceback


def test_word_split_odds_are_a_plain_number():
    """The unigram explainer said "e^2.00 times as likely"; a learner reads "7.4x as likely"."""
    from transformers import AutoTokenizer

    from playground.config import ASSETS_DIR
    from playground.core.render.tokens import render_word_split
    from playground.core.text.word_split import explain_word

    tok = AutoTokenizer.from_pretrained(ASSETS_DIR / "tokenizers" / "t5-small")
    html = render_word_split(explain_word(tok, "▁unbelievably"), "t5-small")
    assert "x as likely as the runner-up" in html and "<sup>" not in html


def test_user_mistakes_leave_no_traceback_in_the_server_log():
    import gradio as gr

    from playground.errors import InputError
    from playground.ui.common import user_errors

    @user_errors
    def mistake():
        raise InputError("Enter a text.")

    @user_errors
    def bug():
        raise KeyError("oops")

    for fn in (mistake, bug):  # a bug's traceback is logged once by user_errors, not again by gradio
        try:
            fn()
        except gr.Error as err:
            assert err.print_exception is False
