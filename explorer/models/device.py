"""Device and dtype choice, the one cache of loaded models, batching with out-of-memory retry.

Loaded models live in :data:`MODEL_CACHE` (bounded) or, on a ZeroGPU Space, in
:data:`PRELOADED` (the Space's own models, placed on ``"cuda"`` at import: see
:mod:`explorer.spaces.gpu_work`); :func:`cached_model` reads both.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from explorer.core import settings
from explorer.core.errors import ExplorerError
from explorer.core.lru import LRU
from explorer.core.progress import Progress

if TYPE_CHECKING:
    from explorer.models.specs import VAESpec

__all__ = [
    "MODEL_CACHE",
    "PRELOADED",
    "cached_model",
    "default_batch_size",
    "embedder_dtype",
    "free_cuda_memory",
    "is_out_of_memory",
    "param_device",
    "pick_device",
    "preloading",
    "run_batched",
    "vae_dtype",
    "work_device",
]

# Loaded models (VAEs and embedders) shared by all sessions: a bounded LRU (EXPLORER_MAX_MODELS)
# where loads happen one at a time, on purpose: diffusers and transformers resolve their classes
# lazily and not thread-safely (two first loads at once can fail with "module 'diffusers' has no
# attribute 'AutoencoderKL'"), and two big models loading together would double the memory peak.
# A model already loaded is returned without waiting.
MODEL_CACHE: LRU[object] = LRU(lambda: settings.get().max_models, serial=True)
PRELOADED: dict[tuple, object] = {}
"""Models loaded once at import and never evicted (a ZeroGPU Space's own models, which the
``spaces`` package copies to each worker's GPU); filled in the main thread before any request."""
_log = logging.getLogger(__name__)


_preloading = threading.local()


@contextlib.contextmanager
def preloading() -> Iterator[None]:
    """Inside: models that :func:`cached_model` loads in this thread go to :data:`PRELOADED`."""
    _preloading.on = True
    try:
        yield
    finally:
        _preloading.on = False


def cached_model(key: tuple, build: Callable[[], object]) -> object:
    """The loaded model under ``key``: :data:`PRELOADED`, else :data:`MODEL_CACHE` (built once);
    inside :func:`preloading`, built into :data:`PRELOADED`."""
    found = PRELOADED.get(key)
    if found is not None:
        return found
    if getattr(_preloading, "on", False):
        PRELOADED[key] = found = build()
        return found
    return MODEL_CACHE.get_or_build(key, build)


def _new_model_locks() -> None:
    """In a forked child: each loaded model's forward-pass lock anew (see explorer.core.lru)."""
    cached = list(MODEL_CACHE.keys())
    for model in [*PRELOADED.values(), *(MODEL_CACHE.get(k) for k in cached)]:
        if hasattr(model, "lock"):
            model.lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_model_locks)


# --------------------------------------------------------------------------- device and dtype


def pick_device() -> torch.device:
    """cuda > mps > cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def work_device() -> torch.device:
    """Where the GPU work runs: ``cuda`` on a ZeroGPU Space (decided from its settings, in the
    main process too, which has no GPU), else :func:`pick_device`."""
    from explorer.core import gpu

    return torch.device("cuda") if gpu.zero_gpu() else pick_device()


def param_device(module: torch.nn.Module) -> torch.device:
    """The device of ``module``'s weights (where its inputs must go), the CPU for a module
    without any."""
    for p in module.parameters():
        return p.device
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
