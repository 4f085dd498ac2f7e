"""Hugging Face ZeroGPU support: GPU work runs inside `spaces.GPU`-decorated functions there.

On a ZeroGPU Space (the `spaces` package is installed and SPACES_ZERO_GPU is set) a GPU is
attached only while a decorated function runs. Everywhere else `gpu_task` returns the function
unchanged. The UI wraps its heavy handlers with it when the app is assembled, not at import.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def on_zerogpu(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    flag = env.get("SPACES_ZERO_GPU", "").strip().lower() in {"1", "true"}
    return flag and importlib.util.find_spec("spaces") is not None


def gpu_task(fn: F, *, duration: int = 60, env: Mapping[str, str] | None = None) -> F:
    """`spaces.GPU(duration=...)(fn)` on ZeroGPU, else `fn` itself (a no-op)."""
    if not on_zerogpu(env):
        return fn
    import spaces

    return spaces.GPU(duration=duration)(fn)
