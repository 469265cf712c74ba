"""Giving freed memory back to the system: on glibc, ``malloc_trim(0)`` returns the free pages
of the heap (which otherwise stay in the process's RSS after large objects are freed, e.g. an
evicted atlas); elsewhere nothing."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import sys

__all__ = ["release_freed"]


@functools.cache
def _trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.malloc_trim
    except (OSError, AttributeError):  # musl and others have no malloc_trim
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


def release_freed(collect: bool = False) -> bool:
    """Return freed heap memory to the system (``collect``: run the garbage collector first).
    -> whether there was a ``malloc_trim`` to call."""
    if collect:
        gc.collect()
    fn = _trim()
    if fn is None:
        return False
    fn(0)
    return True
