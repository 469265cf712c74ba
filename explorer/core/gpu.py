"""ZeroGPU on a Hugging Face Space: :func:`gpu` marks the UI handlers that need the GPU.

On ZeroGPU hardware a Space holds no GPU between requests: a function decorated with
``spaces.GPU`` is given one for the length of a call, for at most ``duration`` seconds (60 by
default; a shorter duration ranks a visitor higher in the GPU queue; ``duration`` may also be a
callable taking the handler's own arguments and returning seconds). CUDA may be used only inside
such a function: nothing at import or while the demo is built touches ``torch.cuda``
(:func:`explorer.models.registry.default_vae` decides from :func:`zero_gpu` there instead), and
``torch.compile`` is not supported (the app does not use it). See
https://huggingface.co/docs/hub/spaces-zerogpu.

:func:`gpu` applies ``spaces.GPU`` only where the ``spaces`` package is importable and ``SPACE_ID``
is set (a Space); elsewhere it returns the handler unchanged, so a local run, the tests and a
CPU or T4 Space without ``spaces`` run the plain handlers. On a Space that is not on ZeroGPU the
Hub's docs say the decorator has no effect.

Durations (seconds of GPU time asked for, per call):

* :data:`LAB` (30): one image through one or two VAEs at up to the lab's largest resolution
  (encode, round trip, compare, interpolate, edit, repeated round trips), model load included.
* :data:`QUERY` (30): one query image or one text through the atlas's models.
* :data:`ATLAS` (120): opening a set embeds every image in up to four spaces (a preset streams
  hundreds of images; the UNet space, :mod:`explorer.spaces.unet`, runs in the same handler); embeddings
  already in the cache are not recomputed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from explorer.core import settings

__all__ = ["ATLAS", "LAB", "QUERY", "enabled", "gpu", "zero_gpu"]

LAB = 30
QUERY = 30
ATLAS = 120

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


def enabled() -> bool:
    """Whether :func:`gpu` wraps handlers here (``spaces`` importable and ``SPACE_ID`` set)."""
    return _spaces() is not None


def zero_gpu() -> bool:
    """Whether this is a ZeroGPU Space (``SPACES_ZERO_GPU`` set there, ``spaces`` installed):
    the handlers run on a GPU although the process that builds the demo has none."""
    return settings.get().zero_gpu and enabled()


def gpu(duration: Duration) -> Callable[[F], F]:
    """Decorator factory: ``spaces.GPU(duration=duration)`` on a Space with ``spaces``, else
    the function itself. ``duration``: seconds, or a callable of the handler's arguments."""

    def wrap(fn: F) -> F:
        spaces = _spaces()
        if spaces is None:
            return fn
        return spaces.GPU(duration=duration)(fn)

    return wrap
