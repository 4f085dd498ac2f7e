"""The process's memory allocator, told to give big freed blocks back to the system.

glibc raises its mmap threshold each time a large block is freed (up to 32 MiB), so after a few attention maps or
decoded pictures the next ones come from the heap, and when they are freed the heap keeps the pages: the process
grows with every request although nothing is kept (measured: about 1.5 MiB a session with T5 attention at 512
tokens). Fixing the threshold at 1 MiB sends every large array to its own mapping, returned when freed; with it the
process levels off (`tests/test_memory.py`). Elsewhere (macOS, Windows, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # mallopt parameters (glibc's malloc.h)
_M_MMAP_THRESHOLD = -3
LARGE_BLOCK = 1 << 20  # bytes: blocks at least this big get their own mapping, and free memory above it is trimmed
_done = False


def return_large_blocks_to_the_system(threshold: int = LARGE_BLOCK) -> bool:
    """Fix glibc's mmap and trim thresholds at `threshold` for this process (once); False where there is no glibc."""
    global _done
    if _done:
        return True
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    if not (mallopt(_M_MMAP_THRESHOLD, threshold) and mallopt(_M_TRIM_THRESHOLD, threshold)):
        log.info("mallopt refused the thresholds; memory freed by requests may stay with the process")
        return False
    _done = True
    return True
