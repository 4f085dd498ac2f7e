"""Pictures sent to the page are never rewritten in place while a browser reads them (issue 34, item 8: "Too much data
for declared Content-Length" from h11, when Gradio rewrote a picture's file as a second request sent it again)."""

from __future__ import annotations

import os
import threading

import numpy as np
from gradio import processing_utils
from PIL import Image

from playground.config import Settings
from playground.ui import build_app, cache_files


def test_the_app_makes_gradios_cache_writers_write_whole_files():
    build_app(Settings(offline=True, device="cpu"))
    assert processing_utils.save_pil_to_cache is cache_files.save_pil_to_cache
    assert processing_utils.save_bytes_to_cache is cache_files.save_bytes_to_cache


def test_a_picture_sent_again_is_not_rewritten_and_a_reader_always_sees_it_whole(tmp_path):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8))
    path = cache_files.save_pil_to_cache(image, str(tmp_path))
    first = os.stat(path)
    done = threading.Event()

    def send_again():
        for _ in range(60):
            assert cache_files.save_pil_to_cache(image, str(tmp_path)) == path
        done.set()

    writer = threading.Thread(target=send_again)
    writer.start()
    torn = reads = 0
    while not done.is_set():
        size = os.stat(path).st_size
        with open(path, "rb") as f:
            torn += len(f.read()) != size  # what h11 refuses: a body longer or shorter than the length declared from stat
        reads += 1
    writer.join()
    assert reads > 0 and torn == 0
    assert os.stat(path).st_ino == first.st_ino  # the same file: never replaced, let alone truncated


def test_new_bytes_appear_whole_under_their_own_name(tmp_path):
    path = cache_files.save_bytes_to_cache(b"\x89PNG fake", "picture.png", str(tmp_path))
    assert open(path, "rb").read() == b"\x89PNG fake"
    assert not [p for p in os.listdir(os.path.dirname(path)) if p.startswith(".")]  # no staging file left behind
