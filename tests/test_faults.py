"""Faults: corrupt weights, a missing file, a wrong architecture and running out of memory each give a clear
error and leave the loader's cache clean (the next request works, and retrying fails the same clear way);
a client that disconnects mid-stream stops the denoising it started."""

from __future__ import annotations

import json
import shutil
import time

import httpx
import pytest
import torch

from playground.models import LoadError, ModelLoader
from playground.models import loader as loader_module
from tests.conftest import free_port, report_figure


def _broken(tiny_root, name: str, how: str):
    folder = tiny_root / f"broken-{name}-{how}"
    if not folder.exists():
        shutil.copytree(tiny_root / name, folder)
        weights = folder / "model.safetensors"
        if how == "corrupt":
            weights.write_bytes(b"\x00" * 64 + b"not safetensors at all" * 100)
        elif how == "truncated":
            weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        elif how == "missing":
            weights.unlink()
    return str(folder)


def _assert_clean(loader: ModelLoader, tiny_root) -> None:
    assert loader.loaded() == [] and not loader._inflight  # nothing half-loaded is cached or waited on
    assert loader.load(str(tiny_root / "tiny-gpt"), "causal-lm").model is not None  # the next request works
    loader.clear()


@pytest.mark.parametrize("how, fragment", [("corrupt", "weights"), ("truncated", "weights"), ("missing", "model.safetensors")])
def test_bad_weights_give_a_clear_error_and_leave_the_cache_clean(settings, tiny_root, how, fragment):
    loader = ModelLoader(settings)
    source = _broken(tiny_root, "tiny-gpt", how)
    for _ in range(2):  # a retry fails the same clear way: no cached half-state, no stale in-flight future
        with pytest.raises(LoadError, match=fragment) as err:
            loader.load(source, "causal-lm")
        assert "Could not load" in str(err.value)
    _assert_clean(loader, tiny_root)


def test_a_wrong_architecture_gives_a_clear_error(settings, tiny_root):
    loader = ModelLoader(settings)
    with pytest.raises(LoadError, match="masked-lm"):
        loader.load(str(tiny_root / "tiny-t5"), "masked-lm")  # an encoder-decoder has no masked-LM class
    with pytest.raises(LoadError, match="config.json|model_index.json"):
        loader.load(str(tiny_root / "tiny-ddpm"), "causal-lm")  # a diffusion folder is no language model
    _assert_clean(loader, tiny_root)


def test_out_of_memory_while_loading_is_reported_and_leaves_the_cache_clean(settings, tiny_root, monkeypatch):
    loader = ModelLoader(settings)
    real = loader_module._load_folder

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(loader_module, "_load_folder", oom)
    with pytest.raises(LoadError, match="out of memory.*PLAYGROUND_MEMORY_GB|smaller model"):
        loader.load(str(tiny_root / "tiny-gpt"), "causal-lm")
    monkeypatch.setattr(loader_module, "_load_folder", real)
    _assert_clean(loader, tiny_root)


def test_out_of_memory_in_a_handler_is_a_clear_message_not_a_bug_report():
    import gradio as gr

    from playground.ui.common import user_errors

    @user_errors
    def handler():
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(gr.Error, match="ran out of memory") as err:
        handler()
    assert "This is a bug" not in str(err.value)


@pytest.mark.slow
def test_a_client_that_disconnects_stops_the_denoising_it_started(tmp_path):
    """A 100-step run on a UNet big enough to keep a core busy: after the client drops the stream, the server's
    CPU use returns to idle within a few seconds instead of finishing the run for nobody."""
    from diffusers import DDIMScheduler, UNet2DModel

    from playground.config import Settings
    from playground.ui import build_app, launch_options

    folder = tmp_path / "slow-ddpm"
    torch.manual_seed(0)
    UNet2DModel(sample_size=64, in_channels=3, out_channels=3, layers_per_block=2, block_out_channels=(64, 128, 256),
                down_block_types=("DownBlock2D",) * 3, up_block_types=("UpBlock2D",) * 3).save_pretrained(folder / "unet")
    DDIMScheduler(num_train_timesteps=1000).save_pretrained(folder / "scheduler")
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "DDPMPipeline", "unet": ["diffusers", "UNet2DModel"],
                                                         "scheduler": ["diffusers", "DDIMScheduler"]}))
    demo = build_app(Settings(offline=True, device="cpu", model_roots=(tmp_path,)))
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch_options())
    url = f"http://127.0.0.1:{port}/"
    try:
        args = [str(folder), "", "DDIM", 100, 1.0, 0, ""]
        event = httpx.post(f"{url}gradio_api/call/denoise", json={"data": args}, timeout=30).json()["event_id"]
        seen: list[float] = []
        with httpx.stream("GET", f"{url}gradio_api/call/denoise/{event}", timeout=120) as stream:
            for line in stream.iter_lines():
                if line.startswith("event: generating"):
                    seen.append(time.perf_counter())
                    if len(seen) == 4:
                        break  # the client goes away mid-run
        steps_seen = len(seen)
        left_s = (seen[-1] - seen[1]) / 2 * (100 - steps_seen)  # what finishing the run for nobody would have cost
        dropped = time.perf_counter()

        def busy_share(seconds: float) -> float:
            cpu0, t0 = time.process_time(), time.perf_counter()
            time.sleep(seconds)
            return (time.process_time() - cpu0) / (time.perf_counter() - t0)

        running = None
        for _ in range(20):  # idle = under 0.3 of a core over 0.5 s (a run keeps 1-2 cores busy; other tests' idle servers ~0.1)
            running = busy_share(0.5)
            if running < 0.3:
                break
        idle_after = time.perf_counter() - dropped
        report_figure(
            "disconnect mid-denoise",
            f"CPU back to idle {idle_after:.1f} s after the client dropped the stream at step 4 of 100 "
            f"(the rest of the run: {left_s:.1f} s of CPU; last 0.5 s window: {running:.2f} cores busy)",
        )
        # idle within a few seconds (Gradio notices the dropped stream at its next check), and long before the run would have ended
        assert running < 0.3 and idle_after < min(6.0, left_s / 2), (idle_after, running, left_s)
    finally:
        demo.close()
