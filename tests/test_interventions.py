"""Interventions (knock out heads, patch activations, the attention sink) on a tiny GPT-2 built here: every number
computed a second, independent way, with plain forward hooks on a private copy of the model (or the library's own
attention mask), and the shared model never touched."""

from __future__ import annotations

import copy
import math
import threading

import pytest
import torch

from playground.config import ASSETS_DIR
from playground.core.text import interventions
from playground.errors import InputError

TEXT = "When Mary and John went to the store, John gave a drink to"
CORRUPT = "When Mary and John went to the store, Mary gave a drink to"


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(ASSETS_DIR / "tokenizers" / "gpt2")


def _gpt(seed: int = 0, **config):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    options = {"vocab_size": 50257, "n_positions": 64, "n_embd": 32, "n_layer": 3, "n_head": 4, "attn_implementation": "eager"}
    model = GPT2LMHeadModel(GPT2Config(**{**options, **config})).eval()
    with torch.no_grad():  # random weights of a larger scale, so heads differ from each other by more than rounding
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(4)
    return model


@pytest.fixture(scope="module")
def model():
    return _gpt()


def _ids(tokenizer, text: str) -> torch.Tensor:
    return torch.tensor([tokenizer(text)["input_ids"]])


def _logits_with(model, ids, pre_hooks=(), attn_hooks=()) -> torch.Tensor:
    """Last-position logits of a private copy of `model` with plain hooks: (layer, hook on attn.c_proj's input) and
    (layer, hook on blk.attn's keyword arguments)."""
    private = copy.deepcopy(model)
    for layer, hook in pre_hooks:
        private.transformer.h[layer].attn.c_proj.register_forward_pre_hook(hook)
    for layer, hook in attn_hooks:
        private.transformer.h[layer].attn.register_forward_pre_hook(hook, with_kwargs=True)
    with torch.no_grad():
        return private(ids).logits[0]


def _zero_heads(heads: list[int], d: int):
    def hook(module, args):
        (z,) = args
        z = z.clone()
        for h in heads:
            z[..., h * d:(h + 1) * d] = 0
        return (z,)
    return hook


def _record_proj_inputs(model, ids) -> list[torch.Tensor]:
    """Every layer's c_proj input (the heads' outputs z, concatenated) on a private copy: [T, D] per layer."""
    private, seen = copy.deepcopy(model), []
    for blk in private.transformer.h:
        blk.attn.c_proj.register_forward_pre_hook(lambda m, args: seen.append(args[0][0].clone()))
    with torch.no_grad():
        private(ids)
    return seen


def _set_heads(heads: list[int], d: int, values: torch.Tensor):
    """c_proj input of `heads` replaced by `values` ([T, D] or [D]: its slices)."""
    def hook(module, args):
        (z,) = args
        z = z.clone()
        for h in heads:
            z[..., h * d:(h + 1) * d] = values[..., h * d:(h + 1) * d]
        return (z,)
    return hook


def _top_prob(logits, token: int) -> float:
    return float(logits.softmax(-1)[token])


