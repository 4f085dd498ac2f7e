"""Heavy libraries imported on first use, so `python app.py` serves its page before torch is loaded.

    from playground.lazy import no_grad, torch   # instead of `import torch`
    torch.zeros(3)                               # the first attribute access imports torch, later ones are plain lookups

Type annotations stay strings (`from __future__ import annotations`), so they import nothing.
"""

from __future__ import annotations

import functools
import importlib
import threading
import types
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class LazyModule(types.ModuleType):
    """A stand-in for a module that imports it on the first attribute access, then caches what it hands out."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = getattr(importlib.import_module(self.__name__), name)
        setattr(self, name, value)  # next time a plain attribute lookup, no import machinery
        return value


torch: Any = LazyModule("torch")

# transformers and diffusers import their classes lazily on first use, and two threads doing that at once can see a
# half-initialized module ("cannot import name 'DDPMScheduler' from 'diffusers'", seen when two tabs fill themselves
# at page load). Every lookup of one of their classes, and every load from a folder, runs under this one lock.
LIBRARY_LOCK = threading.RLock()


def from_library(library: str, *names: str) -> Any:
    """`from library import names`, one thread at a time (see LIBRARY_LOCK); one name gives the object, several a tuple.

    >>> from_library("json", "dumps").__name__
    'dumps'
    """
    with LIBRARY_LOCK:
        module = importlib.import_module(library)
        values = tuple(getattr(module, name) for name in names)
    return values[0] if len(values) == 1 else values


def no_grad(fn: F) -> F:
    """`@torch.no_grad()` without importing torch at definition time (generators included: torch's own
    decorator, applied on the first call, restores grad mode around every resume)."""
    decorated: Callable[..., Any] | None = None

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal decorated
        if decorated is None:
            decorated = importlib.import_module("torch").no_grad()(fn)
        return decorated(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
