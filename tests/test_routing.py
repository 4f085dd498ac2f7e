"""Mixture-of-experts routing (issue 31, item 4): a tiny Mixtral built here; router probabilities recomputed from the
router's own weights on the layer's normalized input (read with a hook on a private copy), equal to softmax of the model's
`output_router_logits`; the chosen experts, the load; `/route` and the Inside tab's section through the loader."""

from __future__ import annotations

import copy

import pytest
import torch

from playground.config import ASSETS_DIR, Settings
from playground.core.text import routing
from playground.core.text.tokenize import visible
from playground.errors import InputError

TEXT = "When Mary and John went to the store, John gave a drink to"


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(ASSETS_DIR / "tokenizers" / "gpt2")


@pytest.fixture(scope="module")
def mixtral():
    from transformers import MixtralConfig, MixtralForCausalLM

    torch.manual_seed(0)
    config = MixtralConfig(vocab_size=50257, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2, max_position_embeddings=64,
                           bos_token_id=0, eos_token_id=0)
    return MixtralForCausalLM(config).eval()


def test_router_probabilities_recomputed_from_the_routers_weights(mixtral, tokenizer):
    r = routing.route(mixtral, tokenizer, TEXT)
    ids = torch.tensor([tokenizer(TEXT)["input_ids"]])
    seen = []
    private = copy.deepcopy(mixtral)
    for layer in private.model.layers:
        layer.post_attention_layernorm.register_forward_hook(lambda m, args, out: seen.append(out[0].clone()))
    with torch.no_grad():
        out = private(ids, output_router_logits=True)
    assert (r.experts, r.top_k) == (4, 2) and len(r.router_probs) == 2 and len(r.router_probs[0]) == ids.shape[1]
    for layer in range(2):
        gate = mixtral.model.layers[layer].mlp.gate.weight
        mine = (seen[layer] @ gate.T).softmax(-1)  # the router written out: softmax(W_r · RMSNorm(x))
        assert torch.allclose(torch.tensor(r.router_probs[layer]), mine, atol=1e-5)
        assert torch.allclose(torch.tensor(r.router_probs[layer]), out.router_logits[layer].softmax(-1), atol=1e-6)
        top = mine.topk(2, dim=-1).indices.tolist()
        assert r.chosen[layer] == top
        assert sum(r.load[layer]) == pytest.approx(2.0, abs=1e-3)  # every token counted once per expert it reaches


def test_a_dense_model_and_empty_text_are_refused(mixtral, tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    with pytest.raises(InputError, match="has no experts"):
        routing.route(GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=16)), tokenizer, TEXT)
    with pytest.raises(InputError, match="Enter a text"):
        routing.route(mixtral, tokenizer, "  ")


def test_the_endpoint_and_the_inside_section_through_the_loader(mixtral, tokenizer, tmp_path):
    from playground.models import ModelLoader
    from playground.ui import inside_tab

    folder = tmp_path / "tiny-mixtral"
    mixtral.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    loader = ModelLoader(Settings(offline=True, device="cpu", model_roots=(tmp_path,), hf_cache=tmp_path / "hf-cache"))
    out = inside_tab.route_api(loader, str(folder), TEXT)
    assert set(out) == {"tokens", "experts", "top_k", "router_probs", "chosen", "load"} and out["experts"] == 4
    view = inside_tab.on_route(loader, inside_tab.RouteRequest(str(folder), TEXT), progress=None)
    assert 'id="rt-result"' in view and view.count('class="rt-layer"') == 2
    assert 'id="rt-experts"' in view and "Julius Caesar" in view and view.count("<th>expert ") == 4
    with pytest.raises(Exception, match="has no experts"):
        inside_tab.route_api(loader, "gpt2", TEXT)  # offline: the embedded GPT, dense
    with pytest.raises(Exception, match="nothing to route"):
        inside_tab.on_route(loader, inside_tab.RouteRequest(inside_tab.SESSION_GPT, TEXT), progress=None)


def test_what_one_experts_tokens_have_in_common(mixtral, tokenizer):
    """Issue 31, item 4: each expert's most faithful tokens over a text, counted here again from the model's own
    output_router_logits (first choice per token, windows of 16)."""
    text = " ".join(["the king", "the queen, the king.", "O Caesar! the king"] * 6)
    x = routing.expert_tokens(mixtral, tokenizer, text, "a test text", window=16)
    ids = tokenizer(text)["input_ids"]
    with torch.no_grad():
        firsts = [[] for _ in range(2)]
        for s in range(0, len(ids), 16):
            out = mixtral(torch.tensor([ids[s: s + 16]]), output_router_logits=True)
            for layer in range(2):
                firsts[layer] += out.router_logits[layer].argmax(-1).tolist()
    assert x.tokens == len(ids) and x.experts == 4 and len(x.top) == 2
    for layer in range(2):
        for e in range(4):
            assert x.load[layer][e] == pytest.approx(firsts[layer].count(e) / len(ids), abs=1e-4)
            for face, n, m in x.top[layer][e]:
                tid = next(i for i in set(ids) if visible(tokenizer.decode([i])) == face)
                assert m == ids.count(tid) >= routing.MIN_COUNT
                assert n == sum(1 for i, f in zip(ids, firsts[layer]) if i == tid and f == e)
            shares = [n / m for _, n, m in x.top[layer][e]]
            assert shares == sorted(shares, reverse=True)  # most faithful first
    assert sum(len(t) for t in x.top[0]) > 0


@pytest.mark.skipif(not (ASSETS_DIR / "models" / "moe-shakespeare" / "config.json").exists(), reason="moe-shakespeare is not built")
def test_every_endpoint_that_takes_a_causal_lm_takes_the_embedded_mixture():
    """Issue 31: the loader treats the mixture like any causal LM: attention (grouped heads), generation (greedy equals
    the model's own generate), surprisal, the KV cache (cached and uncached agree), and the interventions."""
    from playground.models import ModelLoader
    from playground.ui import attention_tab, gpt_tab, interventions_tab, kv_cache_section

    loader = ModelLoader(Settings(offline=True, device="cpu"))
    m = "assets/models/moe-shakespeare"
    assert attention_tab.attention_api(loader, m, "ROMEO. But soft", "")["kv_heads"] == 2
    out = gpt_tab.generate_api(loader, "ROMEO.\n", m, 8, 1.0, 0, 1.0, 0, False)
    lm = loader.load(m, "causal-lm")
    ids = lm.tokenizer("ROMEO.\n", return_tensors="pt").input_ids
    with torch.no_grad():
        expected = lm.tokenizer.decode(lm.model.generate(ids, max_new_tokens=8, do_sample=False)[0, ids.shape[1]:])
    assert out["text"].endswith(expected)
    assert 0 < gpt_tab.score_api(loader, "To be, or not to be", m)["bits_per_char"] < 10
    assert kv_cache_section.kv_cache_api(loader, m, "ROMEO.", 4)["max_abs_logit_diff"] < 1e-3
    assert len(interventions_tab.sink_api(loader, m, "To be, or not to be, that is the question.", "all")["sink_share"]) == 4
