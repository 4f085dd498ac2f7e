"""Shared fixtures: offline settings, tiny random models saved as HF folders, a launched app."""

from __future__ import annotations

import json
import os
import socket
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from playground.config import ASSETS_DIR, PROJECT_ROOT, Settings  # noqa: E402

ARTIFACTS = PROJECT_ROOT / "test-artifacts"
MODELS = ASSETS_DIR / "models"


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """A folder of tiny random-weight models in HF format (the loader's local-folder path)."""
    root = tmp_path_factory.mktemp("tiny-models")
    _tiny_gpt(root / "tiny-gpt")
    _tiny_llama(root / "tiny-llama")
    _tiny_bert(root / "tiny-bert")
    _tiny_ddpm(root / "tiny-ddpm")
    _tiny_t5(root / "tiny-t5")
    _tiny_bert_base(root / "tiny-bert-base")
    _tiny_sd(root / "tiny-sd")
    return root


@pytest.fixture
def settings(tiny_root, tmp_path) -> Settings:
    """Offline settings that allow the tiny models' folder; an empty HF cache of its own."""
    return Settings(offline=True, model_roots=(tiny_root,), hf_cache=tmp_path / "hf-cache", device="cpu")


@pytest.fixture(scope="session")
def shared_loader(tiny_root, tmp_path_factory):
    """One offline loader for the tests that only read models: each tiny model loads once per run."""
    from playground.models import ModelLoader

    return ModelLoader(Settings(offline=True, model_roots=(tiny_root,), hf_cache=tmp_path_factory.mktemp("hf-cache"), device="cpu"))


def _tiny_gpt(folder: Path) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=50257, n_positions=32, n_embd=16, n_layer=2, n_head=2))
    model.save_pretrained(folder)
    _copy_tokenizer("gpt2", folder)


def _tiny_llama(folder: Path) -> None:
    """A Llama-family decoder (rotary positions, 4 query heads on 2 key/value heads) with GPT-2's tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=50257, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=64, bos_token_id=50256, eos_token_id=50256,
                         tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    _copy_tokenizer("gpt2", folder)


def _tiny_bert(folder: Path) -> None:
    import torch
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32))
    model.save_pretrained(folder)
    _copy_tokenizer("bert-base-uncased", folder)


def _tiny_t5(folder: Path) -> None:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(
        vocab_size=32128, d_model=16, d_kv=4, num_heads=2, num_layers=2, num_decoder_layers=2, d_ff=32, decoder_start_token_id=0
    )
    T5ForConditionalGeneration(config).save_pretrained(folder)
    _copy_tokenizer("t5-small", folder)


def _tiny_bert_base(folder: Path) -> None:
    """An encoder folder with only the base model (BertModel): no masked-LM head."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(1)
    BertModel(
        BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    ).save_pretrained(folder)
    _copy_tokenizer("bert-base-uncased", folder)


def _tiny_sd(folder: Path) -> None:
    """A Stable-Diffusion-shaped text-to-image pipeline, tiny: CLIP text encoder, UNet2DCondition, VAE, DDIM."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    folder.mkdir(parents=True)
    symbols = list("abcdefghijklmnopqrstuvwxyz ")
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({f"{s}</w>": len(symbols) + i for i, s in enumerate(symbols)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16)
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                                num_attention_heads=4, max_position_embeddings=16, bos_token_id=len(vocab) - 2,
                                                eos_token_id=len(vocab) - 1, pad_token_id=len(vocab) - 1))
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=8,
        attention_head_dim=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(16, 32),
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        norm_num_groups=8,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    )
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
                              steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=True)
    for f in ("vocab.json", "merges.txt"):
        (folder / f).unlink()


def _tiny_ddpm(folder: Path) -> None:
    import torch
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1, block_out_channels=(4, 8),
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4)
    unet.save_pretrained(folder / "unet")
    DDPMScheduler(num_train_timesteps=50).save_pretrained(folder / "scheduler")
    index = {"_class_name": "DDPMPipeline", "unet": ["diffusers", "UNet2DModel"], "scheduler": ["diffusers", "DDPMScheduler"]}
    (folder / "model_index.json").write_text(json.dumps(index))


def _copy_tokenizer(name: str, folder: Path) -> None:
    import shutil

    for f in (ASSETS_DIR / "tokenizers" / name).iterdir():
        shutil.copy(f, folder / f.name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def launched(demo, settings: Settings | None = None):
    """`demo` served on a free local port with the app's launch options (its settings' session cap); yields its URL."""
    from playground.ui import launch_options

    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch_options(settings))
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="session")
def live_app():
    """The whole app, launched offline on a free local port; yields its URL."""
    from playground.ui import build_app

    with launched(build_app(Settings(offline=True, device="cpu"))) as url:
        yield url


def has_model(name: str) -> bool:
    return (MODELS / name / "metrics.json").exists()


# ---- tiers: `python -m pytest -m "not slow and not browser"` is the fast tier (unit and handler tests, well
# under a minute); the README's command and CI run everything. A test that launches the app over HTTP is slow.
def pytest_collection_modifyitems(config, items):
    for item in items:
        if "live_app" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


# ---- figures: tests that measure something (fuzz counts, load latencies, fault recovery) report them here,
# and they are printed at the end of the run (and saved to test-artifacts/figures.json), passing or not. Under
# pytest-xdist each worker hands its figures to the controller in the test reports (user_properties).
FIGURES: list[tuple[str, str]] = []
_FIGURE = "playground-figure"


def report_figure(name: str, text: str) -> None:
    FIGURES.append((name, text))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "teardown":  # a test's figures travel with its last report
        report.user_properties.extend((_FIGURE, f) for f in FIGURES[len(getattr(item.session, "_figures_sent", [])):])
        item.session._figures_sent = list(FIGURES)


def pytest_runtest_logreport(report):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # a worker's figures are counted by the controller, from the report
    for key, figure in getattr(report, "user_properties", ()):
        if key == _FIGURE and tuple(figure) not in _COLLECTED:
            _COLLECTED.append(tuple(figure))


_COLLECTED: list[tuple[str, str]] = []


def pytest_configure(config):
    """One torch thread per pytest-xdist worker when there are as many workers as cores (two workers with two threads
    each on two cores only fight over them); the tests themselves run the same."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if workers:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    figures = _COLLECTED or FIGURES
    if not figures:
        return
    terminalreporter.section("figures measured by the tests")
    for name, text in figures:
        terminalreporter.write_line(f"{name}: {text}")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "figures.json").write_text(json.dumps(dict(figures), indent=1))
