"""The shared model loader on tiny random models: caching, single-flight, budget, safety, offline."""

from __future__ import annotations

import gc
import json
import shutil
import socket
import threading
import time
import weakref
from dataclasses import replace

import pytest
import torch

from playground.config import ConfigError, Settings
from playground.core.cache import shared_lock
from playground.models import Family, LoadError, ModelLoader, SourceError, SourceKind
from playground.models import loader as loader_module
from playground.models.hub import HubProbe, HubStatus
from playground.models.sources import is_hub_id, resolve_source

OFFLINE = HubStatus(False, "HF_HUB_OFFLINE=1 is set", 0.0)


# ---- settings ------------------------------------------------------------------------------------


def test_settings_from_env_reads_every_variable(tmp_path):
    env = {
        "PLAYGROUND_DEVICE": "cpu", "PLAYGROUND_MEMORY_GB": "1.5", "HF_HUB_OFFLINE": "1",
        "PLAYGROUND_MODEL_ROOTS": f"{tmp_path}/a:{tmp_path}/b", "PLAYGROUND_HUB_TIMEOUT_S": "0.5", "HF_HUB_CACHE": str(tmp_path / "c"),
    }
    s = Settings.from_env(env)
    assert (s.device, s.memory_gb, s.offline, s.hub_timeout_s) == ("cpu", 1.5, True, 0.5)
    assert s.model_roots == (tmp_path / "a", tmp_path / "b")
    assert s.hf_cache == tmp_path / "c"


@pytest.mark.parametrize("env, fragment", [
    ({"PLAYGROUND_MEMORY_GB": "lots"}, "PLAYGROUND_MEMORY_GB"),
    ({"PLAYGROUND_MEMORY_GB": "-1"}, "positive"),
    ({"PLAYGROUND_DTYPE": "float8"}, "PLAYGROUND_DTYPE"),
])
def test_settings_reject_malformed_values(env, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Settings.from_env(env)


# ---- sources -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, ok", [
    ("gpt2", True), ("google/ddpm-cifar10-32", True), ("EleutherAI/pythia-70m", True),
    ("a/b/c", False), ("../etc", False), ("bad id", False), ("x--y/z", False), ("-lead", False), ("a" * 97, False),
])
def test_hub_id_validation(text, ok):
    assert is_hub_id(text) is ok


@pytest.mark.parametrize("family, name, folder", [
    ("tokenizer", "gpt2", "tokenizers/gpt2"),
    ("tokenizer", "bert-base-uncased", "tokenizers/bert-base-uncased"),
    ("tokenizer", "t5-small", "tokenizers/t5-small"),
])
def test_presets_resolve_to_embedded_offline(settings, family, name, folder):
    r = resolve_source(name, family, settings, OFFLINE)
    assert r.kind is SourceKind.EMBEDDED
    assert r.location == str((settings.assets_dir / folder).resolve())
    assert "offline" in r.note


def test_preset_prefers_prefetched_cache_offline(settings):
    # a snapshot laid out as huggingface_hub does, at the commit the preset is pinned to: models--gpt2/snapshots/<commit>/
    from playground.models.presets import GPT2_REVISION

    repo = settings.hf_cache / "models--gpt2"
    snap = repo / "snapshots" / GPT2_REVISION
    shutil.copytree(settings.assets_dir / "tokenizers" / "gpt2", snap)
    r = resolve_source("gpt2", "tokenizer", settings, OFFLINE)
    assert r.kind is SourceKind.HUB_CACHE and r.location == str(snap)


def test_preset_resolves_to_hub_when_reachable(settings):
    r = resolve_source("gpt2", "causal-lm", settings, HubStatus(True, "ok", 0.0))
    assert (r.kind, r.location) == (SourceKind.HUB, "gpt2")


def test_local_folder_under_allowed_root(settings, tiny_root):
    r = resolve_source(str(tiny_root / "tiny-gpt"), "causal-lm", settings, OFFLINE)
    assert r.kind is SourceKind.LOCAL


