"""Pictures reach the page whole (issue 16, item 3: once in ~25 runs an ε̂ panel was a broken image,
ERR_CONTENT_LENGTH_MISMATCH). Gradio saves a returned PIL image by rewriting its content-addressed cache file
every time; when the same picture is sent again while a browser still reads it, the browser gets a truncated
file. The tabs send pictures as files written once, atomically (ui.common.png_file)."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from PIL import Image

from playground.config import Settings
from playground.models import ModelLoader
from playground.ui.common import png_file


def _noise(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (256, 256), dtype=np.uint8))


def test_the_same_picture_sent_again_is_the_same_file_untouched():
    path = png_file(_noise(0))
    before = os.stat(path)
    again = png_file(_noise(0))  # equal pixels, a new object: a rerun with the same seed, a scrub back to a step
    after = os.stat(again)
    assert again == path and (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)
    assert Image.open(path).tobytes() == _noise(0).tobytes()  # lossless


def test_readers_never_see_a_partly_written_picture_while_it_is_sent_again():
    pictures = [_noise(s) for s in range(1, 4)]
    paths = [png_file(p) for p in pictures]
    sizes = [os.path.getsize(p) for p in paths]
    stop, short = threading.Event(), []

    def send_again():
        while not stop.is_set():
            for p in pictures:
                png_file(p.copy())

    def read():
        for _ in range(300):
            for path, size in zip(paths, sizes):
                with open(path, "rb") as f:
                    n = len(f.read())
                if n != size:
                    short.append((path, n, size))

    senders = [threading.Thread(target=send_again) for _ in range(2)]
    for t in senders:
        t.start()
    try:
        read()
    finally:
        stop.set()
        for t in senders:
            t.join()
    assert not short, f"{len(short)} reads saw a partly written file, e.g. {short[0]}"


@pytest.fixture(scope="module")
def embedded() -> ModelLoader:
    return ModelLoader(Settings(offline=True, device="cpu"))


def _pictures(values) -> list:
    out = []
    for v in values:
        if isinstance(v, (list, tuple)):
            out += _pictures(v)
        elif isinstance(v, (Image.Image, str)) and not (isinstance(v, str) and not v.endswith(".png")):
            out.append(v)
    return out


def test_the_tabs_send_pictures_as_files_not_pil_images(embedded):
    """Every picture a page handler returns is a finished file (a PIL image would be re-saved by Gradio)."""
    from playground.ui import attention_tab, diffusion_tab

    request = diffusion_tab.DenoiseRequest(model="google/ddpm-cifar10-32", prompt="Bag", steps=3, guidance=3.0)
    frames = list(diffusion_tab.on_denoise(embedded, request, progress=None))
    handle = frames[-1][6]
    sent = [v for f in frames for v in f[:5]] + list(diffusion_tab.on_scrub(embedded, handle, 2))
    branch = diffusion_tab.BranchRequest(step=2, prompt="Bag", negative="", guidance=1.0)
    sent += [v for f in diffusion_tab.on_branch(embedded, branch, handle, progress=None) for v in f[:6]]
    sent += list(diffusion_tab.on_forward(diffusion_tab.ForwardRequest(Image.new("L", (32, 32)), 100, "linear", 0))[:2])
    handle = attention_tab.on_run(embedded, attention_tab.AttentionRequest("gpt2", "The cat sat on the mat.", "", 32), progress=None)[0]
    sent += list(attention_tab.on_view(attention_tab.ViewChoice("head", "decoder", 1, 1, False, "", False, False, 3), handle))
    pictures = _pictures(sent)
    assert len(pictures) > 20
    assert not [p for p in pictures if isinstance(p, Image.Image)]
    assert all(open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n" for p in pictures)
