"""GPT step-through generation and the logit lens, against transformers' own generate and logits."""

from __future__ import annotations

import pytest
import torch

from playground.core.text.generation import SamplingConfig, logit_lens, processors, step_through
from playground.errors import InputError
from playground.models import ModelLoader
from tests.conftest import has_model


@pytest.fixture
def gpt(shared_loader, tiny_root):
    return shared_loader.load(str(tiny_root / "tiny-gpt"), "causal-lm")


def prompt(lm, text="Hello world, this is"):
    return lm.tokenizer(text, return_tensors="pt").input_ids


@pytest.mark.parametrize("penalty", [1.0, 1.5])
def test_greedy_equals_generate(gpt, penalty):
    ids = prompt(gpt)
    cfg = SamplingConfig(max_new_tokens=12, repetition_penalty=penalty)
    ours = [s.token_id for s in step_through(gpt.model, ids, cfg)]
    theirs = gpt.model.generate(ids, max_new_tokens=12, do_sample=False, repetition_penalty=penalty, pad_token_id=0)[0, ids.shape[1]:]
    assert ours == theirs.tolist()


@pytest.mark.skipif(not has_model("gpt-shakespeare"), reason="embedded GPT not built")
def test_greedy_equals_generate_on_the_embedded_gpt():
    from playground.config import Settings

    lm = ModelLoader(Settings(offline=True, device="cpu")).load("gpt2", "causal-lm")
    ids = prompt(lm, "ROMEO.\n")
    ours = [s.token_id for s in step_through(lm.model, ids, SamplingConfig(max_new_tokens=20))]
    assert ours == lm.model.generate(ids, max_new_tokens=20, do_sample=False)[0, ids.shape[1]:].tolist()


def test_step_probabilities_are_the_softmax_of_the_processed_logits(gpt):
    ids = prompt(gpt)
    cfg = SamplingConfig(max_new_tokens=3, do_sample=True, temperature=0.7, top_k=20, top_p=0.9, repetition_penalty=1.3, seed=5)
    steps = list(step_through(gpt.model, ids, cfg))
    seq = ids
    for step in steps:  # recompute each step without a cache, with the processors built here by hand
        from transformers import RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        with torch.no_grad():
            z = gpt.model(seq).logits[:, -1, :]
        for proc in (RepetitionPenaltyLogitsProcessor(1.3), TemperatureLogitsWarper(0.7), TopKLogitsWarper(20), TopPLogitsWarper(0.9)):
            z = proc(seq, z)
        expected = z.softmax(-1)[0]
        for c in step.candidates:
            assert c.prob == pytest.approx(float(expected[c.token_id]), abs=1e-5)
        assert sum(c.prob > 0 for c in step.candidates) <= 20  # top-k left at most 20 candidates
        seq = torch.cat([seq, torch.tensor([[step.token_id]])], dim=1)


def test_raw_candidates_are_the_models_own_softmax(gpt):
    ids = prompt(gpt)
    first = next(step_through(gpt.model, ids, SamplingConfig(max_new_tokens=1, num_candidates=5)))
    with torch.no_grad():
        raw = gpt.model(ids).logits[0, -1].softmax(-1)
    top = raw.topk(5)
    assert [c.token_id for c in first.raw_candidates] == top.indices.tolist()
    assert [c.raw_prob for c in first.raw_candidates] == pytest.approx(top.values.tolist(), abs=1e-6)


def test_seed_reproducibility_and_a_forced_branch(gpt):
    ids = prompt(gpt)
    cfg = SamplingConfig(max_new_tokens=8, do_sample=True, seed=3)
    a = [s.token_id for s in step_through(gpt.model, ids, cfg)]
    assert a == [s.token_id for s in step_through(gpt.model, ids, cfg)]
    assert a != [s.token_id for s in step_through(gpt.model, ids, SamplingConfig(max_new_tokens=8, do_sample=True, seed=4))]
    branch = list(step_through(gpt.model, ids, SamplingConfig(max_new_tokens=4), forced={1: 42}))
    assert branch[1].token_id == 42 and branch[1].forced and not branch[0].forced
    greedy_after = list(
        step_through(gpt.model, torch.cat([ids, torch.tensor([[branch[0].token_id, 42]])], 1), SamplingConfig(max_new_tokens=2))
    )
    assert [s.token_id for s in branch[2:]] == [s.token_id for s in greedy_after]  # the branch continues greedily from the forced token


def test_processors_match_generates_for_greedy():
    assert len(processors(SamplingConfig())) == 0  # greedy ignores temperature, top-k and top-p, as generate does
    assert len(processors(SamplingConfig(temperature=0.5, top_k=5))) == 0
    assert len(processors(SamplingConfig(do_sample=True, temperature=0.5, top_k=5, top_p=0.9))) == 3


@pytest.mark.parametrize("cfg, fragment", [
    (SamplingConfig(max_new_tokens=0), "max new tokens"),
    (SamplingConfig(max_new_tokens=10_000), "max new tokens"),
    (SamplingConfig(temperature=0.0), "temperature"),
    (SamplingConfig(top_p=1.5), "top p"),
    (SamplingConfig(num_candidates=500), "candidates"),
])
def test_out_of_range_settings_are_refused(gpt, cfg, fragment):
    with pytest.raises(InputError, match=fragment):
        next(step_through(gpt.model, prompt(gpt), cfg))


def test_logit_lens_last_layer_is_the_models_own_prediction(gpt):
    ids = prompt(gpt)
    lens = logit_lens(gpt.model, ids, k=5)
    assert lens.layers == ["embeddings", "layer 1", "layer 2"] and lens.position == ids.shape[1] - 1
    with torch.no_grad():
        own = gpt.model(ids).logits[0, -1].softmax(-1).topk(5)
    assert [t for t, _ in lens.top[-1]] == own.indices.tolist()
    assert [p for _, p in lens.top[-1]] == pytest.approx(own.values.tolist(), abs=1e-6)
    # an intermediate layer: the final norm and the head applied to its hidden state, written out
    with torch.no_grad():
        h1 = gpt.model(ids, output_hidden_states=True).hidden_states[1][0, -1]
        mid = gpt.model.lm_head(gpt.model.transformer.ln_f(h1)).softmax(-1).topk(5)
    assert [t for t, _ in lens.top[1]] == mid.indices.tolist()
    with pytest.raises(InputError, match="position must be within"):
        logit_lens(gpt.model, ids, position=99)
