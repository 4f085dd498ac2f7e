"""Inside the transformer (issue 17): every vector /inside returns, recomputed here from the layer's own weights
with the arithmetic written out (no module calls), on tiny GPT-2-, BERT- and T5-architecture models built in the
tests and on the embedded ones; softmax weights against transformers' own output_attentions; hidden_out against
its hidden_states; parameter components against sum(p.numel()); /score against log_softmax of the logits."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

from playground.config import Settings
from playground.core.text import inside
from playground.models import ModelLoader
from tests.conftest import PROJECT_ROOT
from tests.test_browser import page as _page  # noqa: F401  (the real-browser fixture: Debian's chromium, offline)

TEXT = "The king is dead, long live the king."
T5_TEXT = "reverse words: red cat blue dog"


@pytest.fixture(scope="module")
def embedded() -> ModelLoader:
    return ModelLoader(Settings(offline=True, device="cpu"))


def _gated_t5():
    """A T5 v1.1-style model (gated GELU MLP, untied LM head, more encoder than decoder layers), built here.
    (More decoder than encoder layers breaks transformers' generate: its cache is sized by num_layers.)"""
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    torch.manual_seed(1)
    config = T5Config(vocab_size=32128, d_model=16, d_kv=4, num_heads=2, num_layers=3, num_decoder_layers=2, d_ff=24,
                      feed_forward_proj="gated-gelu", tie_word_embeddings=False, decoder_start_token_id=0)
    config._attn_implementation = "eager"
    model = T5ForConditionalGeneration(config).eval()
    return model, AutoTokenizer.from_pretrained(PROJECT_ROOT / "assets" / "tokenizers" / "t5-small")


def _models(shared_loader, tiny_root, embedded):
    tiny = {n: shared_loader.load(str(tiny_root / n), f, attention=True) for n, f in
            (("tiny-gpt", "causal-lm"), ("tiny-bert", "masked-lm"), ("tiny-t5", "seq2seq"))}
    out = [(n, lm.model, lm.tokenizer) for n, lm in tiny.items()]
    out += [(n, embedded.load(n, f, attention=True).model, embedded.load(n, f, attention=True).tokenizer)
            for n, f in (("gpt2", "causal-lm"), ("bert-base-uncased", "masked-lm"), ("t5-small", "seq2seq"))]
    return out + [("gated-t5", *_gated_t5())]


CASES = [(name, stack) for name in ("tiny-gpt", "tiny-bert", "tiny-t5", "gpt2", "bert-base-uncased", "t5-small", "gated-t5")
         for stack in (("encoder", "decoder") if "t5" in name else ("",))]


@pytest.fixture(scope="module")
def models(shared_loader, tiny_root, embedded):
    return {n: (m, t) for n, m, t in _models(shared_loader, tiny_root, embedded)}


def _ln(x, mod):
    """LayerNorm written out: (x − mean) / √(var + ε) · γ + β."""
    mu, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    return (x - mu) / torch.sqrt(var + mod.eps) * mod.weight + mod.bias


def _rms(x, mod):
    """T5's RMSNorm: x / √(mean(x²) + ε) · γ (no mean, no bias)."""
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + mod.variance_epsilon) * mod.weight


