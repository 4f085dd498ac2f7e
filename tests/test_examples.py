"""Examples match the model that actually runs: offline, the embedded models (issue 16, item 6)."""

from __future__ import annotations

import gradio as gr
import pytest

from playground.config import Settings
from playground.models import ModelLoader
from playground.ui import attention_tab, bert_tab, gpt_tab, t5_tab

FAMILY = {"bert-base-uncased": "masked-lm", "gpt2": "causal-lm", "t5-small": "seq2seq"}
OFFLINE_TEXTS = (
    [(m, t) for m, t, _ in attention_tab.EXAMPLES] + [(m, g) for m, _, g in attention_tab.EXAMPLES if g]
    + [tuple(e) for e in bert_tab.FILL_EXAMPLES + bert_tab.EMBED_EXAMPLES + gpt_tab.EXAMPLES + t5_tab.EMBEDDED_EXAMPLES]
)


@pytest.fixture(scope="module")
def embedded() -> ModelLoader:
    return ModelLoader(Settings(offline=True, device="cpu"))


@pytest.mark.parametrize("model,text", OFFLINE_TEXTS, ids=[t[:30] for _, t in OFFLINE_TEXTS])
def test_offline_examples_read_in_the_embedded_vocabulary(embedded, model, text):
    tok = embedded.load(model, FAMILY[model]).tokenizer
    pieces = tok.convert_ids_to_tokens(tok(text)["input_ids"])
    assert tok.unk_token not in pieces, f"{text!r} has unknown pieces offline: {pieces}"


def test_hub_only_examples_are_the_ones_the_embedded_t5_cannot_read(embedded):
    tok = embedded.load("t5-small", "seq2seq").tokenizer
    for _, text, target in attention_tab.HUB_EXAMPLES:
        assert tok.unk_token in tok.convert_ids_to_tokens(tok(text + " " + target)["input_ids"])


# The embedded T5's answers, worked out by hand: each offline example shows the task working.
T5_ANSWERS = {
    "reverse words: red cat blue dog": "dog blue cat red",
    "sort numbers: 42 7 19 3": "3 7 19 42",
    "number to words: 342": "three hundred forty-two",
    "add: 47 + 38": "85",
    "max: 12 85 33": "85",
}


def test_t5_offline_examples_give_the_right_answers(embedded):
    assert {t for _, t in t5_tab.EMBEDDED_EXAMPLES} == set(T5_ANSWERS)
    for _, text in t5_tab.EMBEDDED_EXAMPLES:
        assert t5_tab.text2text_api(embedded, text, "t5-small", 1, 32)["text"] == T5_ANSWERS[text]


def test_attention_t5_targets_are_the_models_own_answers(embedded):
    for model, text, target in attention_tab.EXAMPLES:
        if model == "t5-small" and target:
            assert t5_tab.text2text_api(embedded, text, "t5-small", 1, 32)["text"] == target


def test_t5_empty_input_names_a_prefix_the_running_model_knows(embedded):
    with pytest.raises(gr.Error) as err:  # the handler turns the InputError into the page's message
        t5_tab.text2text_api(embedded, "  ", "t5-small", 1, 32)
    message = str(err.value)
    assert "reverse words:" in message and "translate" not in message
    tok = embedded.load("t5-small", "seq2seq").tokenizer
    prefix = message.split("'")[1]
    assert tok.unk_token not in tok.convert_ids_to_tokens(tok(prefix)["input_ids"])
