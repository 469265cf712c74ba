"""Bounded thread pools for work that releases the GIL (Pillow's decoders and resizes, numpy
copies): a few threads, results in the input's order, never more than a window of items in
flight (:func:`imap_ordered`); and one batch's CPU work started while the device runs the
previous one (:class:`Ahead`). Pools live for one call: no threads are left behind."""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["MAX_WORKERS", "Ahead", "imap_ordered", "workers"]

T = TypeVar("T")
R = TypeVar("R")

MAX_WORKERS = 16


def workers(limit: int = MAX_WORKERS) -> int:
    """The threads worth starting here: the CPUs this process may use, at most ``limit``."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(int(limit), n))


def imap_ordered(
    fn: Callable[[T], R], items: Iterable[T], *, threads: int | None = None, ahead: int = 4
) -> Iterator[R]:
    """``fn(item)`` for every item, in the items' order, on up to ``threads`` threads (default
    :func:`workers`), with at most ``threads × ahead`` items taken from ``items`` and not yet
    yielded (so a long iterable of file reads stays bounded in memory). One thread: a plain
    loop. An exception raised by ``fn`` is raised here, at its item."""
    n = workers() if threads is None else max(1, int(threads))
    if n == 1:
        yield from map(fn, items)
        return
    window = n * max(1, int(ahead))
    pending: deque[Future[R]] = deque()
    with ThreadPoolExecutor(n, thread_name_prefix="explorer-pool") as pool:
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


class Ahead:
    """One call of ``fn(start, stop)`` started early, on a thread of its own: :meth:`start` the
    next batch's CPU work while the caller waits on a device; :meth:`take` returns it (or
    computes it there, for a range that was not started). :meth:`close` when done."""

    def __init__(self, fn: Callable[[int, int], R]):
        self._fn = fn
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="explorer-ahead")
        self._key: tuple[int, int] | None = None
        self._future: Future[R] | None = None

    def start(self, start: int, stop: int) -> None:
        if start >= stop:
            return
        self._drop()
        self._key, self._future = (start, stop), self._pool.submit(self._fn, start, stop)

    def take(self, start: int, stop: int) -> R:
        if self._key == (start, stop) and self._future is not None:
            future, self._key, self._future = self._future, None, None
            return future.result()
        self._drop()
        return self._fn(start, stop)

    def _drop(self) -> None:
        if self._future is not None:
            self._future.cancel()
            with contextlib.suppress(Exception):  # its result is not wanted, nor its error
                self._future.result()
        self._key, self._future = None, None

    def close(self) -> None:
        self._drop()
        self._pool.shutdown(wait=True)
