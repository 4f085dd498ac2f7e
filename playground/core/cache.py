"""Caches keyed by an object (a tokenizer, a model) that live exactly as long as that object.

`functools.lru_cache` would hold its keys strongly: a tokenizer the loader evicted would stay in
memory through the cache. These caches hold their keys weakly instead, so the entry goes when the
loader lets the object go.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def per_object(fn: Callable[[Any], T]) -> Callable[[Any], T]:
    """Memoize `fn(obj)` for as long as `obj` lives (weakly keyed, by identity, thread-safe).

    Two threads racing on a new key get the same value: the first one stored wins, so a per-object
    lock built here is one lock.

    >>> class Box: pass
    >>> calls = []
    >>> size = per_object(lambda box: calls.append(1) or len(calls))
    >>> b = Box(); size(b), size(b), len(size.cache)
    (1, 1, 1)
    >>> del b; import gc; _ = gc.collect(); len(size.cache)
    0
    """
    cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    lock = threading.Lock()

    @functools.wraps(fn)
    def cached(obj: Any) -> T:
        with lock:
            if obj in cache:
                return cache[obj]
        value = fn(obj)  # outside the lock: a slow first call does not block other keys
        with lock:
            return cache.setdefault(obj, value)

    cached.cache = cache  # type: ignore[attr-defined]
    return cached


@per_object
def shared_lock(obj: Any) -> threading.RLock:
    """The one lock of a shared object (a tokenizer, a scheduler), for as long as it lives.

    Gradio runs handlers in threads and every user shares the loader's cached tokenizers. A fast
    tokenizer's Rust core is borrowed mutably when a call changes its truncation or padding, so
    two calls at once fail ("Already borrowed"): every use of a shared tokenizer goes through
    `with shared_lock(tokenizer):`. Re-entrant, so a helper may take it again inside.
    """
    return threading.RLock()
