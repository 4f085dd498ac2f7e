"""Many users, one cached model: concurrent requests with different inputs on the same shared model and
tokenizer each give exactly what the same request gives alone (no hooks, no shared mutable state)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from playground.core.text import attention, masked, seq2seq, tokenize
from playground.models import ModelLoader
from tests.conftest import report_figure

# texts of different lengths, so a request that read another's tensors would fail or differ
pytestmark = pytest.mark.slow

TEXTS = [
    "The cat sat.",
    "The animal didn't cross the street because it was too tired.",
    "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer.",
    "Hi",
    "A much longer sentence with many more words than the others, so that its attention matrices have another shape entirely.",
]
THREADS = 8
ROUNDS = 5  # requests per text per thread pool


def _run_concurrently(fn, inputs):
    """fn(x) for every x, from THREADS threads started together; results in input order."""
    barrier = threading.Barrier(THREADS)

    def call(x):
        try:
            barrier.wait(timeout=5)
        except threading.BrokenBarrierError:
            pass
        return fn(x)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(call, inputs))


def _same_attention(a: attention.AttentionResult, b: attention.AttentionResult) -> None:
    assert a.tokens == b.tokens and a.target_tokens == b.target_tokens
    assert a.attentions.keys() == b.attentions.keys()
    for kind in a.attentions:
        np.testing.assert_allclose(a.attentions[kind], b.attentions[kind], atol=1e-6)
        np.testing.assert_allclose(a.value_norms[kind], b.value_norms[kind], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["tiny-bert", "tiny-gpt", "tiny-t5"])
def test_attention_requests_on_one_shared_model_do_not_mix(settings, tiny_root, name):
    loader = ModelLoader(settings)
    source = str(tiny_root / name)
    lm = loader.load(source, loader.transformer_family(source), attention=True)
    alone = {t: attention.run_attention(lm.model, lm.tokenizer, t, max_tokens=24) for t in TEXTS}
    inputs = TEXTS * ROUNDS
    results = _run_concurrently(lambda t: attention.run_attention(lm.model, lm.tokenizer, t, max_tokens=24), inputs)
    for text, result in zip(inputs, results):
        _same_attention(result, alone[text])
    report_figure(f"concurrency: attention on one shared {name}", f"{len(inputs)} requests from {THREADS} threads at once, "
                  f"{len(TEXTS)} texts of different lengths: every result equal to the request made alone")


@pytest.mark.parametrize("name", ["tiny-bert", "tiny-gpt", "tiny-t5"])
def test_attention_puts_no_hook_on_the_shared_model(settings, tiny_root, name, monkeypatch):
    loader = ModelLoader(settings)
    source = str(tiny_root / name)
    lm = loader.load(source, loader.transformer_family(source), attention=True)

    attention.run_attention(lm.model, lm.tokenizer, TEXTS[0], max_tokens=24)  # transformers installs its own output-capturing hooks once

    def refuse(*args, **kwargs):
        raise AssertionError("a request registered a hook on the shared model")

    monkeypatch.setattr(torch.nn.Module, "register_forward_hook", refuse)
    result = attention.run_attention(lm.model, lm.tokenizer, TEXTS[1], max_tokens=24)
    assert result.value_norms is not None and set(result.value_norms) == set(result.attentions)


def test_mixed_requests_share_one_tokenizer_safely(settings, tiny_root):
    """Fill-mask (truncation), embeddings (padding), text to text and the tokenizer view call one shared
    fast tokenizer from many threads at once: each result equals the one made alone."""
    loader = ModelLoader(settings)
    bert = loader.load(str(tiny_root / "tiny-bert"), "masked-lm")
    t5 = loader.load(str(tiny_root / "tiny-t5"), "seq2seq")
    jobs = {
        "fill": lambda t: [[p.token_id for p in ps] for ps in masked.fill_mask(bert.model, bert.tokenizer, t + " [MASK].", 3).predictions],
        "embed": lambda t: masked.embed(bert.model, bert.tokenizer, [t, "a short one"]).similarity.round(5).tolist(),
        "tokens": lambda t: tokenize.tokenize(bert.tokenizer, t).ids,
        "t5": lambda t: seq2seq.text_to_text(t5.model, t5.tokenizer, t, 2, 4).sequences,
    }
    inputs = [(job, text) for job in jobs for text in TEXTS] * 3
    alone = {(job, text): jobs[job](text) for job, text in set(inputs)}
    results = _run_concurrently(lambda jt: jobs[jt[0]](jt[1]), inputs)
    assert results == [alone[jt] for jt in inputs]
    report_figure("concurrency: one shared tokenizer", f"{len(inputs)} mixed requests (fill-mask, embeddings, text to text, tokenize) "
                  f"from {THREADS} threads: every result equal to the request made alone")
