"""Image sizes, decided before decoding: ``(width, height)`` in, ``(width, height)`` out."""

from __future__ import annotations

__all__ = ["DRAFT_FORMATS", "decoded_size", "fit_size"]

DRAFT_FORMATS = frozenset({"JPEG", "MPO"})
"""Formats whose decoder can decode at 1/2, 1/4 or 1/8 scale (Pillow's ``draft``)."""


def fit_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """A ``width x height`` image's size once its longer side is at most ``max_side`` (aspect
    kept; never larger than it is)."""
    if max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def decoded_size(width: int, height: int, fmt: str | None, max_side: int | None) -> tuple[int, int]:
    """The size a ``fmt`` image of ``width x height`` is decoded at by :func:`load_image` with
    ``max_side``: a JPEG at the largest 1/2, 1/4 or 1/8 scale that still covers
    :func:`fit_size` (its decoder scales in the DCT), anything else at full size."""
    if not max_side or fmt not in DRAFT_FORMATS or max(width, height) <= max_side:
        return width, height
    tw, th = fit_size(width, height, max_side)
    scale = min(width // tw, height // th)
    s = next(s for s in (8, 4, 2, 1) if scale >= s)
    return (width + s - 1) // s, (height + s - 1) // s