def test_the_written_out_pass_equals_the_model(model, tokenizer):
    ids = _ids(tokenizer, TEXT)
    dec = interventions.Decoder(model)
    with torch.no_grad():
        mine = dec.run(dec.embed(ids), last_only=False)
        theirs = model(ids).logits
    torch.testing.assert_close(mine, theirs, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("heads", [[(1, 2)], [(0, 1), (2, 3), (2, 0)]], ids=["one head", "several"])
def test_zero_ablation_matches_hooks(model, tokenizer, heads):
    ids = _ids(tokenizer, TEXT)
    d = model.config.n_embd // model.config.n_head
    r = interventions.knock_out(model, tokenizer, TEXT, ", ".join(f"{a}.{b}" for a, b in heads), "zero", top_k=5)
    with torch.no_grad():
        clean = model(ids).logits[0, -1]
    hooks = [(layer, _zero_heads([h for l_, h in heads if l_ == layer], d)) for layer in {l_ for l_, _ in heads}]
    ablated = _logits_with(model, ids, hooks)[-1]
    top = int(clean.argmax())
    assert r.clean_token == tokenizer.decode([top])
    expected_delta = float(ablated.log_softmax(-1)[top] - clean.log_softmax(-1)[top])
    expected_kl = float((clean.softmax(-1) * (clean.log_softmax(-1) - ablated.log_softmax(-1))).sum())
    assert r.delta_logprob == pytest.approx(expected_delta, abs=1e-4)
    assert r.kl == pytest.approx(expected_kl, abs=1e-5)
    assert r.kl > 1e-5 and r.delta_logprob != 0  # the knock-out did something (the test could fail)
    assert [c.prob for c in r.ablated] == pytest.approx(ablated.softmax(-1).topk(5).values.tolist(), abs=1e-5)
    assert [c.token for c in r.ablated] == [tokenizer.decode([i]) for i in ablated.topk(5).indices.tolist()]


def test_mean_ablation_matches_hooks(model, tokenizer):
    ids = _ids(tokenizer, TEXT)
    d = model.config.n_embd // model.config.n_head
    z = _record_proj_inputs(model, ids)
    r = interventions.knock_out(model, tokenizer, TEXT, "0.3, 1.1", "mean")
    ablated = _logits_with(model, ids, [(0, _set_heads([3], d, z[0].mean(0))), (1, _set_heads([1], d, z[1].mean(0)))])[-1]
    with torch.no_grad():
        clean = model(ids).logits[0, -1]
    top = int(clean.argmax())
    assert r.delta_logprob == pytest.approx(float(ablated.log_softmax(-1)[top] - clean.log_softmax(-1)[top]), abs=1e-4)
    zero = interventions.knock_out(model, tokenizer, TEXT, "0.3, 1.1", "zero")
    assert r.delta_logprob != pytest.approx(zero.delta_logprob, abs=1e-4)  # the two modes differ


@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_the_sweep_equals_each_head_knocked_out_alone(model, tokenizer, mode):
    s = interventions.sweep(model, tokenizer, TEXT, mode)
    assert s.ablated is None and len(s.delta_logprob) == 3 and len(s.delta_logprob[0]) == 4
    for layer in range(3):
        for head in range(4):
            one = interventions.knock_out(model, tokenizer, TEXT, f"{layer}.{head}", mode)
            assert s.delta_logprob[layer][head] == pytest.approx(one.delta_logprob, abs=1e-4)
            assert s.kl[layer][head] == pytest.approx(one.kl, abs=1e-5)


def test_a_sweep_finds_the_one_head_that_matters(tokenizer):
    """Every head's output projection zeroed but head 2 of layer 1's: only that head can change the output."""
    model = _gpt(seed=1)
    d = model.config.n_embd // model.config.n_head
    with torch.no_grad():
        for layer, blk in enumerate(model.transformer.h):
            for head in range(4):
                if (layer, head) != (1, 2):
                    blk.attn.c_proj.weight[head * d:(head + 1) * d] = 0
    s = interventions.sweep(model, tokenizer, TEXT, "zero")
    flat = {(a, b): s.kl[a][b] for a in range(3) for b in range(4)}
    assert max(flat, key=flat.get) == (1, 2) and flat[(1, 2)] > 1e-3
    assert all(v == pytest.approx(0, abs=1e-6) for k, v in flat.items() if k != (1, 2))


def _hidden_states(model, ids) -> tuple:
    with torch.no_grad():
        return model(ids, output_hidden_states=True).hidden_states


def test_residual_patching_matches_hooks(model, tokenizer):
    clean_ids, corrupt_ids = _ids(tokenizer, TEXT), _ids(tokenizer, CORRUPT)
    r = interventions.patch(model, tokenizer, TEXT, CORRUPT, " Mary", " John", "residual")
    answer, wrong = r.answer_id, r.wrong_id
    assert tokenizer.decode([answer]) == " Mary" and tokenizer.decode([wrong]) == " John"
    clean_h = _hidden_states(model, clean_ids)  # hidden_states[l] enters block l
    with torch.no_grad():
        ld = lambda logits: float(logits[answer] - logits[wrong])  # noqa: E731
        ld_clean, ld_corrupt = ld(model(clean_ids).logits[0, -1]), ld(model(corrupt_ids).logits[0, -1])
    assert r.ld_clean == pytest.approx(ld_clean, abs=1e-4) and r.ld_corrupt == pytest.approx(ld_corrupt, abs=1e-4)
    T = clean_ids.shape[1]
    for layer in range(3):
        for pos in range(T):
            def hook(module, args, kwargs, layer=layer, pos=pos):
                x = (args[0] if args else kwargs["hidden_states"]).clone()
                x[:, pos] = clean_h[layer][:, pos]
                return ((x, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": x})
            private = copy.deepcopy(model)
            private.transformer.h[layer].register_forward_pre_hook(hook, with_kwargs=True)
            with torch.no_grad():
                expected = (ld(private(corrupt_ids).logits[0, -1]) - ld_corrupt) / (ld_clean - ld_corrupt)
            assert r.recovery[layer][pos] == pytest.approx(expected, abs=1e-3), (layer, pos)
    differs = [i for i, (a, b) in enumerate(zip(clean_ids[0], corrupt_ids[0])) if a != b]
    assert differs == [9]  # " John" / " Mary", the subject of "gave"
    assert r.recovery[0][9] == pytest.approx(1.0, abs=1e-4)  # the only difference, patched at the input: all of it back
    assert all(r.recovery[layer][p] == pytest.approx(0.0, abs=1e-4) for layer in range(3) for p in range(9))  # same prefix


def test_head_patching_matches_hooks(model, tokenizer):
    clean_ids, corrupt_ids = _ids(tokenizer, TEXT), _ids(tokenizer, CORRUPT)
    d = model.config.n_embd // model.config.n_head
    r = interventions.patch(model, tokenizer, TEXT, CORRUPT, " Mary", " John", "heads")
    clean_z = _record_proj_inputs(model, clean_ids)
    ld = lambda logits: float(logits[r.answer_id] - logits[r.wrong_id])  # noqa: E731
    for layer in range(3):
        for head in range(4):
            patched = _logits_with(model, corrupt_ids, [(layer, _set_heads([head], d, clean_z[layer]))])[-1]
            expected = (ld(patched) - r.ld_corrupt) / (r.ld_clean - r.ld_corrupt)
            assert r.recovery[layer][head] == pytest.approx(expected, abs=1e-3), (layer, head)


def test_patching_a_run_into_itself_changes_nothing(model, tokenizer):
    dec = interventions.Decoder(model)
    trace = interventions.Trace()
    ids = _ids(tokenizer, TEXT)
    with torch.no_grad():
        logits = dec.run(dec.embed(ids), trace=trace)[0]
        for what in ("residual", "heads"):
            lds = interventions.patched_logit_differences(dec, trace, trace, what, 10, 20)
            assert all(v == pytest.approx(float(logits[10] - logits[20]), abs=1e-4) for row in lds for v in row)


def test_sink_knockout_matches_the_library_mask(model, tokenizer):
    """Taking attention to the first token away equals masking that key before the softmax in the model itself."""
    from playground.core.text.inside import score_text

    ids = _ids(tokenizer, TEXT)
    r = interventions.sink(model, tokenizer, TEXT, "0, 2")
    with torch.no_grad():
        out = model(ids, output_attentions=True)
    for layer in range(3):
        expected = out.attentions[layer][0, :, 1:, 0].mean(-1)
        assert r.sink_share[layer] == pytest.approx(expected.tolist(), abs=1e-5)
    assert r.bits_per_char_clean == pytest.approx(score_text(model, tokenizer, TEXT).bits_per_char, abs=1e-5)

    def mask_first(module, args, kwargs):
        mask = kwargs.get("attention_mask")
        T = ids.shape[1]
        if mask is None:
            mask = torch.zeros(1, 1, T, T).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), torch.finfo(torch.float32).min)
        mask = mask.clone()
        mask[..., 1:, 0] = torch.finfo(mask.dtype).min
        return args, {**kwargs, "attention_mask": mask}

    private = copy.deepcopy(model)
    for layer in (0, 2):
        private.transformer.h[layer].attn.register_forward_pre_hook(mask_first, with_kwargs=True)
    with torch.no_grad():
        knocked = private(ids).logits[0]
    logp = knocked[:-1].log_softmax(-1).gather(1, ids[0, 1:, None])[:, 0]
    chars = len(TEXT) - len(tokenizer.decode(ids[0, :1]))
    assert r.bits_per_char_knocked_out == pytest.approx(float(-logp.sum() / math.log(2)) / chars, abs=1e-4)
    assert r.bits_per_char_knocked_out != pytest.approx(r.bits_per_char_clean, abs=1e-4)
    assert [c.prob for c in r.knocked_out] == pytest.approx(knocked[-1].softmax(-1).topk(10).values.tolist(), abs=1e-5)


@pytest.mark.parametrize("call, message", [
    (lambda m, t: interventions.patch(m, t, TEXT, "When Mary went to the store, John gave a drink to", "Mary", "John"), "same number"),
    (lambda m, t: interventions.patch(m, t, TEXT, CORRUPT, "Maryland Avenue", "John"), "must be one token"),
    (lambda m, t: interventions.patch(m, t, TEXT, CORRUPT, "Mary", "Mary"), "same token"),
    (lambda m, t: interventions.patch(m, t, TEXT, TEXT, "Mary", "John"), "nothing to recover"),
    (lambda m, t: interventions.patch(m, t, TEXT, CORRUPT, "Mary", "John", "neurons"), "what must be one of"),
    (lambda m, t: interventions.patch(m, t, TEXT * 3, CORRUPT * 3, "Mary", "John"), "at most 32"),
    (lambda m, t: interventions.knock_out(m, t, TEXT, "3.0"), "layers 0-2 and heads 0-3"),
    (lambda m, t: interventions.knock_out(m, t, TEXT, "one.two"), "is not a head"),
    (lambda m, t: interventions.knock_out(m, t, TEXT, ""), "Name the heads"),
    (lambda m, t: interventions.knock_out(m, t, TEXT, "0.0", "half"), "mode must be one of"),
    (lambda m, t: interventions.knock_out(m, t, "   ", "0.0"), "Enter a text"),
    (lambda m, t: interventions.sink(m, t, TEXT, "7"), "not a layer"),
    (lambda m, t: interventions.sink(m, t, "When", "all"), "at least two tokens"),
])
def test_bad_requests_are_refused_with_what_to_change(model, tokenizer, call, message):
    with pytest.raises(InputError, match=message):
        call(model, tokenizer)


def test_a_long_text_keeps_its_end_and_says_so(model, tokenizer):
    long = "the cat sat on the mat and " * 40 + TEXT
    r = interventions.knock_out(model, tokenizer, long, "0.0")
    assert len(r.tokens) == 64 and r.to_json()["truncated"] and "last 64" in r.notes[0]  # the model reads 64 positions
    assert r.tokens[-1] == tokenizer.convert_ids_to_tokens(tokenizer(TEXT)["input_ids"])[-1]
    s = interventions.sweep(model, tokenizer, long)
    assert len(s.tokens) == interventions.MAX_GRID_TOKENS


def test_other_families_are_refused(tmp_path, tokenizer):
    from transformers import BertConfig, BertForMaskedLM

    bert = BertForMaskedLM(BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32))
    with pytest.raises(InputError, match="GPT-2-family"):
        interventions.knock_out(bert, tokenizer, TEXT, "0.0")


