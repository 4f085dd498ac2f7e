"""The app shell: builds without launching, loads nothing at start-up, answers over HTTP."""

from __future__ import annotations

import urllib.request

import gradio as gr
import pytest
from gradio_client import Client

from playground.config import Settings
from playground.models import PRESETS, ModelLoader
from playground.ui import build_app

TABS = ["Start", "Tokenizer", "Attention", "Inside", "Interventions", "GPT", "BERT", "T5", "Diffusion", "Text-to-image", "Training",
        "Models"]


def test_app_builds_with_every_tab_and_loads_nothing():
    loader = ModelLoader(Settings(offline=True, device="cpu"))
    demo = build_app(loader.settings, loader)
    labels = [block.label for block in demo.blocks.values() if isinstance(block, gr.Tab)]
    assert labels == TABS
    assert loader.load_count == 0 and loader.loaded() == []


def test_named_api_endpoints_exist():
    demo = build_app(Settings(offline=True, device="cpu"))
    names = {d.api_name for d in demo.fns.values() if d.api_name and d.api_visibility == "public"}
    assert {
        "tokenize",
        "explain_word",
        "models",
        "attention",
        "generate",
        "fill_mask",
        "embed",
        "text2text",
        "forward_noise",
        "denoise",
        "inside",
        "score",
        "ablate",
        "patch",
        "sink",
        "kv_cache",
        "route",
        "clip",
        "unclip",
        "variations",
        "designs",
        "train_flow",
    } <= names
    assert "load_model" not in names  # model management is not a public API


@pytest.mark.parametrize("admin", [False, True])
def test_no_visitor_can_load_or_evict_models_through_the_api(admin):
    """Even with the operator's load form on, loading by hand is never a public endpoint."""
    demo = build_app(Settings(offline=True, device="cpu", model_admin=admin))
    public = {d.fn.__name__ for d in demo.fns.values() if d.api_visibility == "public"}
    assert not any("load_model" in name for name in public)
    from playground.ui.models_tab import on_load_model

    loader = ModelLoader(Settings(offline=True, device="cpu", model_admin=True))
    message = on_load_model(loader, "tokenizer", "bert-base-uncased", False)[0]
    assert "embedded" in message and "Loaded" in message
    again = on_load_model(loader, "tokenizer", "bert-base-uncased", False)[0]
    assert "already in memory" in again and "Loaded" not in again  # a cache hit does not claim a fresh load time


def test_served_page_loads_nothing_from_a_cdn(live_app):
    html = urllib.request.urlopen(live_app, timeout=30).read().decode()
    for host in ("fonts.googleapis", "cdn.jsdelivr", "unpkg.com", "cdnjs", "fonts.gstatic"):
        assert host not in html


def test_tokenize_endpoint_over_http(live_app):
    client = Client(live_app, verbose=False)
    out = client.predict("Hello world", "gpt2", api_name="/tokenize")
    assert [t["id"] for t in out["tokens"]] == [15496, 995]
    assert out["tokens"][1] == {"id": 995, "text": "Ġworld", "start": 5, "end": 11, "special": False}
    assert out["lossless"] is True and out["counts"]["tokens"] == 2


@pytest.mark.parametrize("text, tokenizer, fragment", [
    ("Hello", "../../etc", "outside the folders"),
    ("Hello", "", "No model given"),
    ("x" * 200_001, "gpt2", "limit"),
    ("Hello", "no such tokenizer!", "neither a Hub id"),
], ids=["outside-the-roots", "no-tokenizer", "too-long", "unknown"])
def test_tokenize_endpoint_rejects_bad_input_clearly(live_app, text, tokenizer, fragment):
    client = Client(live_app, verbose=False)
    with pytest.raises(Exception, match=fragment):
        client.predict(text, tokenizer, api_name="/tokenize")
    # and the app still works afterwards
    assert client.predict("ok", "t5-small", api_name="/tokenize")["tokens"][-1]["text"] == "</s>"


def test_models_endpoint_lists_presets_and_their_sources(live_app):
    client = Client(live_app, verbose=False)
    status, presets, _ = client.predict(api_name="/models")
    assert "HF_HUB_OFFLINE=1" in status
    rows = {(r[0], r[1]): r for r in presets["data"]}
    assert rows[("tokenizer", "gpt2")][2] == "embedded"
    assert rows[("tokenizer", "gpt2")][3] == "assets/tokenizers/gpt2"


@pytest.mark.slow
def test_app_py_serves_offline_and_loads_nothing_at_start_up(tmp_path):
    import os
    import subprocess
    import sys
    import time

    from tests.conftest import PROJECT_ROOT, free_port

    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1"}
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                assert time.time() < deadline, "app.py served no page within 120 s"
                time.sleep(0.2)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        status, presets, loaded = client.predict(api_name="/models")
        assert loaded["data"] == []  # nothing was loaded at start-up
        kinds = {(r[0], r[1]): r[2] for r in presets["data"]}
        assert kinds[("tokenizer", "t5-small")] == "embedded"
        assert len(presets["data"]) == len(PRESETS)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9"}])
def test_prefetch_fails_fast_without_the_hub(env):
    import os
    import subprocess
    import sys
    import time

    from tests.conftest import PROJECT_ROOT

    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "playground.prefetch", "gpt2"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "", **env}, timeout=60)
    assert run.returncode == 2
    assert "error:" in run.stderr and time.perf_counter() - start < 30


def test_attention_endpoint_over_http_on_the_embedded_t5(live_app):
    import numpy as np
    import torch

    client = Client(live_app, verbose=False)
    out = client.predict("t5-small", "reverse words: red cat blue", "blue cat red", api_name="/attention")
    assert set(out) == {"model", "tokens", "target_tokens", "attentions", "truncated", "kv_heads"} and out["kv_heads"] is None
    assert set(out["attentions"]) == {"encoder", "decoder", "cross"} and out["truncated"] is False
    cross = np.array(out["attentions"]["cross"])
    assert cross.shape[2:] == (len(out["target_tokens"]), len(out["tokens"]))  # [layer][head][target][source]
    # the same numbers as the model's own tensors, loaded here independently of the app
    lm = ModelLoader(Settings(offline=True, device="cpu")).load("t5-small", "seq2seq", attention=True)
    enc = lm.tokenizer("reverse words: red cat blue", return_tensors="pt")
    labels = lm.tokenizer(text_target="blue cat red", return_tensors="pt").input_ids
    with torch.no_grad():
        own = lm.model(**enc, decoder_input_ids=lm.model._shift_right(labels), output_attentions=True)
    np.testing.assert_allclose(cross, torch.stack(own.cross_attentions)[:, 0].numpy(), atol=1e-6)
    bert = client.predict("bert-base-uncased", "To be or not to be", api_name="/attention")
    assert list(bert["attentions"]) == ["encoder"] and bert["target_tokens"] == [] and bert["tokens"][0] == "[CLS]"


@pytest.mark.parametrize("model, text, fragment", [("gpt2", "", "Enter a text"), ("/etc", "hi", "outside the folders"),
                                                   ("gpt2", "x" * 20_001, "limit is 20,000")], ids=["empty", "outside", "too-long"])
def test_attention_endpoint_rejects_bad_input_clearly(live_app, model, text, fragment):
    client = Client(live_app, verbose=False)
    with pytest.raises(Exception, match=fragment):
        client.predict(model, text, "", api_name="/attention")
    assert list(client.predict("gpt2", "ok then", api_name="/attention")["attentions"]) == ["decoder"]
