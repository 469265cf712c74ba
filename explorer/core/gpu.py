"""ZeroGPU on a Hugging Face Space: whether GPU work leaves this process, and what a call costs.

On ZeroGPU hardware the ``spaces`` package runs a function decorated with ``spaces.GPU`` in a
**forked worker process** (``spaces/zero/wrappers.py``): its arguments and its result are
pickled across a queue, a worker is reused only while it is alive and the device API says the
GPU is idle, and whatever the function writes to module state stays in that worker. So the app
decorates one function only, :func:`explorer.spaces.gpu_work.run`, which takes a job (arrays or
images in) and returns arrays; every handler runs in the main process, which keeps the atlas
store, the embedding cache and every other cache, and calls ``run`` on the work that is not
cached (see :mod:`explorer.spaces.gpu_work` for the jobs and what a cold worker costs).

* :func:`gpu` applies ``spaces.GPU(duration=...)`` where the ``spaces`` package is importable
  and ``SPACE_ID`` is set (a Space); elsewhere it returns the function itself. Off ZeroGPU
  hardware ``spaces.GPU`` is the identity too (``Config.zero_gpu`` false), so a local run, CPU
  Basic and a T4 Space call the same functions directly, in one process.
* :func:`offloaded`: this process is the main process of a ZeroGPU Space, so compute goes
  through ``run`` (in a worker, nothing is offloaded again: the package runs a nested call
  inline).
* :func:`seconds`: the duration asked for one call, from an estimate of its work: at least
  :data:`FLOOR_S`, at most :data:`CAP_S`, a whole number (the package reads a duration with
  ``timedelta.seconds``, which floors fractions). Work that does not fit under the cap is split
  into several calls by the caller (:mod:`explorer.spaces.gpu_calls`).

Torch-free: the ``spaces`` package is imported only on a Space.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from explorer.core import settings

__all__ = [
    "CAP_S",
    "FLOOR_S",
    "enabled",
    "gpu",
    "import_spaces",
    "in_worker",
    "offloaded",
    "seconds",
    "zero_gpu",
]

FLOOR_S = 5
"""Seconds asked for the smallest call: a fresh worker's start (fork, CUDA initialisation, the
Space's preloaded weights copied to its GPU) is charged to the call it serves."""
CAP_S = 60
"""Seconds asked for at most in one call; a longer job is split (a long ask is refused outright
when it exceeds a visitor's remaining quota, and ranks lower in the GPU queue)."""

F = TypeVar("F", bound=Callable[..., Any])
Duration = int | float | Callable[..., float]


def _spaces() -> Any | None:
    """The ``spaces`` module on a Space (``SPACE_ID`` set) where it is installed, else None."""
    if not settings.get().space_id:
        return None
    try:
        return importlib.import_module("spaces")
    except ImportError:
        return None


def import_spaces() -> bool:
    """Import ``spaces`` now where :func:`gpu` will use it (its docs: before anything that may
    initialise CUDA); returns :func:`enabled`. ``app.py`` calls it first."""
    return _spaces() is not None


def enabled() -> bool:
    """Whether :func:`gpu` wraps functions here (``spaces`` importable and ``SPACE_ID`` set)."""
    return _spaces() is not None


def zero_gpu() -> bool:
    """Whether this is a ZeroGPU Space (``SPACES_ZERO_GPU`` set there, ``spaces`` installed):
    GPU work runs in workers although the process that builds the demo has no GPU."""
    return settings.get().zero_gpu and enabled()


def in_worker() -> bool:
    """Whether this process is a ZeroGPU worker (forked by ``spaces.GPU`` for a call)."""
    wrappers = sys.modules.get("spaces.zero.wrappers")
    return bool(getattr(wrappers, "forked", False))


def offloaded() -> bool:
    """Whether compute must go through the GPU function: the main process of a ZeroGPU Space."""
    return zero_gpu() and not in_worker()


def seconds(work_s: float, *, floor: float = FLOOR_S, cap: float = CAP_S) -> int:
    """Estimated seconds of work -> the whole seconds to ask for, in ``[floor, cap]``."""
    if not math.isfinite(work_s):
        return int(cap)
    return int(min(cap, max(floor, math.ceil(work_s))))


def gpu(duration: Duration) -> Callable[[F], F]:
    """Decorator factory: ``spaces.GPU(duration=duration)`` on a Space with ``spaces``, else
    the function itself. ``duration``: seconds, or a callable of the function's arguments."""

    def wrap(fn: F) -> F:
        spaces = _spaces()
        if spaces is None:
            return fn
        return spaces.GPU(duration=duration)(fn)

    return wrap