def test_threads_with_different_interventions_each_get_their_own_answer(model, tokenizer):
    """8 threads at once on one shared model (interventions and plain greedy generation) each get what they get alone,
    and the model is left without a hook."""
    jobs = {
        "zero": lambda: interventions.knock_out(model, tokenizer, TEXT, "0.1, 2.2").to_json(),
        "mean": lambda: interventions.knock_out(model, tokenizer, TEXT, "1.3", "mean").to_json(),
        "sweep": lambda: interventions.sweep(model, tokenizer, TEXT).to_json(),
        "residual": lambda: interventions.patch(model, tokenizer, TEXT, CORRUPT, "Mary", "John").to_json(),
        "heads": lambda: interventions.patch(model, tokenizer, TEXT, CORRUPT, "Mary", "John", "heads").to_json(),
        "sink": lambda: interventions.sink(model, tokenizer, TEXT, "1").to_json(),
        "sink all": lambda: interventions.sink(model, tokenizer, CORRUPT).to_json(),
        "generate": lambda: model.generate(_ids(tokenizer, TEXT), max_new_tokens=8, do_sample=False, pad_token_id=0).tolist(),
    }
    alone = {name: job() for name, job in jobs.items()}
    hooks = _hooks(model)  # the library's own (transformers keeps output-capturing hooks once attentions were asked for)
    _all_at_once_as_alone(jobs, alone)
    assert _hooks(model) == hooks and all(where.startswith("transformers") for _, _, where in hooks)


