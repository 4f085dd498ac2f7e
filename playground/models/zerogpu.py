"""Hugging Face ZeroGPU support: GPU work runs inside `spaces.GPU`-decorated functions there.

On a ZeroGPU Space (the `spaces` package is installed and SPACES_ZERO_GPU is set) a GPU is
attached only while a decorated function runs. Everywhere else `gpu_task` returns the function
unchanged. The UI wraps its heavy handlers with it when the app is assembled, not at import.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def on_zerogpu(env: Mapping[str, str] | None = None) -> bool:
    """True on a ZeroGPU Space: SPACES_ZERO_GPU is set and the `spaces` package imports."""
    env = os.environ if env is None else env
    if env.get("SPACES_ZERO_GPU", "").strip().lower() not in {"1", "true"}:
        return False
    try:
        import spaces  # noqa: F401
    except ImportError:
        return False
    return True


def gpu_task(fn: F, *, duration: int = 60, env: Mapping[str, str] | None = None) -> F:
    """`spaces.GPU(duration=...)(fn)` on ZeroGPU, else `fn` itself (a no-op)."""
    if not on_zerogpu(env):
        return fn
    import spaces

    return spaces.GPU(duration=duration)(fn)
