"""Per-session results the server keeps (an attention run's weights, a diffusion run's steps), counted in the
loader's memory budget and evicted oldest first.

A browser session's `gr.State` holds only a small `ResultHandle`; the arrays live here, where the
loader can see them. Thirty workshop sessions each keeping a BERT-base attention run at 512 tokens
(~150 MB) would otherwise be 4.5 GB that `PLAYGROUND_MEMORY_GB` never counted.

    >>> store = ResultStore()
    >>> h = store.put([1, 2, 3], nbytes=24, kind="attention run")
    >>> resolve(h), store.bytes_used()
    ([1, 2, 3], 24)
    >>> store.evict_oldest(); resolve(h)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    playground.models.results.ResultGone: Your last attention run was released to make room for other users ... Run it again.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from playground.errors import UserError

_STORES: weakref.WeakValueDictionary[int, ResultStore] = weakref.WeakValueDictionary()
_IDS = itertools.count(1)


class ResultGone(UserError, LookupError):
    """A session's result was evicted (memory budget) or expired; the message says to run it again."""


@dataclass(frozen=True)
class ResultHandle:
    """What a session's gr.State keeps: plain numbers and a word, cheap to copy, no reference to the arrays."""

    store: int  # the ResultStore's id
    key: int  # the entry in it
    kind: str  # what it holds, in words ("attention run")


class ResultStore:
    """Thread-safe, insertion-ordered (oldest first) map of handles to results, with their byte sizes."""

    def __init__(self) -> None:
        self.id = next(_IDS)
        _STORES[self.id] = self
        self._lock = threading.Lock()
        self._items: OrderedDict[int, tuple[Any, int]] = OrderedDict()
        self._keys = itertools.count(1)
        self.evicted = 0  # results dropped for the budget (for tests and the Models tab)

    def put(self, value: Any, nbytes: int, kind: str) -> ResultHandle:
        with self._lock:
            key = next(self._keys)
            self._items[key] = (value, int(nbytes))
        return ResultHandle(self.id, key, kind)

    def get(self, handle: ResultHandle) -> Any:
        with self._lock:
            entry = self._items.get(handle.key)
        if entry is None:
            raise ResultGone(
                f"Your last {handle.kind} was released to make room for other users (the server's memory budget). Run it again."
            )
        return entry[0]

    def recount(self, handle: ResultHandle, nbytes: int) -> None:
        """A kept result grew (a diffusion run's branch): count its new size."""
        with self._lock:
            entry = self._items.get(handle.key)
            if entry is not None:
                self._items[handle.key] = (entry[0], int(nbytes))

    def drop(self, handle: Any) -> None:
        """Forget a handle's result (a session ended, or replaced it); anything else is ignored."""
        if isinstance(handle, ResultHandle) and handle.store == self.id:
            with self._lock:
                self._items.pop(handle.key, None)

    def bytes_used(self) -> int:
        with self._lock:
            return sum(n for _, n in self._items.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def evict_oldest(self) -> bool:
        """Drop the oldest result; False when there is none."""
        with self._lock:
            if not self._items:
                return False
            self._items.popitem(last=False)
            self.evicted += 1
            return True


def resolve(value: Any) -> Any:
    """The result a handle stands for (ResultGone if it was evicted); any other value as it is."""
    if isinstance(value, ResultHandle):
        store = _STORES.get(value.store)
        if store is None:
            raise ResultGone(f"Your last {value.kind} is no longer on the server. Run it again.")
        return store.get(value)
    return value
