"""The KV cache, measured (issue 31, item 3): on tiny GPT-2 and Llama-family (grouped-query) models built here and on the
embedded GPT, cached and uncached logits agree, the cache holds exactly the formula's bytes, and the greedy text is
`generate`'s."""

from __future__ import annotations

import pytest
import torch

from playground.config import ASSETS_DIR
from playground.core.text import kv_cache
from playground.errors import InputError


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(ASSETS_DIR / "tokenizers" / "gpt2")


def _gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=50257, n_positions=64, n_embd=32, n_layer=3, n_head=4)).eval()


def _llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=50257, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=64, bos_token_id=0, eos_token_id=0)
    return LlamaForCausalLM(config).eval()


@pytest.mark.parametrize("build, shape", [(_gpt2, (3, 4, 4, 8)), (_llama, (2, 4, 2, 8))], ids=["gpt2", "llama-gqa"])
def test_cached_and_uncached_agree_and_the_cache_holds_the_formulas_bytes(tokenizer, build, shape):
    model = build()
    run = kv_cache.measure(model, tokenizer, "When Mary and John went to the store", 6)
    assert (run.layers, run.heads, run.kv_heads, run.d_head) == shape
    assert run.max_abs_logit_diff < 1e-4 and len(run.steps) == 6
    assert run.bytes_per_token == 2 * shape[0] * shape[2] * shape[3] * 4
    for i, step in enumerate(run.steps):
        assert step.cache_tokens == run.prompt_tokens + i  # the prompt, then one more token a step
        assert step.cache_bytes == run.bytes_per_token * step.cache_tokens  # measured from the tensors: the formula
    assert run.gqa_saving == shape[1] / shape[2]
    ids = torch.tensor([tokenizer("When Mary and John went to the store")["input_ids"]])
    with torch.no_grad():
        greedy = model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=0)[0, ids.shape[1]:]
    assert run.tokens == [kv_cache.visible(tokenizer.decode([t])) for t in greedy.tolist()]


def test_a_prompt_past_the_context_keeps_its_end_and_says_so(tokenizer):
    run = kv_cache.measure(_gpt2(), tokenizer, "word " * 100, 8)
    assert run.prompt_tokens == 64 - 8 and "only its last 56" in run.notes[0]


@pytest.mark.parametrize("prompt, new, message", [("   ", 4, "Enter a prompt"), ("hi", 0, "max_new_tokens"), ("hi", 65, "max_new_tokens"),
                                                   (7, 4, "prompt must be text"), ("x" * 4001, 4, "limit is 4,000")])
def test_bad_requests_are_refused_with_what_to_change(tokenizer, prompt, new, message):
    with pytest.raises(InputError, match=message):
        kv_cache.measure(_gpt2(), tokenizer, prompt, new)


def test_the_section_and_endpoint_on_the_embedded_gpt(shared_loader):
    from playground.ui import kv_cache_section as section

    summary, chart, table = section.on_measure(shared_loader, section.KVCacheRequest("gpt2", "ROMEO.\n", 5), progress=None)
    assert "8,192 bytes a token" in summary and "agree to" in summary and "<svg" in chart and len(table) == 5
    out = section.kv_cache_api(shared_loader, "gpt2", "ROMEO.\n", 3)
    assert {"tokens", "steps", "max_abs_logit_diff", "layers", "kv_heads", "heads", "d_head", "bytes_per_token"} <= set(out)
    assert set(out["steps"][0]) == {"cache_tokens", "cache_bytes", "ms_cached", "ms_uncached"} and out["max_abs_logit_diff"] < 1e-4
    with pytest.raises(Exception, match="masked-lm model"):
        section.kv_cache_api(shared_loader, "bert-base-uncased", "ROMEO.\n", 3)
