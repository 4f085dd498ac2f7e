"""Attention viewer: weights equal transformers' own tensors; rollout and value-weighted attention equal
computations written out here from the layers' own projections; views, caps and errors; the tab's handlers."""

from __future__ import annotations

import json
from html import escape
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

from playground.core.render import attention as attention_views
from playground.core.text import attention
from playground.errors import InputError
from playground.models import Family, ModelLoader
from playground.models.results import resolve
from playground.ui import attention_tab as tab

TEXT = "The animal didn't cross the street because it was too tired."
# (folder under the tiny models' root, the family the loader should detect, its architecture)
TINY = [("tiny-bert", Family.MASKED_LM, "encoder"), ("tiny-bert-base", Family.ENCODER, "encoder"),
        ("tiny-gpt", Family.CAUSAL_LM, "decoder"), ("tiny-t5", Family.SEQ2SEQ, "encoder-decoder")]


@pytest.fixture
def loader(shared_loader) -> ModelLoader:
    return shared_loader


def load(loader, tiny_root, name):
    source = str(tiny_root / name)
    return loader.load(source, loader.transformer_family(source), attention=True)


def own_attentions(lm, text: str, decoder_ids=None) -> dict[str, np.ndarray]:
    """transformers' own output_attentions tensors, as [layer, head, query, key] arrays."""
    enc = lm.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        if decoder_ids is None:
            out = lm.model(**enc, output_attentions=True)
            return {"all": torch.stack(out.attentions)[:, 0].numpy()}
        out = lm.model(**enc, decoder_input_ids=decoder_ids, output_attentions=True)
    return {k: torch.stack(v)[:, 0].numpy() for k, v in
            (("encoder", out.encoder_attentions), ("decoder", out.decoder_attentions), ("cross", out.cross_attentions))}


# ---- the weights are the model's own ---------------------------------------------------------------


@pytest.mark.parametrize("name, family, arch", TINY)
def test_weights_equal_transformers_own_and_obey_the_masks(loader, tiny_root, name, family, arch):
    assert loader.transformer_family(str(tiny_root / name)) is family
    lm = load(loader, tiny_root, name)
    target = "Das Tier ist müde." if arch == "encoder-decoder" else ""
    r = attention.run_attention(lm.model, lm.tokenizer, TEXT, target, max_tokens=64, name=name)
    assert r.architecture == arch
    if arch == "encoder-decoder":
        labels = lm.tokenizer(text_target=target, return_tensors="pt").input_ids
        decoder_ids = lm.model._shift_right(labels)  # teacher forcing: the target shifted right
        own = own_attentions(lm, TEXT, decoder_ids)
        assert set(r.attentions) == {"encoder", "decoder", "cross"}
        for kind in own:
            np.testing.assert_array_equal(r.attentions[kind], own[kind])
        assert r.target_tokens == lm.tokenizer.convert_ids_to_tokens(decoder_ids[0])
        n_src, n_tgt = len(r.tokens), len(r.target_tokens)
        assert r.attentions["cross"].shape[2:] == (n_tgt, n_src)  # target x source
        assert np.all(np.triu(r.attentions["decoder"], k=1) == 0)  # causal
    else:
        assert list(r.attentions) == [arch]
        np.testing.assert_array_equal(r.attentions[arch], own_attentions(lm, TEXT)["all"])
        if arch == "decoder":
            assert np.all(np.triu(r.attentions[arch], k=1) == 0)
        else:
            assert np.all(np.triu(r.attentions[arch], k=1).sum(axis=(-1, -2)) > 0)  # encoders look ahead
    for a in r.attentions.values():
        np.testing.assert_allclose(a.sum(axis=-1), 1.0, atol=1e-5)
    assert r.tokens == lm.tokenizer.convert_ids_to_tokens(lm.tokenizer(TEXT).input_ids)


def test_encoder_decoder_defaults_to_its_own_greedy_output(loader, tiny_root):
    lm = load(loader, tiny_root, "tiny-t5")
    r = attention.run_attention(lm.model, lm.tokenizer, "translate: hello", "", max_tokens=8)
    generated = lm.model.generate(**lm.tokenizer("translate: hello", return_tensors="pt"), max_new_tokens=8, do_sample=False)
    assert r.target_tokens == lm.tokenizer.convert_ids_to_tokens(generated[0, :-1])
    assert any("greedy output" in n for n in r.notes)


