"""What reading an image set will cost, known from the files' headers before any pixel is decoded:
how many images and how many pixels will be decoded (a JPEG at the reduced scale its decoder
gives, :func:`explorer.images.io.decoded_size`; anything else at full size).

``EXPLORER_MAX_SET_MEGAPIXELS`` (20,000; 1,000 public) caps the decoded pixels of one set: the
loaders refuse a set past it from its plan, before decoding (:func:`check`), and count again while
they decode (:class:`PixelBudget`), so a header that lied cannot buy more.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from explorer.core import settings
from explorer.datasets.imageset import MAX_SIDE, DatasetError
from explorer.images import io as imaging

__all__ = ["HEAD_BYTES", "PixelBudget", "SetPlan", "check", "max_set_pixels", "plan"]

HEAD_BYTES = 64 * 1024
"""How much of each file the plan reads for its header (more only where the header lies past
it: a JPEG with a large EXIF block before its frame header)."""


def max_set_pixels() -> int:
    """The most pixels decoded for one set: ``EXPLORER_MAX_SET_MEGAPIXELS`` million."""
    return settings.get().max_set_pixels


@dataclass(frozen=True)
class SetPlan:
    """``images`` files with a readable header, ``pixels`` they decode to (at ``max_side``),
    ``largest`` of them (pixels), and ``unreadable`` files whose header no decoder read."""

    images: int = 0
    pixels: int = 0
    largest: int = 0
    unreadable: int = 0

    @property
    def megapixels(self) -> float:
        return self.pixels / 1e6


def plan(heads: Iterable[Callable[[int | None], bytes]], *, max_side: int = MAX_SIDE) -> SetPlan:
    """One ``head(n)`` per file, giving its first ``n`` bytes (None: all of it, within the
    loader's own cap) -> the :class:`SetPlan` of decoding them for a set of ``max_side``."""
    images = pixels = largest = unreadable = 0
    for head in heads:
        try:
            found = imaging.image_header(head(HEAD_BYTES))
            if found is None:
                found = imaging.image_header(head(None))
        except Exception:  # a damaged member: the loader skips it with its reason
            found = None
        if found is None:
            unreadable += 1
            continue
        fmt, w, h = found
        dw, dh = imaging.decoded_size(w, h, fmt, max_side)
        images += 1
        pixels += dw * dh
        largest = max(largest, dw * dh)
    return SetPlan(images, pixels, largest, unreadable)


def _refusal(shown: str, pixels: int, limit: int, n: int) -> DatasetError:
    return DatasetError(
        f"{shown} would decode to {pixels / 1e6:,.0f} megapixels ({n:,} images), more than the "
        f"{limit / 1e6:,.0f} this app decodes for one set. The atlas shows every image at "
        f"{MAX_SIDE} px at most: downscale the images (for example to 1024 px on the long side, "
        "or save them as JPEG), or use fewer."
    )


def check(p: SetPlan, shown: str, limit: int | None = None) -> SetPlan:
    """``p`` if its pixels fit the set's cap (``limit``, default :func:`max_set_pixels`), else
    :class:`DatasetError` with a sentence naming the set, what it would decode and the cap."""
    limit = max_set_pixels() if limit is None else int(limit)
    if p.pixels > limit:
        raise _refusal(shown, p.pixels, limit, p.images)
    return p


class PixelBudget:
    """The pixels a loader may still decode for one set: :meth:`spend` (``before_decode`` of
    :func:`explorer.images.io.load_image`) raises :class:`DatasetError` at the image that would
    pass the cap, before decoding it."""

    def __init__(self, shown: str, limit: int | None = None):
        self.shown = shown
        self.limit = max_set_pixels() if limit is None else int(limit)
        self.spent = 0
        self.images = 0
        self._lock = threading.Lock()  # the loaders decode on several threads

    def spend(self, width: int, height: int) -> None:
        with self._lock:
            if self.spent + width * height > self.limit:
                raise _refusal(self.shown, self.spent + width * height, self.limit, self.images + 1)
            self.spent += width * height
            self.images += 1