def _all_at_once_as_alone(jobs: dict, alone: dict, rounds: int = 3) -> None:
    """Every job in its own thread, started together, `rounds` times each: each answer is the one it gives alone."""
    results: dict[str, list] = {name: [] for name in jobs}
    start = threading.Barrier(len(jobs))

    def work(name):
        start.wait()
        for _ in range(rounds):
            results[name].append(jobs[name]())

    threads = [threading.Thread(target=work, args=(name,)) for name in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in jobs:
        assert len(results[name]) == rounds and all(_close(got, alone[name]) for got in results[name]), name


def _hooks(model) -> set:
    return {(name, key, getattr(fn, "__module__", "")) for name, m in model.named_modules()
            for table in (m._forward_hooks, m._forward_pre_hooks) for key, fn in table.items()}


def _close(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-5)
    return a == b


def test_parse_heads_and_layers():
    assert interventions.parse_heads(" 1.2 ,0.0, 1.2", 3, 4) == [(1, 2), (0, 0)]
    assert interventions.parse_layers("ALL", 3) == [0, 1, 2] and interventions.parse_layers("2, 0", 3) == [2, 0]


# ---- the tab and its endpoints, on the embedded GPT (offline) ----------------------------------------------------


def test_every_example_runs_on_the_model_that_runs_here(shared_loader):
    """The tab's offline examples (the last ablation and patching example are for the real gpt2) give a clear answer."""
    from playground.ui import interventions_tab as tab

    for model, text, heads in tab.ABLATE_EXAMPLES[:2]:
        notice, view, download = tab.on_ablate(shared_loader, tab.AblateRequest(model, text, heads), progress=None)
        assert "embedded" in notice and 'id="iv-ablation-result"' in view and download.endswith(".json")
    r = tab.ablate(shared_loader, tab.AblateRequest(*tab.ABLATE_EXAMPLES[0]))[1]
    assert r.clean_token == " Angelo" and r.delta_logprob < -0.5  # the two heads carry half of it
    p = tab.patch_api(shared_loader, *tab.PATCH_EXAMPLES[0])
    assert p["ld_clean"] - p["ld_corrupt"] > 2 and p["recovery"][0][3] == pytest.approx(1.0, abs=1e-4)
    for model, text in tab.SINK_EXAMPLES:
        notice, view, _ = tab.on_sink(shared_loader, tab.SinkRequest(model, text), progress=None)
        assert "bits per character" in view


def test_the_api_answers_with_its_documented_keys(shared_loader):
    from playground.ui import interventions_tab as tab

    ablated = tab.ablate_api(shared_loader, "gpt2", "I am Lord Angelo's man. Lord", "0.2, 3.2", "mean", 3)
    assert set(ablated) == {"tokens", "heads", "mode", "clean", "ablated", "clean_token", "delta_logprob", "kl", "truncated"}
    assert ablated["heads"] == ["0.2", "3.2"] and len(ablated["ablated"]) == 3 and set(ablated["clean"][0]) == {"token", "prob"}
    swept = tab.ablate_api(shared_loader, "gpt2", "I am Lord Angelo's man. Lord", "sweep")
    assert swept["ablated"] is None and len(swept["delta_logprob"]) == 4 and len(swept["kl"][0]) == 4
    assert min((v, (a, b)) for a, row in enumerate(swept["delta_logprob"]) for b, v in enumerate(row))[1] == (3, 2)
    patched = tab.patch_api(shared_loader, "gpt2", "I am Lord Angelo's man. Lord", "I am Lord John's man. Lord", "Angelo", "John", "heads")
    assert {"tokens", "corrupt_tokens", "ld_clean", "ld_corrupt", "recovery", "answer_id", "wrong_id"} <= set(patched)
    assert len(patched["recovery"]) == 4 and len(patched["recovery"][0]) == 4
    sunk = tab.sink_api(shared_loader, "gpt2", "Friends, Romans, countrymen, lend me your", "0, 3")
    assert {"tokens", "sink_share", "clean", "knocked_out", "bits_per_char_clean", "bits_per_char_knocked_out"} <= set(sunk)
    assert sunk["layers"] == [0, 3] and len(sunk["sink_share"]) == 4


def test_the_sessions_tiny_gpt_can_be_knocked_out_too(shared_loader):
    """Your tiny GPT from the Training tab (a character-level GPT2LMHeadModel) is a model choice here."""
    import gradio as gr

    from playground.ui import interventions_tab as tab
    from playground.ui import training_tab
    from playground.ui.common import SESSION_GPT

    with pytest.raises(gr.Error, match="Train a tiny GPT in the Training tab first"):
        tab.on_ablate(shared_loader, tab.AblateRequest(SESSION_GPT, "to be", "0.0"), None, progress=None)
    *_, last = training_tab.on_train_gpt(shared_loader, training_tab.GPTTrainRequest("To be, or not to be, that is the question. " * 60,
                                                                                     4, 0, 60))
    handle = last[3]
    notice, view, _ = tab.on_ablate(shared_loader, tab.sweep_request(SESSION_GPT, "To be, or not to", "zero"), handle, progress=None)
    assert "your tiny GPT" in notice and 'id="iv-sweep-result"' in view
    notice, view, _ = tab.on_patch(shared_loader, tab.PatchRequest(SESSION_GPT, "To be, or not", "To be, or nut", "o", "u"), handle,
                                   progress=None)
    assert "recovery" in view  # one character a token: the answers are characters


def test_the_endpoints_and_plain_generate_at_once_on_the_shared_model(shared_loader):
    """Done-when of issue 30: 8 threads running different interventions and plain /generate on the loader's one cached
    model (the embedded GPT) each get the result they get alone."""
    from playground.ui import gpt_tab
    from playground.ui import interventions_tab as tab

    text, corrupt = "I am Lord Angelo's man. Lord", "I am Lord John's man. Lord"
    jobs = {
        "zero": lambda: tab.ablate_api(shared_loader, "gpt2", text, "0.2, 3.2"),
        "mean": lambda: tab.ablate_api(shared_loader, "gpt2", text, "1.1", "mean"),
        "sweep": lambda: tab.ablate_api(shared_loader, "gpt2", text, "sweep"),
        "residual": lambda: tab.patch_api(shared_loader, "gpt2", text, corrupt, "Angelo", "John"),
        "heads": lambda: tab.patch_api(shared_loader, "gpt2", text, corrupt, "Angelo", "John", "heads"),
        "sink": lambda: tab.sink_api(shared_loader, "gpt2", text, "0"),
        "sink all": lambda: tab.sink_api(shared_loader, "gpt2", "Friends, Romans, countrymen, lend me your"),
        "generate": lambda: gpt_tab.generate_api(shared_loader, "ROMEO.\n", "gpt2", 12),
    }
    alone = {name: job() for name, job in jobs.items()}
    _all_at_once_as_alone(jobs, alone)


# ---- the Llama family (rotary positions, grouped-query attention) ------------------------------------------------


def _llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=50257, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=64, bos_token_id=0, eos_token_id=0,
                         attn_implementation="eager")
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(4)
    return model