def test_long_text_is_cut_at_the_cap_with_a_notice(loader, tiny_root):
    lm = load(loader, tiny_root, "tiny-bert")
    r = attention.run_attention(lm.model, lm.tokenizer, "word " * 100, max_tokens=16)
    assert len(r.tokens) == 16 and r.truncated and r.n_tokens_before_cap == 102
    assert r.attentions["encoder"].shape[-1] == 16 and "only the first 16" in r.notes[0]
    gpt = load(loader, tiny_root, "tiny-gpt")  # the tiny GPT reads at most 32 positions
    r = attention.run_attention(gpt.model, gpt.tokenizer, "word " * 100, max_tokens=64)
    assert len(r.tokens) == 32 and "reads at most 32" in r.notes[0]


@pytest.mark.parametrize("text, target, max_tokens, fragment", [
    ("", "", 16, "Enter a text"),
    ("x" * (attention.MAX_TEXT_CHARS + 1), "", 16, "limit is"),
    ("hi", "", attention.MAX_TOKENS + 1, "between 2 and 512"),
    ("hi", "", 1.5, "whole number"),
    ("hi", 3, 16, "must be text"),
])
def test_bad_requests_are_refused_clearly(loader, tiny_root, text, target, max_tokens, fragment):
    lm = load(loader, tiny_root, "tiny-bert")
    with pytest.raises(InputError, match=fragment):
        attention.run_attention(lm.model, lm.tokenizer, text, target, max_tokens=max_tokens)


def test_sdpa_model_is_refused_with_the_fix(loader, tiny_root):
    lm = loader.load(str(tiny_root / "tiny-bert"), "masked-lm")  # attention=False: SDPA
    with pytest.raises(InputError, match="eager attention"):
        attention.run_attention(lm.model, lm.tokenizer, TEXT)


# ---- rollout and value-weighted attention, written out ----------------------------------------------


def test_rollout_equals_the_product_written_out(loader, tiny_root):
    lm = load(loader, tiny_root, "tiny-bert")
    r = attention.run_attention(lm.model, lm.tokenizer, TEXT)
    with torch.no_grad():
        att = lm.model(**lm.tokenizer(TEXT, return_tensors="pt"), output_attentions=True).attentions
    n = att[0].shape[-1]
    expected = torch.eye(n)
    for layer in att:  # Abnar & Zuidema: 0.5 A + 0.5 I, rows renormalized, multiplied from the first layer up
        a = 0.5 * layer[0].mean(0) + 0.5 * torch.eye(n)
        expected = (a / a.sum(-1, keepdim=True)) @ expected
    np.testing.assert_allclose(attention.rollout(r.attentions["encoder"])[-1], expected.numpy(), atol=1e-5)


def _value_norms_by_hand(lm, arch: str) -> dict[str, torch.Tensor]:
    """||f(x_j)|| per layer and head from the layers' own value and output projections (the paper's f)."""
    cfg = lm.model.config
    enc = lm.tokenizer(TEXT, return_tensors="pt")
    with torch.no_grad():
        if arch == "encoder":  # BERT: post-LN, the layer input is the previous hidden state
            hidden = lm.model(**enc, output_hidden_states=True).hidden_states
            base = lm.model.base_model
            heads, d = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
            out = []
            for layer, x in zip(base.encoder.layer, hidden):
                v = layer.attention.self.value(x)[0]  # [T, H*d]
                w = layer.attention.output.dense.weight  # [hidden, H*d]
                out.append(torch.stack([(v[:, h * d:(h + 1) * d] @ w[:, h * d:(h + 1) * d].T).norm(dim=-1) for h in range(heads)]))
            return {"encoder": torch.stack(out)}
        # GPT-2: pre-LN; c_attn and c_proj are Conv1D (x @ W + b)
        hidden = lm.model(**enc, output_hidden_states=True).hidden_states
        heads, d = cfg.n_head, cfg.n_embd // cfg.n_head
        out = []
        for block, x in zip(lm.model.transformer.h, hidden):
            v = block.attn.c_attn(block.ln_1(x))[0, :, 2 * cfg.n_embd:]
            w = block.attn.c_proj.weight  # [H*d, hidden]
            out.append(torch.stack([(v[:, h * d:(h + 1) * d] @ w[h * d:(h + 1) * d]).norm(dim=-1) for h in range(heads)]))
        return {"decoder": torch.stack(out)}


