"""What every model and cache shares at run time: one bounded, thread-safe LRU (and the one cache
of loaded models), progress reporting, device and dtype choice, batching with out-of-memory retry.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import TYPE_CHECKING, Generic, TypeVar

import torch
from tqdm.auto import tqdm

from . import settings
from .errors import ExplorerError

if TYPE_CHECKING:
    from .registry import VAESpec

__all__ = [
    "LRU",
    "MODEL_CACHE",
    "Progress",
    "default_batch_size",
    "embedder_dtype",
    "free_cuda_memory",
    "is_out_of_memory",
    "no_progress",
    "pick_device",
    "run_batched",
    "vae_dtype",
]

V = TypeVar("V")

Progress = Callable[[float, str], None]
"""``progress(fraction in [0, 1], description)``: how long work reports how far it is."""


def no_progress(_fraction: float, _description: str) -> None:
    """The :data:`Progress` that reports nothing."""


class LRU(Generic[V]):
    """A thread-safe map bounded by count and, optionally, by bytes; least recently used goes first.

    ``sizeof(value)`` gives a value's bytes when ``max_bytes`` is set. The newest entry is always
    kept, whatever its size. :meth:`get_or_build` builds a missing value once: builds run one at a
    time (``serial=True``: model loads, whose libraries are not thread-safe on first use and whose
    memory peaks should not add up) or one at a time per key.
    """

    def __init__(
        self,
        max_items: int | Callable[[], int],
        max_bytes: float | Callable[[], float] | None = None,
        sizeof: Callable[[V], int] | None = None,
        serial: bool = False,
    ):
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._sizeof = sizeof
        self._d: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._lock = threading.RLock()
        self._serial = threading.Lock() if serial else None
        self._key_locks: dict[Hashable, threading.Lock] = {}

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
            self._evict()
        return value

    def _evict(self) -> None:
        limit_items, limit_bytes = self.max_items, self.max_bytes
        total = sum(n for _, n in self._d.values()) if limit_bytes is not None else 0
        while len(self._d) > 1 and (
            len(self._d) > limit_items or (limit_bytes is not None and total > limit_bytes)
        ):
            _, (_, n) = self._d.popitem(last=False)
            total -= n

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


# Loaded models (VAEs and embedders) shared by all sessions: a bounded LRU (EXPLORER_MAX_MODELS)
# where loads happen one at a time, on purpose: diffusers and transformers resolve their classes
# lazily and not thread-safely (two first loads at once can fail with "module 'diffusers' has no
# attribute 'AutoencoderKL'"), and two big models loading together would double the memory peak.
# A model already loaded is returned without waiting.
MODEL_CACHE: LRU[object] = LRU(lambda: settings.get().max_models, serial=True)
_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- device and dtype


def pick_device() -> torch.device:
    """cuda > mps > cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _device(device: torch.device | str | None) -> torch.device:
    return torch.device(device) if device is not None else pick_device()


def vae_dtype(spec: VAESpec, device: torch.device | str | None = None) -> torch.dtype:
    """The dtype a VAE runs in on ``device`` (default :func:`pick_device`): its half precision
    (``spec.half``: fp16 or bf16) on CUDA where it is safe there, else float32."""
    if _device(device).type != "cuda" or spec.half is None:
        return torch.float32
    return torch.float16 if spec.half == "fp16" else torch.bfloat16


def embedder_dtype(device: torch.device | str | None = None) -> torch.dtype:
    """fp16 on CUDA for the forward pass, fp32 elsewhere (outputs are always float32)."""
    return torch.float16 if _device(device).type == "cuda" else torch.float32


# --------------------------------------------------------------------------- out of memory


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA (or MPS / CPU allocator) out-of-memory error."""
    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def free_cuda_memory() -> None:
    """Give cached CUDA blocks back after an out-of-memory error (outside its ``except`` block,
    so that the failed pass's tensors are gone)."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def default_batch_size(device: torch.device | str | None = None) -> int:
    """64 on a CPU or Apple GPU, 256 on CUDA (halved automatically on out-of-memory)."""
    return 256 if _device(device).type == "cuda" else 64


def run_batched(
    fn: Callable[[int, int], object],
    n: int,
    batch_size: int,
    progress: Progress | None = None,
    desc: str = "embedding",
) -> list:
    """Call ``fn(start, stop)`` over ``range(n)`` in batches; returns the list of results.

    On an out-of-memory error the same batch is retried at half the batch size (and the
    smaller size is kept), down to 1; out of memory at 1 raises :class:`ExplorerError`.
    ``progress(fraction, description)`` is called after each batch; without it a tqdm bar is
    shown (on a terminal only).
    """
    size, start, out = max(1, int(batch_size)), 0, []
    bar = tqdm(total=n, desc=desc, leave=False, disable=True if progress else None)
    try:
        while start < n:
            stop = min(n, start + size)
            failed = False
            try:
                out.append(fn(start, stop))
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                if stop - start == 1:
                    raise ExplorerError(
                        f"Out of memory while {desc}, even one image at a time: choose a "
                        "smaller model or free some GPU memory."
                    ) from exc
                size, failed = max(1, (stop - start) // 2), True
                _log.warning("out of memory while %s: retrying with batch size %d", desc, size)
            if failed:  # outside the except block, so the failed batch's tensors are freed
                free_cuda_memory()
                continue
            bar.update(stop - start)
            start = stop
            if progress is not None:
                progress(start / n, f"{desc}: {start}/{n}")
    finally:
        bar.close()
    return out