@pytest.fixture(scope="module")
def llama():
    return _llama()


def test_the_llama_pass_equals_the_model(llama, tokenizer):
    ids = _ids(tokenizer, TEXT)
    dec = interventions.Decoder.of(llama)
    assert isinstance(dec, interventions.LlamaDecoder) and (dec.heads, dec.kv_heads) == (4, 2)
    with torch.no_grad():
        torch.testing.assert_close(dec.run(dec.embed(ids), last_only=False), llama(ids).logits, atol=1e-4, rtol=1e-4)


def test_the_pass_equals_a_mixtral_model_too(tokenizer):
    """Mixtral is the Llama block with a mixture of experts for its MLP: the same written-out pass reproduces its logits,
    and a head sweep runs on it."""
    from transformers import MixtralConfig, MixtralForCausalLM

    torch.manual_seed(5)
    model = MixtralForCausalLM(MixtralConfig(vocab_size=50257, hidden_size=32, intermediate_size=24, num_hidden_layers=2,
                                             num_attention_heads=4, num_key_value_heads=2, num_local_experts=4,
                                             num_experts_per_tok=2, max_position_embeddings=64)).eval()
    ids = _ids(tokenizer, TEXT)
    dec = interventions.Decoder.of(model)
    assert isinstance(dec, interventions.LlamaDecoder)
    with torch.no_grad():
        torch.testing.assert_close(dec.run(dec.embed(ids), last_only=False), model(ids).logits, atol=1e-4, rtol=1e-4)
    swept = interventions.sweep(model, tokenizer, TEXT)
    assert (swept.layers, swept.n_heads) == (2, 4) and len(swept.kl) == 2 and len(swept.kl[0]) == 4