@pytest.mark.parametrize("bad, fragment", [
    ("/etc", "outside the folders"),
    ("../../", "outside the folders"),
    ("", "No model given"),
    ("x" * 600, "not valid"),
    ("not a model!", "neither a Hub id"),
    ("someone/some-model", "not in the local cache"),
])
def test_bad_sources_get_clear_errors(settings, bad, fragment):
    with pytest.raises(SourceError, match=fragment):
        resolve_source(bad, "causal-lm", settings, OFFLINE)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc", "~/.ssh"])
def test_a_refused_folder_is_told_the_allowed_roots_by_name_not_by_the_hosts_paths(settings, bad):
    """The message named the absolute paths of the checkout's assets/ and of the HF cache to any visitor (hold, round 2,
    item 6)."""
    with pytest.raises(SourceError, match="outside the folders") as refused:
        resolve_source(bad, "causal-lm", settings, OFFLINE)
    message = str(refused.value)
    assert "the app's assets/ folder, the Hugging Face cache" in message and "PLAYGROUND_MODEL_ROOTS" in message
    for root in settings.allowed_roots:
        assert str(root) not in message


def test_symlink_out_of_allowed_root_is_refused(settings, tiny_root, tmp_path):
    outside = tmp_path / "outside"
    shutil.copytree(tiny_root / "tiny-gpt", outside)
    link = tiny_root / "sneaky-link"
    link.symlink_to(outside, target_is_directory=True)
    try:
        with pytest.raises(SourceError, match="outside the folders"):
            resolve_source(str(link), "causal-lm", settings, OFFLINE)
    finally:
        link.unlink()


def test_model_roots_env_allows_a_folder(tiny_root, tmp_path):
    folder = tmp_path / "mine"
    shutil.copytree(tiny_root / "tiny-gpt", folder)
    strict = Settings(offline=True, hf_cache=tmp_path / "c")
    with pytest.raises(SourceError):
        resolve_source(str(folder), "causal-lm", strict, OFFLINE)
    allowed = Settings.from_env({"HF_HUB_OFFLINE": "1", "PLAYGROUND_MODEL_ROOTS": str(tmp_path), "HF_HUB_CACHE": str(tmp_path / "c")})
    assert resolve_source(str(folder), "causal-lm", allowed, OFFLINE).kind is SourceKind.LOCAL


def test_missing_embedded_model_says_how_to_build_it(settings, tmp_path):
    empty_assets = replace(settings, assets_dir=tmp_path / "assets")
    with pytest.raises(SourceError, match="python -m playground.train.gpt"):
        resolve_source("gpt2", "causal-lm", empty_assets, OFFLINE)


# ---- loading, caching, single flight -----------------------------------------------------------


def test_nothing_loads_until_first_use(settings):
    loader = ModelLoader(settings)
    assert loader.loaded() == [] and loader.load_count == 0


def test_cached_second_load_returns_same_objects(settings, tiny_root):
    loader = ModelLoader(settings)
    a = loader.load(str(tiny_root / "tiny-gpt"), "causal-lm")
    b = loader.load(str(tiny_root / "tiny-gpt"), "causal-lm")
    assert a is b and loader.load_count == 1
    assert a.n_params == sum(p.numel() for p in a.model.parameters())
    assert a.device == torch.device("cpu") and a.dtype == torch.float32
    info = loader.loaded()[0]
    assert info.kind == "local" and info.memory_mb > 0 and info.load_seconds > 0