@pytest.mark.parametrize("name, arch", [("tiny-bert", "encoder"), ("tiny-gpt", "decoder")])
def test_value_weighted_equals_the_layers_own_projections(loader, tiny_root, name, arch):
    lm = load(loader, tiny_root, name)
    r = attention.run_attention(lm.model, lm.tokenizer, TEXT)
    norms = _value_norms_by_hand(lm, arch)[arch].numpy()
    np.testing.assert_allclose(r.value_norms[arch], norms, rtol=1e-4, atol=1e-6)
    weighted = attention.value_weighted(r.attentions[arch], r.value_norms[arch])
    np.testing.assert_allclose(weighted, r.attentions[arch] * norms[:, :, None, :], rtol=1e-4, atol=1e-7)


def test_t5_value_norms_for_all_three_kinds(loader, tiny_root):
    lm = load(loader, tiny_root, "tiny-t5")
    r = attention.run_attention(lm.model, lm.tokenizer, TEXT, "Das Tier.")
    enc = lm.tokenizer(TEXT, return_tensors="pt")
    cfg = lm.model.config
    with torch.no_grad():
        out = lm.model(**enc, decoder_input_ids=lm.model._shift_right(lm.tokenizer(text_target="Das Tier.", return_tensors="pt").input_ids),
                       output_hidden_states=True)
        block = lm.model.encoder.block[1]  # encoder layer 2: T5 is pre-LN
        x = block.layer[0].layer_norm(out.encoder_hidden_states[1])
        v = block.layer[0].SelfAttention.v(x)[0]
        w = block.layer[0].SelfAttention.o.weight
        d = cfg.d_kv
        expected = torch.stack([(v[:, h * d:(h + 1) * d] @ w[:, h * d:(h + 1) * d].T).norm(dim=-1) for h in range(cfg.num_heads)])
        cross = lm.model.decoder.block[0].layer[1].EncDecAttention  # cross-attention values come from the encoder output
        vc = cross.v(out.encoder_last_hidden_state)[0]
        expected_cross = torch.stack(
            [(vc[:, h * d : (h + 1) * d] @ cross.o.weight[:, h * d : (h + 1) * d].T).norm(dim=-1) for h in range(cfg.num_heads)]
        )
    np.testing.assert_allclose(r.value_norms["encoder"][1], expected.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(r.value_norms["cross"][0], expected_cross.numpy(), rtol=1e-4, atol=1e-6)
    assert r.value_norms["decoder"].shape == r.attentions["decoder"].shape[:3]


# ---- views ------------------------------------------------------------------------------------------


@pytest.fixture
def t5_result(loader, tiny_root) -> attention.AttentionResult:
    lm = load(loader, tiny_root, "tiny-t5")
    return attention.run_attention(lm.model, lm.tokenizer, TEXT, "Das Tier ist müde.")


@pytest.mark.parametrize("view", attention_views.VIEWS)
@pytest.mark.parametrize("kind", ["encoder", "decoder", "cross"])
def test_every_view_renders_html_and_png(t5_result, view, kind):
    req = attention_views.ViewRequest(view=view, kind=kind, layer=1, head=1, focus="in:3", top_k=2)
    if view == "rollout" and kind == "cross":
        with pytest.raises(InputError, match="self-attention"):
            attention_views.build_view(t5_result, req)
        return
    v = attention_views.build_view(t5_result, req)
    html = attention_views.render_html(v)
    assert html.count("<svg") == len(v.panels) == (3 if view == "kinds" else 2 if view == "value" else 1)
    png = attention_views.render_png(v)
    assert png.width > 100 and png.height > 100


def test_heatmap_cells_carry_their_values_on_hover(t5_result):
    v = attention_views.build_view(t5_result, attention_views.ViewRequest(view="head", kind="cross", layer=0, head=1))
    p = v.panels[0]
    assert (p.rows, p.cols) == (t5_result.target_tokens, t5_result.tokens)  # labelled by the tokens on each side
    html = attention_views.render_html(v)
    value = t5_result.attentions["cross"][0, 1, 2, 3]
    assert f"<title>{escape(p.rows[2])} → {escape(p.cols[3])}: {value:.3f}</title>" in html  # labels escaped


def test_hidden_specials_and_pooled_words_keep_rows_summing_to_one(loader, tiny_root):
    lm = load(loader, tiny_root, "tiny-bert")
    r = attention.run_attention(lm.model, lm.tokenizer, "Tokenizers split unbelievable words.")
    v = attention_views.build_view(r, attention_views.ViewRequest(view="head", kind="encoder", hide_special=True, pool_words=True))
    p = v.panels[0]
    assert "[CLS]" not in p.rows and "tokenizers" in p.rows and "unbelievable" in p.cols
    np.testing.assert_allclose(p.matrix.sum(-1), 1.0, atol=1e-5)
    # the first word's cell on itself: the mean over its query pieces of the sum over its key pieces
    keep = [i for i, s in enumerate(r.special) if not s]
    raw = attention.select(r.attentions["encoder"][0, 0], keep, keep, True)
    pieces = [i for i, w in enumerate(r.words[k] for k in keep) if w == r.words[keep[0]]]
    assert p.matrix[0, 0] == pytest.approx(raw[pieces][:, pieces].sum(-1).mean(), abs=1e-6)


def test_focus_outlines_the_token_and_summarizes_it(t5_result):
    v = attention_views.build_view(t5_result, attention_views.ViewRequest(view="head", kind="encoder", focus="in:2"))
    html = attention_views.render_html(v)
    token = t5_result.tokens[2]
    assert "attends most to" in html and "is attended most by" in html and token in html
    assert html.count(attention_views.FOCUS) == 2  # its row and its column


def test_model_view_tiles_map_clicks_to_layer_and_head(t5_result):
    att = t5_result.attentions["encoder"]
    m = attention_views.mosaic(att, attention_views.sinks_of(t5_result, "encoder"))
    assert m.layers == [0, 1] and m.heads == 2
    assert m.locate(m.left + m.pitch + 2, m.top + m.pitch_y + 2) == (1, 1)
    assert m.locate(0, 0) is None
    share = attention.sink_share(att, attention_views.sinks_of(t5_result, "encoder"))
    np.testing.assert_allclose(share, att[..., [0, len(t5_result.tokens) - 1]].sum(-1).mean(-1), atol=1e-6)  # first token and </s>


def test_model_view_subsamples_many_layers():
    att = np.full((48, 16, 4, 4), 0.25, dtype=np.float32)  # 768 heads
    m = attention_views.mosaic(att, [0])
    assert len(m.layers) * 16 <= attention_views.MAX_TILES and m.layers[0] == 0 and m.layers[-1] == 47


@pytest.mark.parametrize("req, fragment", [
    (attention_views.ViewRequest(view="map"), "view must be one of"),
    (attention_views.ViewRequest(kind="cross"), "attention kind must be one of"),
    (attention_views.ViewRequest(layer=9), "layer must be between 0 and 1"),
    (attention_views.ViewRequest(view="kinds"), "encoder-decoder"),
    (attention_views.ViewRequest(focus="x:1"), "focus must look like"),
])
def test_bad_view_requests_say_what_to_change(loader, tiny_root, req, fragment):
    lm = load(loader, tiny_root, "tiny-bert")
    r = attention.run_attention(lm.model, lm.tokenizer, "hello world")
    with pytest.raises(InputError, match=fragment):
        attention_views.build_view(r, req)


def test_npz_and_json_exports_hold_the_weights(t5_result, tmp_path):
    t5_result.to_npz(tmp_path / "w.npz")
    data = np.load(tmp_path / "w.npz")
    np.testing.assert_array_equal(data["attention_cross"], t5_result.attentions["cross"])
    assert list(data["tokens"]) == t5_result.tokens
    js = json.loads(json.dumps(t5_result.to_json()))
    assert set(js["attentions"]) == {"encoder", "decoder", "cross"}
    np.testing.assert_array_equal(np.array(js["attentions"]["decoder"], dtype=np.float32), t5_result.attentions["decoder"])


# ---- the tab's handlers, called directly ------------------------------------------------------------


def test_on_run_then_on_view_and_the_downloads(loader, tiny_root):
    handle, notice, kind, layer, head, focus, files, views = tab.on_run(
        loader, tab.AttentionRequest(str(tiny_root / "tiny-gpt"), TEXT, "", 128), progress=None
    )
    assert "kinds" not in [v for _, v in views["choices"]] and views["value"] == "head"  # T5's three kinds: not offered on GPT
    assert "Running" in notice and files is None
    result = resolve(handle)  # the session keeps a handle; the weights stay on the server, counted in its budget
    assert loader.memory_used() >= result.nbytes > 0
    assert kind["choices"] == ["decoder"] and layer["maximum"] == 2 and head["maximum"] == 2
    assert focus["choices"][1] == ("0: The", "in:0")
    args = (tab.ViewChoice("lines", "decoder", 2, 1, True, "in:1", False, False, 2), handle)
    html, grid = tab.on_view(*args)
    assert "layer 2, all heads" in html and Image.open(grid).size[0] > 50  # a PNG file written once (see test_pictures)
    png, weights_json, weights_npz = tab.on_export(*args)
    assert open(png, "rb").read(4) == b"\x89PNG"
    assert json.loads(open(weights_json).read())["tokens"] == result.tokens
    np.testing.assert_array_equal(np.load(weights_npz)["attention_decoder"], result.attentions["decoder"])
    with pytest.raises(gr.Error, match="layer must be a whole number from 1"):
        tab.on_view(tab.ViewChoice("head", "decoder", 0, 1, False, "", False, False, 3), result)
    with pytest.raises(gr.Error, match="Run a text first"):
        tab.on_view(tab.ViewChoice("head", "decoder", 1, 1, False, "", False, False, 3), None)


def test_clicking_the_model_view_opens_that_head(loader, tiny_root):
    result = resolve(tab.on_run(loader, tab.AttentionRequest(str(tiny_root / "tiny-bert"), TEXT, "", 64), progress=None)[0])
    m = attention_views.mosaic(result.attentions["encoder"], attention_views.sinks_of(result, "encoder"))
    layer, head, view = tab.on_pick_head(result, "encoder", SimpleNamespace(index=[m.left + m.pitch + 1, m.top + m.pitch_y + 1]))
    assert (layer["value"], head["value"], view) == (2, 2, "head")


def test_on_compare_shows_an_encoder_and_a_decoder(loader, tiny_root):
    html = tab.on_compare(loader, str(tiny_root / "tiny-bert"), str(tiny_root / "tiny-gpt"), "a b c d", 32, progress=None)
    assert html.count("<svg") == 2 and "(encoder)" in html and "(decoder)" in html


@pytest.mark.parametrize(
    "model, fragment", [("", "Choose a model"), ("/etc", "outside the folders"), ("no such model!", "neither a Hub id")]
)
def test_on_run_refuses_bad_models(loader, model, fragment):
    with pytest.raises(gr.Error, match=fragment):
        tab.on_run(loader, tab.AttentionRequest(model, TEXT, "", 32), progress=None)


def test_sessions_results_count_in_the_budget_and_the_oldest_go_first(settings, tiny_root):
    """Each session's kept run counts against PLAYGROUND_MEMORY_GB; past it the oldest sessions' runs are released
    (they are told to run again) and the newest stays, with the models untouched."""
    from dataclasses import replace

    probe = ModelLoader(settings)
    one = resolve(tab.on_run(probe, tab.AttentionRequest(str(tiny_root / "tiny-bert"), TEXT, "", 64), progress=None)[0])
    model_bytes = probe.memory_used() - one.nbytes
    loader = ModelLoader(replace(settings, memory_gb=(model_bytes + 3.5 * one.nbytes) / 2**30))  # room for 3 runs
    handles = [tab.on_run(loader, tab.AttentionRequest(str(tiny_root / "tiny-bert"), TEXT, "", 64), progress=None)[0] for _ in range(5)]
    assert loader.memory_used() <= loader.settings.memory_budget_bytes
    assert len(loader.loaded()) == 1  # the model stayed
    for h in handles[:2]:
        with pytest.raises(gr.Error, match="released to make room"):
            tab.on_view(tab.ViewChoice("head", "encoder", 1, 1, False, "", False, False, 3), h)
    for h in handles[2:]:
        tab.on_view(tab.ViewChoice("head", "encoder", 1, 1, False, "", False, False, 3), h)
    # a session that runs again releases its own previous run
    again = tab.on_run(loader, tab.AttentionRequest(str(tiny_root / "tiny-bert"), TEXT, "", 64), handles[-1], progress=None)[0]
    assert len(loader.results) == 3 and resolve(again).tokens == one.tokens


@pytest.mark.parametrize("name, offered", [("tiny-bert", False), ("tiny-gpt", False), ("tiny-t5", True)])
def test_only_the_views_that_apply_are_offered(loader, tiny_root, name, offered):
    views = tab.on_run(loader, tab.AttentionRequest(str(tiny_root / name), TEXT, "", 32), progress=None)[-1]
    values = [v for _, v in views["choices"]]
    assert ("kinds" in values) is offered and "value" in values and values[0] == "head"


def test_the_page_says_where_an_embedded_model_is_out_of_its_depth():
    """The embedded BERT was trained on 32-token windows: past them its attention washes out, and the page says so."""
    from playground.config import Settings

    loader = ModelLoader(Settings(offline=True, device="cpu"))
    long_text = " ".join(["the king is dead and the queen is dead"] * 8)
    notes = resolve(tab.on_run(loader, tab.AttentionRequest("bert-base-uncased", long_text, "", 128), progress=None)[0]).notes
    assert any("trained on windows of 32 tokens" in n and "out of its depth" in n for n in notes)
    short = resolve(tab.on_run(loader, tab.AttentionRequest("bert-base-uncased", "the king is dead", "", 128), progress=None)[0]).notes
    assert not any("out of its depth" in n for n in short)
    assert loader.load("gpt2", "causal-lm").trained_length == 128 and loader.load("t5-small", "seq2seq").trained_length is None


def test_a_grouped_query_model_says_which_heads_share_keys_and_values():
    """Issue 31, item 1: a Llama-family model's attention (4 query heads, 2 key/value heads) equals output_attentions,
    and the view says how the heads are grouped and what the KV cache saves."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from playground.config import ASSETS_DIR
    from playground.core.text.attention import run_attention

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50257, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                         attn_implementation="eager")).eval()
    tokenizer = AutoTokenizer.from_pretrained(ASSETS_DIR / "tokenizers" / "gpt2")
    r = run_attention(model, tokenizer, "The cat sat on the mat.", max_tokens=32)
    with torch.no_grad():
        expected = torch.stack([a[0] for a in model(**tokenizer("The cat sat on the mat.", return_tensors="pt"),
                                                   output_attentions=True).attentions]).numpy()
    assert r.attentions["decoder"].shape == expected.shape and abs(r.attentions["decoder"] - expected).max() < 1e-6
    note = next(n for n in r.notes if n.startswith("Grouped-query attention"))
    assert "heads 1-2 read key/value head 1; heads 3-4 read key/value head 2" in note and "2x smaller" in note
    # drawn grouped: the model view puts heads 1-2 and 3-4 under brackets "KV 1", "KV 2" (room above, a line between);
    # the one-head view names the head's group; the JSON says how many key/value heads there are
    from playground.core.render import attention as views

    assert r.kv_heads == 2 and r.to_json()["kv_heads"] == 2
    grouped, plain = views.mosaic(r.attentions["decoder"], [0], r.kv_heads), views.mosaic(r.attentions["decoder"], [0])
    assert grouped.top == plain.top + 18 and grouped.image.height == plain.image.height + 18
    assert grouped.locate(grouped.left + 3 * grouped.pitch + 2, grouped.top + 2) == (0, 3)
    bracket = np.asarray(grouped.image)[grouped.top - 20, grouped.left: grouped.left + 2 * grouped.pitch - 6]
    assert (bracket < 128).all()  # one unbroken dark line over heads 1-2
    between = np.asarray(grouped.image)[grouped.top + 10, grouped.left + 2 * grouped.pitch - 3]
    assert tuple(between) == (150, 150, 150)  # the line parting the groups
    view = views.build_view(r, views.ViewRequest(kind="decoder", view="head", layer=1, head=2))
    assert "(key/value head 2, shared by heads 3-4)" in view.panels[0].title
    gpt = run_attention(AutoModelForCausalLM.from_pretrained(ASSETS_DIR / "models" / "gpt-shakespeare", attn_implementation="eager"),
                        AutoTokenizer.from_pretrained(ASSETS_DIR / "models" / "gpt-shakespeare"), "The cat sat.", max_tokens=32)
    assert gpt.kv_heads is None and "shared by" not in views.build_view(gpt, views.ViewRequest(kind="decoder", view="head")).panels[0].title