def test_llama_head_knock_out_and_residual_patching_match_hooks(llama, tokenizer):
    """A knock-out is per query head (the o_proj input's slice), whichever key/value head it reads."""
    ids, corrupt_ids = _ids(tokenizer, TEXT), _ids(tokenizer, CORRUPT)
    d = 32 // 4
    r = interventions.knock_out(llama, tokenizer, TEXT, "0.1, 2.3", "zero")
    private = copy.deepcopy(llama)
    private.model.layers[0].self_attn.o_proj.register_forward_pre_hook(_zero_heads([1], d))
    private.model.layers[2].self_attn.o_proj.register_forward_pre_hook(_zero_heads([3], d))
    with torch.no_grad():
        clean, ablated = llama(ids).logits[0, -1], private(ids).logits[0, -1]
    top = int(clean.argmax())
    assert r.delta_logprob == pytest.approx(float(ablated.log_softmax(-1)[top] - clean.log_softmax(-1)[top]), abs=1e-4)
    p = interventions.patch(llama, tokenizer, TEXT, CORRUPT, " Mary", " John", "residual")
    clean_h = _hidden_states(llama, ids)
    ld = lambda logits: float(logits[p.answer_id] - logits[p.wrong_id])  # noqa: E731
    for layer, pos in ((0, 9), (1, 9), (2, 12), (1, 3)):
        def hook(module, args, kwargs, layer=layer, pos=pos):
            x = (args[0] if args else kwargs["hidden_states"]).clone()
            x[:, pos] = clean_h[layer][:, pos]
            return ((x, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": x})
        private = copy.deepcopy(llama)
        private.model.layers[layer].register_forward_pre_hook(hook, with_kwargs=True)
        with torch.no_grad():
            expected = (ld(private(corrupt_ids).logits[0, -1]) - p.ld_corrupt) / (p.ld_clean - p.ld_corrupt)
        assert p.recovery[layer][pos] == pytest.approx(expected, abs=1e-3), (layer, pos)
    assert p.recovery[0][9] == pytest.approx(1.0, abs=1e-4)


def test_llama_sink_share_equals_output_attentions(llama, tokenizer):
    ids = _ids(tokenizer, TEXT)
    r = interventions.sink(llama, tokenizer, TEXT, "all")
    with torch.no_grad():
        out = llama(ids, output_attentions=True)
    for layer in range(3):
        assert r.sink_share[layer] == pytest.approx(out.attentions[layer][0, :, 1:, 0].mean(-1).tolist(), abs=1e-5)
