"""Files Gradio writes for the page appear whole: written under a temporary name, then renamed into place.

Gradio names a picture it sends by the hash of its bytes and writes it with `write_bytes` each time it is sent, so
when the same picture goes out again (a scrubbed step, a rerun with the same seed, another session) a browser
fetching the first copy may read it while it is truncated and rewritten: the server declares one length from the
file's size and then reads more ("Too much data for declared Content-Length" in h11, a broken image in the page).
`install()` replaces Gradio's two writers of such files (`save_pil_to_cache`, `save_bytes_to_cache`) with ones
that never rewrite a file in place. It changes the module once, when the app is built, never per request.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


def write_whole(path: Path, data: bytes) -> str:
    """Put `data` at `path` (named by its content) unless a whole copy is there: staged, then renamed."""
    if path.exists() and path.stat().st_size == len(data):
        return str(path.resolve())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return str(path.resolve())


def save_pil_to_cache(img: Any, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """Gradio's `processing_utils.save_pil_to_cache`, writing whole files."""
    from gradio.processing_utils import encode_pil_to_bytes, hash_bytes

    data = encode_pil_to_bytes(img, format)
    return write_whole(Path(cache_dir) / hash_bytes(data) / f"{name}.{format}", data)


def save_bytes_to_cache(data: bytes, file_name: str, cache_dir: str) -> str:
    """Gradio's `processing_utils.save_bytes_to_cache`, writing whole files."""
    from gradio.processing_utils import detect_audio_format, hash_bytes

    if not Path(file_name).suffix:
        file_name = file_name + detect_audio_format(data)
    return write_whole(Path(cache_dir) / hash_bytes(data) / Path(file_name).name, data)


def install() -> None:
    """Make Gradio's cache writers these (once per process; idempotent)."""
    from gradio import processing_utils

    processing_utils.save_pil_to_cache = save_pil_to_cache
    processing_utils.save_bytes_to_cache = save_bytes_to_cache