def test_single_flight_under_threads(settings, tiny_root, monkeypatch):
    calls = []
    real = loader_module._load_folder

    def slow_load(*args, **kwargs):
        calls.append(1)
        time.sleep(0.5)  # wide window: every thread arrives while the first load runs
        return real(*args, **kwargs)

    monkeypatch.setattr(loader_module, "_load_folder", slow_load)
    loader = ModelLoader(settings)
    results, errors = [], []

    def worker():
        try:
            results.append(loader.load(str(tiny_root / "tiny-bert"), "masked-lm"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(calls) == 1 and loader.load_count == 1
    assert all(r is results[0] for r in results)


def test_failed_load_is_not_cached_and_can_be_retried(settings, tiny_root, monkeypatch):
    loader = ModelLoader(settings)
    real = loader_module._load_folder
    monkeypatch.setattr(loader_module, "_load_folder", lambda *a, **k: (_ for _ in ()).throw(OSError("disk hiccup")))
    with pytest.raises(LoadError, match="disk hiccup"):
        loader.load(str(tiny_root / "tiny-gpt"), "causal-lm")
    monkeypatch.setattr(loader_module, "_load_folder", real)
    assert loader.load(str(tiny_root / "tiny-gpt"), "causal-lm").model is not None


@pytest.mark.slow
def test_eviction_under_budget_releases_least_recently_used(settings, tiny_root):
    probe = ModelLoader(settings)
    gpt_bytes = probe.load(str(tiny_root / "tiny-gpt"), "causal-lm").memory_bytes
    bert_bytes = probe.load(str(tiny_root / "tiny-bert"), "masked-lm").memory_bytes
    probe.clear()
    # room for the larger of the two, not for both
    budget_gb = (max(gpt_bytes, bert_bytes) * 1.2) / 1024**3
    assert max(gpt_bytes, bert_bytes) * 1.2 < gpt_bytes + bert_bytes
    loader = ModelLoader(replace(settings, memory_gb=budget_gb))
    first = loader.load(str(tiny_root / "tiny-gpt"), "causal-lm")
    ref = weakref.ref(first.model)
    del first
    loader.load(str(tiny_root / "tiny-bert"), "masked-lm")
    gc.collect()
    assert [m.family for m in loader.loaded()] == ["masked-lm"]
    assert ref() is None  # the evicted weights were freed
    assert loader.memory_used() <= loader.settings.memory_budget_bytes


def test_model_larger_than_budget_is_refused_clearly(settings, tiny_root):
    loader = ModelLoader(replace(settings, memory_gb=1e-6))
    with pytest.raises(LoadError, match="PLAYGROUND_MEMORY_GB"):
        loader.load(str(tiny_root / "tiny-gpt"), "causal-lm")


def test_attention_ready_loading_returns_transformers_own_weights(settings, tiny_root):
    loader = ModelLoader(settings)
    lm = loader.load(str(tiny_root / "tiny-gpt"), "causal-lm", attention=True)
    assert lm.model.config._attn_implementation == "eager"
    ids = lm.tokenizer("Hello world, hello attention", return_tensors="pt").input_ids
    with torch.no_grad():
        att = lm.model(ids, output_attentions=True).attentions
    assert len(att) == 2 and att[0].shape == (1, 2, ids.shape[1], ids.shape[1])
    assert torch.allclose(att[0].sum(-1), torch.ones(1, 2, ids.shape[1]), atol=1e-5)
    assert torch.all(att[0][0, 0].triu(1) == 0)  # causal: nothing attends to the future
    plain = loader.load(str(tiny_root / "tiny-gpt"), "causal-lm")
    assert plain is not lm and loader.load_count == 2


def test_pickled_weights_are_never_loaded(settings, tiny_root, tmp_path):
    folder = tiny_root / "pickled-gpt"
    if not folder.exists():
        from transformers import GPT2Config, GPT2LMHeadModel

        GPT2LMHeadModel(GPT2Config(vocab_size=100, n_positions=8, n_embd=8, n_layer=1, n_head=1)).save_pretrained(
            folder, safe_serialization=False
        )
        for f in folder.glob("*.safetensors"):
            f.unlink()
        shutil.copy(tiny_root / "tiny-gpt" / "tokenizer.json", folder)
    with pytest.raises(LoadError):
        ModelLoader(settings).load(str(folder), "causal-lm")


def test_diffusion_folder_loads_components(settings, tiny_root):
    lm = ModelLoader(settings).load(str(tiny_root / "tiny-ddpm"), "diffusion")
    assert set(lm.components) == {"unet", "scheduler"} and lm.model is lm.components["unet"]
    assert type(lm.components["scheduler"]).__name__ == "DDPMScheduler"
    assert lm.folder == tiny_root / "tiny-ddpm"
    assert (lm.pipeline.class_name, lm.pipeline.id2label, lm.pipeline.null_class) == ("DDPMPipeline", {}, None)  # unconditional


def test_class_conditional_folder_carries_its_labels_and_folder(settings, tiny_root):
    folder = tiny_root / "tiny-ddpm-classes"
    if not folder.exists():
        shutil.copytree(tiny_root / "tiny-ddpm", folder)
        index = json.loads((folder / "model_index.json").read_text())
        index.update(id2label={"0": "circle", "1": "square"}, null_class=2)
        (folder / "model_index.json").write_text(json.dumps(index))
    lm = ModelLoader(settings).load(str(folder), "diffusion")
    # read from the LoadedModel, never again from model_index.json: online, source.location is a Hub id
    assert lm.folder == folder and (folder / "model_index.json").is_file()
    assert lm.pipeline.id2label == {0: "circle", 1: "square"} and lm.pipeline.null_class == 2


def test_hub_snapshot_folder_is_recorded(settings, tiny_root, monkeypatch):
    # online, a preset resolves to a Hub id; the loader records the downloaded snapshot's folder
    snapshot = tiny_root / "tiny-ddpm"
    monkeypatch.setattr(loader_module, "download_repo", lambda repo, cache, endpoint, revision, tokenizer_only: snapshot)
    online = ModelLoader(replace(settings, offline=False), probe=_FixedProbe(HubStatus(True, "test", 0.0)))
    lm = online.load("google/ddpm-cifar10-32", "diffusion")
    assert lm.source.kind is SourceKind.HUB and lm.source.location == "google/ddpm-cifar10-32"
    assert lm.folder == snapshot and lm.pipeline.class_name == "DDPMPipeline"


class _FixedProbe(HubProbe):
    def __init__(self, status: HubStatus) -> None:
        super().__init__("http://127.0.0.1:9", 1.0)
        self._fixed = status

    def status(self) -> HubStatus:
        return self._fixed


def test_tokenizers_count_against_the_budget(settings):
    loader = ModelLoader(settings)
    lm = loader.load("gpt2", "tokenizer")
    serialized = len(lm.tokenizer.backend_tokenizer.to_str().encode())
    # an honest estimate of what it takes in memory (measured: ~20x its serialized size), not 0
    assert lm.memory_bytes == loader_module.TOKENIZER_MEMORY_FACTOR * serialized > 20 * 2**20
    assert loader.memory_used() == lm.memory_bytes and loader.loaded()[0].memory_mb > 20


@pytest.mark.slow
def test_evicted_tokenizer_releases_its_caches(settings):
    from playground.core.text import tokenize as tokenize_module
    from playground.core.text import word_split

    probe = ModelLoader(settings)
    gpt2_bytes = probe.load("gpt2", "tokenizer").memory_bytes
    t5_bytes = probe.load("t5-small", "tokenizer").memory_bytes
    probe.clear()
    del probe
    gc.collect()
    loader = ModelLoader(replace(settings, memory_gb=max(gpt2_bytes, t5_bytes) * 1.1 / 1024**3))  # room for one
    tok = loader.load("gpt2", "tokenizer").tokenizer
    tokenize_module.tokenize(tok, "Hello world")
    word_split.explain_word(tok, " lower")  # fills the BPE-ranks cache too
    spec = tokenize_module.tokenizer_spec(tok)
    assert tok in tokenize_module.tokenizer_spec.cache and tok in shared_lock.cache
    assert spec in word_split._bpe_ranks.cache
    tok_ref, spec_ref = weakref.ref(tok), weakref.ref(spec)
    del tok, spec
    loader.load("t5-small", "tokenizer")  # over budget: gpt2 is evicted
    gc.collect()
    assert [m.requested for m in loader.loaded()] == ["t5-small"]
    assert tok_ref() is None and spec_ref() is None  # no cache kept the evicted tokenizer (or its spec) alive


def test_one_lock_per_tokenizer_for_as_long_as_it_lives(settings):

    loader = ModelLoader(settings)
    toks = [loader.load(name, "tokenizer").tokenizer for name in ("gpt2", "bert-base-uncased", "t5-small")]
    first = [shared_lock(t) for t in toks]
    for _ in range(100):  # an LRU of locks could hand out a new lock once others pushed it out
        shared_lock(object.__new__(type("Other", (), {})))
    assert all(shared_lock(t) is lock for t, lock in zip(toks, first))


def test_diffusion_component_from_other_library_is_refused(settings, tiny_root):
    folder = tiny_root / "evil-ddpm"
    if not folder.exists():
        shutil.copytree(tiny_root / "tiny-ddpm", folder)
        index = json.loads((folder / "model_index.json").read_text())
        index["unet"] = ["my_package", "Backdoor"]
        (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(LoadError, match="only"):
        ModelLoader(settings).load(str(folder), "diffusion")


def test_unknown_family_is_a_clear_error(settings):
    with pytest.raises(ValueError, match="Unknown model family"):
        ModelLoader(settings).load("gpt2", "vision")


def test_progress_is_reported(settings):
    seen = []
    ModelLoader(settings).load("gpt2", Family.TOKENIZER, progress=lambda f, d: seen.append((f, d)))
    assert seen[0][0] == 0.0 and seen[-1] == (1.0, "Ready")


# ---- the Hub probe and offline fallback --------------------------------------------------------


@pytest.fixture
def silent_server():
    """A local TCP server that accepts connections and never answers: a hanging Hub."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.mark.slow
def test_offline_fallback_is_fast_when_the_hub_hangs(settings, silent_server):
    online = replace(settings, offline=False, hub_endpoint=silent_server, hub_timeout_s=1.0)
    loader = ModelLoader(online)
    start = time.perf_counter()
    lm = loader.load("gpt2", "tokenizer")
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, f"fallback took {elapsed:.1f} s"
    assert lm.source.kind is SourceKind.EMBEDDED and "within 1 s" in lm.source.note
    assert lm.tokenizer("Hello world").input_ids == [15496, 995]


def test_probe_reports_reachable_hub(settings):
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        probe = HubProbe(f"http://127.0.0.1:{httpd.server_port}", timeout_s=2.0)
        assert probe.status().reachable
    finally:
        httpd.shutdown()


def test_probe_answer_is_cached_and_offline_flag_skips_network():
    calls = []
    probe = HubProbe("http://127.0.0.1:9", timeout_s=1.0, offline=True, clock=lambda: len(calls))
    assert probe.status().reason == "HF_HUB_OFFLINE=1 is set"
    closed = HubProbe("http://127.0.0.1:9", timeout_s=1.0)  # port 9: connection refused at once
    start = time.perf_counter()
    first = closed.status()
    assert not first.reachable and closed.status() is first and time.perf_counter() - start < 1.5


def test_transformer_family_reads_a_folders_config_once(settings, tiny_root, monkeypatch):
    loader = ModelLoader(settings)
    reads = []
    real = loader._family_from_config
    monkeypatch.setattr(loader, "_family_from_config", lambda *a: reads.append(a) or real(*a))
    for _ in range(3):
        assert loader.transformer_family(str(tiny_root / "tiny-t5")) is Family.SEQ2SEQ
        assert loader.transformer_family(str(tiny_root / "tiny-bert-base")) is Family.ENCODER
    assert len(reads) == 2  # one read per folder, not per click