def _gelu_new(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def _gelu(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def _softmax_row(scores, mask):
    scores = scores.masked_fill(~mask, float("-inf"))
    e = torch.exp(scores - scores.max())
    return e / e.sum()


def _t(v):
    return torch.tensor(v, dtype=torch.float32)


def _forward(model, tok, text, stack):
    """transformers' own tensors: hidden states and attention weights of the stack."""
    ids = tok(text, return_tensors="pt").input_ids
    with torch.no_grad():
        if model.config.model_type != "t5":
            out = model(input_ids=ids, output_hidden_states=True, output_attentions=True)
            return out.hidden_states, out.attentions, None
        enc = model.encoder(input_ids=ids, output_hidden_states=True, output_attentions=True)
        if stack == "encoder":
            return enc.hidden_states, enc.attentions, None
        gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=64, do_sample=False)
        dec = gen[:, :-1] if gen.shape[1] > 1 else gen
        out = model.decoder(input_ids=dec, encoder_hidden_states=enc.last_hidden_state, output_hidden_states=True, output_attentions=True)
        return out.hidden_states, out.attentions, enc.last_hidden_state[0]


@pytest.mark.parametrize("name,stack", CASES)
def test_every_vector_recomputed_from_the_layers_own_weights(models, name, stack):
    model, tok = models[name]
    c = model.config
    text = T5_TEXT if "t5" in name else TEXT
    family = c.model_type
    n_layers = (c.n_layer if family == "gpt2" else c.num_hidden_layers if family == "bert"
                else c.num_layers if stack == "encoder" else c.num_decoder_layers)
    hidden, attentions, enc_out = _forward(model, tok, text, stack)
    T = hidden[0].shape[1]
    for layer in sorted({0, n_layers - 1}):
        for head, token in ((0, T - 1), (1, T // 2)):
            r = inside.inside(model, tok, text, layer, head, token, stack)
            assert r.tokens == tok.convert_ids_to_tokens(_ids(tok, text, stack, model)) and r.layer == layer
            h = hidden[layer][0]
            # embeddings
            assert torch.allclose(
                _t(r.embedding.token), model.get_input_embeddings().weight[_ids(tok, text, stack, model)[token]], atol=1e-6
            )
            if family == "gpt2":
                assert torch.allclose(_t(r.embedding.sum), hidden[0][0, token], atol=1e-5)  # wte + wpe is what layer 0 reads
            elif family == "bert":
                emb = model.bert.embeddings
                assert torch.allclose(_ln(_t(r.embedding.sum), emb.LayerNorm), hidden[0][0, token], atol=1e-4)
            else:
                assert r.embedding.position is None and torch.allclose(_t(r.embedding.sum), hidden[0][0, token], atol=1e-6)
            assert torch.allclose(_t(r.hidden_in), h[token], atol=1e-5)
            _check_layer(model, family, stack, layer, head, token, h, r, enc_out)
            # softmax weights = transformers' own attention weights
            assert torch.allclose(_t(r.weights), attentions[layer][0, head, token], atol=1e-5)
            # hidden_out = the model's hidden state after this layer (the stack's last one has its final norm on top)
            nxt = hidden[layer + 1][0, token]
            if layer == n_layers - 1 and family in ("gpt2", "t5"):
                base = (
                    model.transformer.ln_f
                    if family == "gpt2"
                    else (model.encoder if stack == "encoder" else model.decoder).final_layer_norm
                )
                mine = _ln(_t(r.hidden_out), base) if family == "gpt2" else _rms(_t(r.hidden_out), base)
                assert torch.allclose(mine, nxt, atol=1e-4)
            else:
                assert torch.allclose(_t(r.hidden_out), nxt, atol=1e-4)
            # the sublayers' outputs added per the family's norm placement give hidden_out
            add = _t(r.attention_output) + (_t(r.cross_attention_output) if r.cross_attention_output else 0)
            if r.norm_placement == "pre":
                assert torch.allclose(_t(r.hidden_in) + add + _t(r.mlp_output), _t(r.hidden_out), atol=1e-5)
            else:
                blk = model.bert.encoder.layer[layer]
                mid = _ln(_t(r.hidden_in) + add, blk.attention.output.LayerNorm)
                assert torch.allclose(_ln(mid + _t(r.mlp_output), blk.output.LayerNorm), _t(r.hidden_out), atol=1e-4)
    # the residual stream: each layer's ‖h‖ before and after, as the model's hidden states say
    r = inside.inside(model, tok, text, 0, 0, T - 1, stack)
    assert [round(s.hidden_in_norm, 3) for s in r.residual] == [round(float(hidden[l_][0, T - 1].norm()), 3) for l_ in range(n_layers)]


def _ids(tok, text, stack, model):
    ids = tok(text)["input_ids"]
    if stack != "decoder":
        return ids
    gen = model.generate(
        input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), max_new_tokens=64, do_sample=False
    )
    return (gen[:, :-1] if gen.shape[1] > 1 else gen)[0].tolist()


def _check_layer(model, family, stack, layer, head, token, h, r, enc_out):
    """q, k, v, scores, scale, bias, mask, head output, W_O, MLP: written out from the weights."""
    T, D = h.shape
    if family == "gpt2":
        blk = model.transformer.h[layer]
        H = model.config.n_head
        d = D // H
        x = _ln(h, blk.ln_1)
        qkv = x @ blk.attn.c_attn.weight + blk.attn.c_attn.bias  # Conv1D: [in, out]
        q, k, v = qkv[:, :D], qkv[:, D:2 * D], qkv[:, 2 * D:]
        sl = slice(head * d, (head + 1) * d)
        scale, mask, bias = 1 / math.sqrt(d), torch.arange(T) <= token, None
        o_w, o_b = blk.attn.c_proj.weight, blk.attn.c_proj.bias  # [in, out]
        project = lambda z: z @ o_w + o_b  # noqa: E731
        heads = [(q[token, s] @ k[:, s].T * scale).masked_fill(~mask, float("-inf")).softmax(-1) @ v[:, s]
                 for s in (slice(j * d, (j + 1) * d) for j in range(H))]
        attn = project(torch.cat(heads))
        mid = h[token] + attn
        mlp = _gelu_new(_ln(mid, blk.ln_2) @ blk.mlp.c_fc.weight + blk.mlp.c_fc.bias) @ blk.mlp.c_proj.weight + blk.mlp.c_proj.bias
        assert r.activation == "gelu_new" and r.norm_placement == "pre"
        head_slice = o_w[sl]
    elif family == "bert":
        blk = model.bert.encoder.layer[layer]
        sa = blk.attention.self
        H = model.config.num_attention_heads
        d = D // H
        x = h  # BERT's attention reads the layer input itself: its norms come after
        q, k, v = (x @ sa.query.weight.T + sa.query.bias), (x @ sa.key.weight.T + sa.key.bias), (x @ sa.value.weight.T + sa.value.bias)
        sl = slice(head * d, (head + 1) * d)
        scale, mask, bias = 1 / math.sqrt(d), torch.ones(T, dtype=torch.bool), None
        heads = [(q[token, s] @ k[:, s].T * scale).softmax(-1) @ v[:, s] for s in (slice(j * d, (j + 1) * d) for j in range(H))]
        dense = blk.attention.output.dense
        attn = torch.cat(heads) @ dense.weight.T + dense.bias
        mid = _ln(h[token] + attn, blk.attention.output.LayerNorm)
        mlp = _gelu(mid @ blk.intermediate.dense.weight.T + blk.intermediate.dense.bias) @ blk.output.dense.weight.T + blk.output.dense.bias
        assert r.norm_placement == "post"
        head_slice = dense.weight.T[sl]
    else:
        st = model.encoder if stack == "encoder" else model.decoder
        blk = st.block[layer]
        sa = blk.layer[0].SelfAttention
        H, d = model.config.num_heads, model.config.d_kv
        x = _rms(h, blk.layer[0].layer_norm)
        q, k, v = x @ sa.q.weight.T, x @ sa.k.weight.T, x @ sa.v.weight.T
        sl = slice(head * d, (head + 1) * d)
        full_bias = st.block[0].layer[0].SelfAttention.compute_bias(T, T)[0]  # [H, T, T]: layer 0's learned table
        scale, mask = 1.0, (torch.arange(T) <= token) if stack == "decoder" else torch.ones(T, dtype=torch.bool)
        bias = full_bias[head, token]
        heads = [(q[token, s] @ k[:, s].T + full_bias[j, token]).masked_fill(~mask, float("-inf")).softmax(-1) @ v[:, s]
                 for j, s in enumerate(slice(j * d, (j + 1) * d) for j in range(H))]
        attn = torch.cat(heads) @ sa.o.weight.T
        mid = h[token] + attn
        if stack == "decoder":
            ca, ln = blk.layer[1].EncDecAttention, blk.layer[1].layer_norm
            y = _rms(mid, ln)
            cq, ck, cv = y @ ca.q.weight.T, enc_out @ ca.k.weight.T, enc_out @ ca.v.weight.T
            cross = (
                torch.cat([(cq[s] @ ck[:, s].T).softmax(-1) @ cv[:, s] for s in (slice(j * d, (j + 1) * d) for j in range(H))])
                @ ca.o.weight.T
            )
            assert torch.allclose(_t(r.cross_attention_output), cross, atol=1e-5)
            mid = mid + cross
        ff = blk.layer[-1]
        z = _rms(mid, ff.layer_norm)
        dense = ff.DenseReluDense
        if hasattr(dense, "wi_0"):  # gated: gelu(W0 z) * (W1 z)
            act = _gelu_new(z @ dense.wi_0.weight.T) * (z @ dense.wi_1.weight.T)
            assert r.activation == "gated-gelu_new"
        else:
            act = torch.relu(z @ dense.wi.weight.T)
            assert r.activation == "relu"
        mlp = act @ dense.wo.weight.T
        assert r.scale == 1.0
        head_slice = sa.o.weight.T[sl]
        assert torch.allclose(_t(r.position_bias), bias, atol=1e-6)
    assert torch.allclose(_t(r.x), x[token], atol=1e-5)
    assert torch.allclose(_t(r.q), q[token, sl], atol=1e-5)
    assert torch.allclose(_t(r.k), k[:, sl], atol=1e-5) and torch.allclose(_t(r.v), v[:, sl], atol=1e-5)
    assert torch.allclose(_t(r.scores), q[token, sl] @ k[:, sl].T, atol=1e-4)
    assert r.scale == pytest.approx(scale) and r.mask == mask.tolist()
    logits = q[token, sl] @ k[:, sl].T * scale + (bias if bias is not None else 0)
    weights = _softmax_row(logits, mask)
    assert torch.allclose(_t(r.weights), weights, atol=1e-5)
    assert torch.allclose(_t(r.head_output), weights @ v[:, sl], atol=1e-5)
    assert torch.allclose(_t(r.head_projected), (weights @ v[:, sl]) @ head_slice, atol=1e-5)
    assert torch.allclose(_t(r.attention_output), attn, atol=1e-5)
    assert torch.allclose(_t(r.mlp_output), mlp, atol=1e-4)


@pytest.mark.parametrize("name", ["tiny-gpt", "tiny-bert", "tiny-t5", "gpt2", "bert-base-uncased", "t5-small", "gated-t5"])
def test_parameter_components_sum_to_the_unique_parameters_and_match_their_formulas(models, name):
    model, _ = models[name]
    components = inside.parameter_components(model)
    unique = {p.data_ptr(): p.numel() for p in model.parameters()}  # a tied tensor once
    assert sum(c.count for c in components) == sum(unique.values())
    assert "other" not in [c.name for c in components]
    for c in components:  # each formula evaluates to the component's count
        assert c.formula, c.name
        assert int(re.search(r"= ([\d,]+)$", c.formula).group(1).replace(",", "")) == c.count, (c.name, c.formula, c.count)


@pytest.mark.parametrize("name", ["tiny-gpt", "gpt2"])
def test_score_logprobs_equal_log_softmax_of_the_models_own_logits(models, name):
    model, tok = models[name]
    text = "ROMEO.\nBut soft, what light through yonder window breaks?"
    s = inside.score_text(model, tok, text)
    ids = tok(text)["input_ids"]
    with torch.no_grad():
        logp = F.log_softmax(model(torch.tensor([ids])).logits[0], -1)
    expected = [float(logp[p - 1, ids[p]]) for p in range(1, len(ids))]
    assert s.logprobs[0] is None and s.logprobs[1:] == pytest.approx(expected, abs=1e-5)
    assert s.ranks[1:] == [int((logp[p - 1] > logp[p - 1, ids[p]]).sum()) + 1 for p in range(1, len(ids))]
    assert [t.prob for t in s.top[1]] == pytest.approx(logp[0].exp().topk(5).values.tolist(), abs=1e-6)
    chars = len(text) - tok(text, return_offsets_mapping=True)["offset_mapping"][0][1]
    assert s.bits_per_char == pytest.approx(-sum(expected) / math.log(2) / chars, rel=1e-6)


@pytest.mark.parametrize("call, fragment", [
    (lambda m, t: inside.inside(m, t, TEXT, 99, 0, 0), "layer must be"),
    (lambda m, t: inside.inside(m, t, TEXT, 0, 99, 0), "head must be"),
    (lambda m, t: inside.inside(m, t, TEXT, 0, 0, 999), "token must be"),
    (lambda m, t: inside.inside(m, t, "  ", 0, 0, 0), "Enter a text"),
    (lambda m, t: inside.inside(m, t, TEXT, 0, 0, 0, "decoder"), "one stack"),
    (lambda m, t: inside.inside(m, t, TEXT, 0, 0, 0, "sideways"), "stack must be one of"),
])
def test_bad_requests_say_what_to_change(models, call, fragment):
    from playground.errors import InputError

    model, tok = models["tiny-gpt"]
    with pytest.raises(InputError, match=fragment):
        call(model, tok)


def test_t5_relative_bias_table_is_the_models_own(models):
    model, _ = models["t5-small"]
    r = inside.inside(model, models["t5-small"][1], T5_TEXT, 0, 0, 0)
    sa = model.encoder.block[0].layer[0].SelfAttention
    table = r.relative_bias
    assert len(table["values"]) == model.config.num_heads and len(table["distances"]) == 65
    # distance 0: the bucket of relative position 0 for every head
    zero = table["distances"].index(0)
    assert [row[zero] for row in table["values"]] == pytest.approx(sa.relative_attention_bias.weight[0].tolist(), abs=1e-6)


# ---- the tab, its endpoints, the page -----------------------------------------------------------------------------


@pytest.mark.parametrize("model,text,stack", [("gpt2", TEXT, ""), ("bert-base-uncased", TEXT, ""), ("t5-small", T5_TEXT, "decoder")])
def test_the_tab_fills_every_view(embedded, model, text, stack):
    from playground.ui import inside_tab

    request = inside_tab.InsideRequest(model=model, text=text, stack=stack, layer=1, head=1, token=None)
    notice, token, stack_radio, layer, head, emb, one_head, block, residual, params, scale = inside_tab.on_run(
        embedded, request, progress=None
    )
    r = inside.inside(embedded.load(model, {"gpt2": "causal-lm", "bert-base-uncased": "masked-lm", "t5-small": "seq2seq"}[model],
                               attention=True).model, embedded.load(model, "seq2seq" if "t5" in model else
                               ("causal-lm" if model == "gpt2" else "masked-lm"), attention=True).tokenizer, text, 1, 1, -1, stack)
    assert "embedded" in notice and token["value"] == len(r.tokens) - 1 and len(token["choices"]) == len(r.tokens)
    # tokens as the other tabs show them: "␣king", never the tokenizer's raw "Ġking" (learner walk, cosmetic list)
    assert not any("Ġ" in label for label, _ in token["choices"]) and "Ġ" not in one_head
    if model == "gpt2":
        assert any(label.endswith("␣king") for label, _ in token["choices"]) or "␣" in one_head
    assert "Nearest tokens" in emb and "principal component 2" in emb  # the neighbours and the listed words as points
    assert ("Relative-position bias" in emb) == (model == "t5-small")
    assert one_head.count("<tr") == len(r.tokens) + 1 and ("−∞ (masked)" in one_head) == (
        model != "bert-base-uncased" and r.token < len(r.tokens) - 1
    )
    assert "MLP output" in block and "most active neurons" in block and 'class="lm-mark"' in residual
    assert sum(int(c.replace(",", "")) for c in params["parameters"]) == r.total_parameters
    assert "embedded teaching model" in scale["model"].iloc[0] and len(scale) == 1 + len(inside_tab.PUBLISHED)
    # lesson 9 asks how much text GPT-2 read: the table answers it (learner walk, item 14)
    assert any("GPT-2" in name and "WebText" in name for name in scale["model"])


@pytest.mark.parametrize("first, then, fragment", [
    (dict(model="gpt2", layer=3), dict(model="bert-base-uncased"), "showing layer 2"),
    (dict(model="t5-small", text=T5_TEXT, stack="decoder"), dict(model="gpt2", text=TEXT), "Stack choice is for T5 and was ignored"),
])
def test_changing_the_model_brings_every_dependent_control_into_its_range(embedded, first, then, fragment):
    """Layer 3 on gpt2, then bert-base-uncased (3 layers offline): 'layer must be between 0 and 2, got 3' with the slider
    keeping gpt2's maximum; T5's Decoder stack, then gpt2: an error and a radio that could not be cleared (learner walk 3)."""
    from dataclasses import replace

    from playground.ui import inside_tab

    request = inside_tab.InsideRequest(**{"text": TEXT, **first})
    inside_tab.on_run(embedded, request, progress=None)
    notice, token, stack, layer, head, *_ = inside_tab.on_run(embedded, replace(request, **then), progress=None)
    assert fragment in notice
    lm = embedded.load(then["model"], "masked-lm" if "bert" in then["model"] else "causal-lm")
    n_layers, n_heads = inside.layers_and_heads(lm.model)
    assert layer["maximum"] == n_layers - 1 and layer["value"] <= n_layers - 1 and head["maximum"] == n_heads - 1
    assert stack["value"] is None and stack["interactive"] is False  # a one-stack model: nothing to choose
    with pytest.raises(Exception, match="layer"):  # the API refuses what the page brings into range
        inside_tab.inside_api(embedded, then["model"], TEXT, 99, 0, -1)


def test_inside_and_score_over_http_match_the_compute(live_app, embedded):
    from gradio_client import Client

    client = Client(live_app, verbose=False)
    got = client.predict("gpt2", TEXT, 1, 2, 3, "", api_name="/inside")
    lm = embedded.load("gpt2", "causal-lm", attention=True)
    want = inside.inside(lm.model, lm.tokenizer, TEXT, 1, 2, 3).to_json()
    for key in ("model", "architecture", "tokens", "embedding", "x", "q", "k", "v", "scores", "scale", "position_bias", "mask", "weights",
                "head_output", "attention_output", "mlp_output", "hidden_in", "hidden_out", "parameters", "total_parameters"):
        assert key in got, key
    assert got["tokens"] == want["tokens"] and got["weights"] == pytest.approx(want["weights"], abs=1e-6)
    assert got["hidden_out"] == pytest.approx(want["hidden_out"], abs=1e-5) and got["embedding"]["position"] is not None
    t5 = client.predict("t5-small", T5_TEXT, 0, 0, 0, "encoder", api_name="/inside")
    assert t5["embedding"]["position"] is None and t5["scale"] == 1.0 and len(t5["position_bias"]) == len(t5["tokens"])
    score = client.predict("To be, or not to be", "gpt2", api_name="/score")
    assert set(score) >= {"tokens", "logprobs", "ranks", "top", "bits_per_char"} and score["logprobs"][0] is None
    assert all(len(row) == 5 for row in score["top"][1:]) and score["bits_per_char"] > 0
    with pytest.raises(Exception, match="layer must be"):
        client.predict("gpt2", TEXT, 99, 0, 0, "", api_name="/inside")


@pytest.mark.browser
def test_browser_walks_the_inside_tab(_page):
    expect = pytest.importorskip("playwright.sync_api").expect
    from tests.conftest import ARTIFACTS

    page = _page
    page.get_by_role("tab", name="Inside").click()
    page.locator("#ins-model input").fill("t5-small")
    page.locator("#ins-model input").press("Enter")
    page.locator("#ins-text textarea").fill(T5_TEXT)
    page.locator("#ins-stack label", has_text="Decoder").click()
    page.locator("#ins-run").click()
    expect(page.locator("#ins-embeddings")).to_contain_text("Relative-position bias", timeout=90_000)
    expect(page.locator("#ins-notice")).to_contain_text("greedy output")
    box = page.locator("#ins-head input[type=number]")  # head 2, then the view redraws for it
    box.fill("2")
    box.press("Enter")
    page.locator("#ins-run").click()
    expect(page.locator("#ins-head-view")).to_contain_text("head 2", timeout=60_000)
    page.locator("#ins-token input").click()  # an earlier query token: the causal mask hides the ones after it
    page.get_by_role("option", name="1: ▁dog").click()
    expect(page.locator("#ins-head-view")).to_contain_text("query token 1", timeout=60_000)
    expect(page.locator("#ins-head-view")).to_contain_text("−∞ (masked)")
    page.screenshot(path=str(ARTIFACTS / "inside-head.png"), full_page=True)
    for name, element, text in [("3. The block", "#ins-block", "cross-attention output"), ("4. Residual stream", "#ins-residual", "layer"),
                                ("5. Parameters", "#ins-params", "relative position bias")]:
        page.locator(element).scroll_into_view_if_needed()
        expect(page.locator(element)).to_contain_text(text, timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / f"inside-{name[0]}.png"), full_page=True)
    assert page.outside_requests == []


# ---- the Llama family: RMSNorm, rotary positions, grouped-query attention, SwiGLU (issue 31, item 2) --------------


def _tiny_llama():
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(2)
    config = LlamaConfig(vocab_size=50257, hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=64, rope_theta=500.0, rms_norm_eps=1e-6,
                         attn_implementation="eager")
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # norms' scales away from 1, so a missing one would show
    return model, AutoTokenizer.from_pretrained(PROJECT_ROOT / "assets" / "tokenizers" / "gpt2")


def _rotate(x, position, theta):
    """RoPE written out (the rotate-half layout transformers uses): pairs (i, i + d/2) turned by position · θ^(−2i/d)."""
    d = x.shape[-1]
    angles = position * theta ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)
    cos, sin = torch.cat([angles, angles]).cos(), torch.cat([angles, angles]).sin()
    half = torch.cat([-x[..., d // 2:], x[..., : d // 2]], dim=-1)
    return x * cos + half * sin


def test_llama_every_vector_recomputed_from_the_layers_own_weights():
    model, tok = _tiny_llama()
    text = TEXT
    ids = torch.tensor([tok(text)["input_ids"]])
    with torch.no_grad():
        out = model(ids, output_hidden_states=True, output_attentions=True)
    T, H, KV, d, theta = ids.shape[1], 4, 2, 8, 500.0
    for layer, head, token in ((0, 3, T - 1), (1, 1, T // 2), (2, 2, T - 1)):
        r = inside.inside(model, tok, text, layer, head, token)
        blk = model.model.layers[layer]
        h = out.hidden_states[layer][0]
        rms = lambda v, mod: v / torch.sqrt(v.pow(2).mean(-1, keepdim=True) + mod.variance_epsilon) * mod.weight  # noqa: E731
        x = rms(h, blk.input_layernorm)
        assert torch.allclose(_t(r.x), x[token], atol=1e-5)
        q = (x @ blk.self_attn.q_proj.weight.T).view(T, H, d)
        k = (x @ blk.self_attn.k_proj.weight.T).view(T, KV, d)
        v = (x @ blk.self_attn.v_proj.weight.T).view(T, KV, d)
        kv = head // (H // KV)
        assert r.kv_head == kv and r.n_kv_heads == KV
        q_rot = _rotate(q[token, head], token, theta)
        k_rot = torch.stack([_rotate(k[j, kv], j, theta) for j in range(T)])
        assert torch.allclose(_t(r.rope["q_unrotated"]), q[token, head], atol=1e-5)
        assert torch.allclose(_t(r.q), q_rot, atol=1e-5) and torch.allclose(_t(r.rope["q_rotated"]), q_rot, atol=1e-5)
        assert torch.allclose(_t(r.k), k_rot, atol=1e-5) and torch.allclose(_t(r.v), v[:, kv], atol=1e-5)
        assert r.rope["base"] == theta and torch.allclose(_t(r.rope["angles"]), token * theta ** (-torch.arange(0, d, 2) / d), atol=1e-5)
        scores = k_rot @ q_rot
        assert torch.allclose(_t(r.scores), scores, atol=1e-4) and r.scale == pytest.approx(d ** -0.5)
        weights = _softmax_row(scores * d ** -0.5, torch.arange(T) <= token)
        assert torch.allclose(_t(r.weights), weights, atol=1e-5)
        assert torch.allclose(_t(r.weights), out.attentions[layer][0, head, token], atol=1e-5)
        assert torch.allclose(_t(r.head_output), weights @ v[:, kv], atol=1e-5)
        mid = h[token] + _t(r.attention_output)
        y = rms(mid, blk.post_attention_layernorm)
        swiglu = (torch.nn.functional.silu(y @ blk.mlp.gate_proj.weight.T) * (y @ blk.mlp.up_proj.weight.T)) @ blk.mlp.down_proj.weight.T
        assert torch.allclose(_t(r.mlp_output), swiglu, atol=1e-5)
        nxt = out.hidden_states[layer + 1][0, token]
        mine = _t(r.hidden_out) if layer < 2 else rms(_t(r.hidden_out), model.model.norm)  # the last has the final norm on top
        assert torch.allclose(mine, nxt, atol=1e-4)
    assert r.activation == "swiglu (silu gate)" and r.embedding.position is None
    assert sum(c.count for c in r.components) == sum(p.numel() for p in model.parameters())
    for c in r.components:
        assert c.formula.endswith(f"= {c.count:,}"), c
    payload = r.to_json()
    assert set(payload["rope"]) == {"base", "angles", "q_unrotated", "q_rotated", "k_unrotated", "k_rotated"}
    assert len(payload["rope"]["k_rotated"]) == T and payload["n_kv_heads"] == 2


def test_llama_views_show_rope_and_the_grouped_head():
    from playground.core.render import inside as views

    model, tok = _tiny_llama()
    r = inside.inside(model, tok, TEXT, 1, 3, -1)
    # the score-by-distance plot's claim, on the model's own rotation: q at position t against k at position j scores as the
    # unrotated pair moved Δ = t − j apart
    for j in (0, 3, r.token):
        by_distance = views.rope_scores(r.rope["q_unrotated"], r.rope["k_unrotated"][j], r.rope["base"])
        assert r.scores[j] == pytest.approx(by_distance[r.token - j], abs=1e-4)
    head = views.head_view(r)
    assert "RoPE" in head and "key/value head 1 of 2" in head and "q rotated" in head and "distance Δ" in head
    assert "SwiGLU" in views.block_view(r) and "rotates every query and key" in views.embeddings_view(r, [], None)


def test_llama_rope_stands_beside_gpt2s_learned_positions():
    """Issue 31, item 2: beside the RoPE plot, GPT-2's learned position embeddings on the same positions: cos(p_t, p_{t−Δ})
    recomputed here from the model's own wpe; the page draws both for a Llama model and neither for GPT-2."""
    from playground.config import Settings
    from playground.core.render import inside as views
    from playground.models.loader import ModelLoader
    from playground.ui import inside_tab as tab

    loader = ModelLoader(Settings(offline=True, device="cpu"))
    gpt = loader.load("gpt2", "causal-lm").model
    curves = inside.learned_position_curves(gpt, [5, 70])
    wpe = gpt.transformer.wpe.weight.detach()
    assert curves["positions"] == [5, 70] and curves["context"] == wpe.shape[0]
    assert len(curves["curves"][5]) == 6 and len(curves["curves"][70]) == 64  # Δ = 0..t, at most 63
    for t, delta in [(5, 0), (5, 5), (70, 1), (70, 63)]:
        expected = float(wpe[t] @ wpe[t - delta] / (wpe[t].norm() * wpe[t - delta].norm()))
        assert curves["curves"][t][delta] == pytest.approx(expected, abs=1e-5)
    assert curves["curves"][70][:6] != pytest.approx(curves["curves"][5], abs=1e-3)  # learned: the curve depends on t

    model, tok = _tiny_llama()
    r = inside.inside(model, tok, TEXT, 1, 3, -1)
    assert "Learned positions" not in views.head_view(r)
    r.learned_positions = {**curves, "model": "gpt2"}
    page = views.head_view(r)
    assert "Learned positions (gpt2)" in page and "query at position 70" in page and "RoPE (this model)" in page
    text = "ROMEO. O, she doth teach the torches to burn bright!"
    llama_page = tab.on_run(loader, tab.InsideRequest(model="assets/models/llama-shakespeare", text=text), progress=None)[6]
    gpt_page = tab.on_run(loader, tab.InsideRequest(model="gpt2", text=text), progress=None)[6]
    assert "Learned positions (gpt2: assets/models/gpt-shakespeare)" in llama_page and "Learned positions" not in gpt_page


def test_mixtral_inside_writes_the_experts_out():
    """Issue 31: Inside on a Mixtral model: attention as Llama's (RoPE, grouped heads), and the MLP as a mixture of
    experts written out here again: p = softmax(W_r y), the top 2 run, mixed by p renormalized; hidden_out equals the
    model's hidden_states; the router probabilities equal output_router_logits' softmax; the parameter formulas add up."""
    from transformers import AutoTokenizer, MixtralConfig, MixtralForCausalLM

    from playground.core.render import inside as views

    torch.manual_seed(3)
    model = MixtralForCausalLM(MixtralConfig(
        vocab_size=50257, hidden_size=32, intermediate_size=24, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        num_local_experts=4, num_experts_per_tok=2, max_position_embeddings=64, rope_theta=500.0, attn_implementation="eager",
    )).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    tok = AutoTokenizer.from_pretrained(PROJECT_ROOT / "assets" / "tokenizers" / "gpt2")
    ids = torch.tensor([tok(TEXT)["input_ids"]])
    with torch.no_grad():
        out = model(ids, output_hidden_states=True, output_attentions=True, output_router_logits=True)
    T = ids.shape[1]
    for layer, head, token in ((0, 3, T - 1), (1, 0, T // 2)):
        r = inside.inside(model, tok, TEXT, layer, head, token)
        blk = model.model.layers[layer]
        assert r.family == "llama" and r.n_kv_heads == 2 and r.kv_head == head // 2
        assert torch.allclose(_t(r.weights), out.attentions[layer][0, head, token], atol=1e-5)
        mid = out.hidden_states[layer][0, token] + _t(r.attention_output)
        y = mid / torch.sqrt(mid.pow(2).mean() + blk.post_attention_layernorm.variance_epsilon) * blk.post_attention_layernorm.weight
        p = (y @ blk.mlp.gate.weight.T).softmax(-1)
        assert torch.allclose(_t(r.experts["router_probs"]), p, atol=1e-5)
        assert torch.allclose(p, out.router_logits[layer].reshape(T, -1)[token].softmax(-1), atol=1e-5)
        top = p.topk(2)
        assert r.experts["chosen"] == top.indices.tolist() and r.experts["count"] == 4 and r.experts["top_k"] == 2
        mixed = torch.zeros(32)
        for w, e in zip(top.values / top.values.sum(), top.indices):
            gate_up = blk.mlp.experts.gate_up_proj[e]  # [2 * d_ff, d]: the gate's rows, then the up projection's
            gate, up = y @ gate_up[:24].T, y @ gate_up[24:].T
            mixed += w * ((torch.nn.functional.silu(gate) * up) @ blk.mlp.experts.down_proj[e].T)
        assert torch.allclose(_t(r.mlp_output), mixed, atol=1e-5)
        if layer == 0:
            assert torch.allclose(_t(r.hidden_out), out.hidden_states[1][0, token], atol=1e-4)
    assert sum(c.count for c in r.components) == sum(p.numel() for p in model.parameters())
    for c in r.components:
        assert c.formula.endswith(f"= {c.count:,}"), c
    assert r.neurons == [] and r.to_json()["experts"]["count"] == 4
    page = views.block_view(r)
    assert "a mixture of 4 experts" in page and page.count(">ran<") == 2 and "most active neurons" not in page
