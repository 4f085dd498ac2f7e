"""Hugging Face ZeroGPU support: GPU work runs inside `spaces.GPU`-decorated functions there.

On a ZeroGPU Space (the `spaces` package is installed and SPACES_ZERO_GPU is set) a GPU is
attached only while a decorated function runs, for at most the duration it asked for. Everywhere
else `gpu_task` returns the function unchanged. The UI wraps every handler that runs a model with it
when the app is assembled, not at import; nothing touches CUDA (or imports torch) before that.

A request asks for what it needs: `GpuBudget(base_s=20, per_unit_s=0.5, param="steps")` asks
20 s plus 0.5 s a denoising step, read from the request's own `steps` argument, so a 50-step run
is not cut off and a 5-step run does not spend the Space's GPU quota.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable)


@dataclass(frozen=True)
class GpuBudget:
    """How long one request may hold the GPU: a fixed part and a part per unit of work."""

    base_s: float = 60.0  # loading the model, the first CUDA call, encoding, drawing the pictures
    per_unit_s: float = 0.0  # seconds per unit of work (a denoising step, a generated token)
    param: str | None = None  # the request parameter that counts the units ("steps", "max_new_tokens")
    max_units: float = 1000.0  # more units than this are refused by the handler anyway
    cap_s: float = 300.0  # never ask for more than this

    def seconds_for(self, fn: Callable) -> Callable[..., int]:
        """A `duration` callable for spaces.GPU: it takes the same arguments as `fn`.

        >>> GpuBudget(20, 0.5, "steps").seconds_for(lambda model, steps: None)("gpt2", 50)
        45
        """
        signature = inspect.signature(fn)

        def seconds(*args: Any, **kwargs: Any) -> int:
            units = 0.0
            if self.param is not None:
                try:
                    bound = signature.bind_partial(*args, **kwargs).arguments
                    # the count is a parameter of its own, or a field of the request dataclass a tab's handler takes
                    value = bound.get(self.param, next((getattr(a, self.param) for a in bound.values()
                                                        if hasattr(a, "__dataclass_fields__") and hasattr(a, self.param)), 0))
                    units = float(value) if not isinstance(value, bool) else 0.0
                except (TypeError, ValueError):
                    units = 0.0  # a malformed request: the handler refuses it in a moment
                units = min(max(units, 0.0), self.max_units) if math.isfinite(units) else 0.0
            return int(math.ceil(min(self.cap_s, self.base_s + self.per_unit_s * units)))

        return seconds


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


def gpu_task(fn: F, budget: GpuBudget | None = None, *, duration: int | None = None, env: Mapping[str, str] | None = None) -> F:
    """`spaces.GPU(duration=...)(fn)` on ZeroGPU, else `fn` itself (a no-op).

    `budget` sizes the duration from the request (see GpuBudget); `duration` is a fixed number of seconds.
    """
    if not on_zerogpu(env):
        return fn
    import spaces

    seconds = duration if duration is not None else (budget or GpuBudget()).seconds_for(fn)
    return spaces.GPU(duration=seconds)(fn)
