"""A bounded, thread-safe LRU: size by count or bytes, one build per key at a time.

Fork-safe: in a child made by ``os.fork`` (a ZeroGPU worker, say) every LRU gets new locks, so a
lock that another thread of the parent held at the fork does not block the child forever.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

__all__ = ["LRU"]

V = TypeVar("V")


class LRU(Generic[V]):
    """A thread-safe map bounded by count and, optionally, by bytes; least recently used goes first.

    ``sizeof(value)`` gives a value's bytes when ``max_bytes`` is set. The newest entry is always
    kept, whatever its size. ``on_evict()`` is called (outside the lock) after a :meth:`put`
    that evicted something. :meth:`get_or_build` builds a missing value once: builds run one at a
    time (``serial=True``: model loads, whose libraries are not thread-safe on first use and whose
    memory peaks should not add up) or one at a time per key.
    """

    def __init__(
        self,
        max_items: int | Callable[[], int],
        max_bytes: float | Callable[[], float] | None = None,
        sizeof: Callable[[V], int] | None = None,
        serial: bool = False,
        on_evict: Callable[[], object] | None = None,
    ):
        self._on_evict = on_evict
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._sizeof = sizeof
        self._d: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._lock = threading.RLock()
        self._serial = threading.Lock() if serial else None
        self._key_locks: dict[Hashable, threading.Lock] = {}
        _ALL.add(self)

    def _new_locks(self) -> None:
        """Fresh locks (in a forked child: the parent's threads, and their locks, are gone)."""
        self._lock = threading.RLock()
        self._serial = threading.Lock() if self._serial is not None else None
        self._key_locks = {}

    @property
    def max_items(self) -> int:
        m = self._max_items
        return int(m() if callable(m) else m)

    @property
    def max_bytes(self) -> float | None:
        m = self._max_bytes
        return None if m is None else float(m() if callable(m) else m)

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._d

    def keys(self) -> Iterator[Hashable]:
        with self._lock:
            return iter(list(self._d))

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(n for _, n in self._d.values())

    def get(self, key: Hashable, default: V | None = None) -> V | None:
        with self._lock:
            entry = self._d.get(key)
            if entry is None:
                return default
            self._d.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, value: V) -> V:
        size = self._sizeof(value) if self._sizeof is not None else 0
        with self._lock:
            self._d[key] = (value, size)
            self._d.move_to_end(key)
            gone = self._evict()
        if gone and self._on_evict is not None:
            del gone
            self._on_evict()
        return value

    def _evict(self) -> list[V]:
        limit_items, limit_bytes = self.max_items, self.max_bytes
        total = sum(n for _, n in self._d.values()) if limit_bytes is not None else 0
        gone = []
        while len(self._d) > 1 and (
            len(self._d) > limit_items or (limit_bytes is not None and total > limit_bytes)
        ):
            _, (value, n) = self._d.popitem(last=False)
            gone.append(value)
            total -= n
        return gone

    def pop(self, key: Hashable) -> V | None:
        with self._lock:
            entry = self._d.pop(key, None)
        return None if entry is None else entry[0]

    def clear(self) -> None:
        with self._lock:
            self._d.clear()

    def get_or_build(self, key: Hashable, build: Callable[[], V]) -> V:
        """The value for ``key``, built by ``build()`` once if missing (concurrent callers wait)."""
        sentinel = object()
        found = self.get(key, sentinel)  # type: ignore[arg-type]
        if found is not sentinel:
            return found  # type: ignore[return-value]
        if self._serial is not None:
            lock = self._serial
        else:
            with self._lock:
                lock = self._key_locks.setdefault(key, threading.Lock())
        with lock:
            found = self.get(key, sentinel)  # type: ignore[arg-type]
            if found is not sentinel:
                return found  # type: ignore[return-value]
            value = self.put(key, build())
        if self._serial is None:
            with self._lock:
                self._key_locks.pop(key, None)
        return value


_ALL: weakref.WeakSet[LRU] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for lru in list(_ALL):
        lru._new_locks()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
