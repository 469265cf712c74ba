"""Pillow's resize of 8-bit images, reproduced with matrix products: the same pixels, batched.

``Image.resize(size, filter)`` on an 8-bit RGB image is two one-dimensional passes (horizontal,
then vertical), each a weighted sum of a window of source pixels with fixed-point weights
(22 fractional bits), rounded and clipped to 0..255 after each pass. :func:`weights` computes those
weights exactly as Pillow does (``precompute_coeffs`` and ``normalize_coeffs_8bpc`` in its
``Resample.c``), as an ``(out, in)`` matrix of integers; :func:`resize_u8` applies them to a batch
of images with float32 matrix products that are exact (every weight is split into 8-bit digits, so
every product and partial sum is an integer below 2**24), so the result equals Pillow's, pixel for
pixel, on a CPU or a GPU and whether or not TF32 is allowed.

A centre crop after the resize is a choice of rows of these matrices (:func:`band`), so a
resize-then-crop costs only the output pixels; rows that fall outside the resized image (a crop
larger than it) are zero, as the image processors pad. The weights travel as windows (a start
and a few weights per output pixel) and become dense matrices on the device.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "FILTERS",
    "MAX_WINDOW",
    "Band",
    "Digits",
    "band",
    "digits",
    "resize_u8",
    "taps",
    "weights",
    "window",
]

PRECISION_BITS = 32 - 8 - 2  # Pillow's fixed-point weights for 8-bit images
DIGIT_BITS = 8
MAX_WINDOW = 257
"""The widest window (source pixels per output pixel) :func:`resize_u8` keeps exact: 255 × 255
× 257 < 2**24. Pillow's bicubic window is 2·ceil(2·scale) + 1 wide, so this covers downscaling
by up to 64×."""


def _bicubic(x: np.ndarray) -> np.ndarray:
    a = -0.5
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def _bilinear(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _box(x: np.ndarray) -> np.ndarray:
    return np.where((x > -0.5) & (x <= 0.5), 1.0, 0.0)


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x *= math.pi
    return math.sin(x) / x


def _lanczos(x: np.ndarray) -> np.ndarray:
    # math.sin, as Pillow's C code calls the C library's (numpy's own sin may round differently)
    return np.array(
        [_sinc(v) * _sinc(v / 3) if -3.0 <= v < 3.0 else 0.0 for v in x.ravel().tolist()]
    ).reshape(x.shape)


def _hamming1(x: float) -> float:
    x = abs(x)
    if x == 0.0:
        return 1.0
    if x >= 1.0:
        return 0.0
    x *= math.pi
    return math.sin(x) / x * (0.54 + 0.46 * math.cos(x))


def _hamming(x: np.ndarray) -> np.ndarray:
    return np.array([_hamming1(v) for v in x.ravel().tolist()]).reshape(x.shape)


FILTERS: dict[int, tuple[Callable[[np.ndarray], np.ndarray], float]] = {
    4: (_box, 0.5),  # PIL.Image.Resampling.BOX
    2: (_bilinear, 1.0),  # BILINEAR
    5: (_hamming, 1.0),  # HAMMING
    3: (_bicubic, 2.0),  # BICUBIC
    1: (_lanczos, 3.0),  # LANCZOS
}
"""Pillow's resampling filters by their ``Image.Resampling`` value: (filter, support)."""


def window(in_size: int, out_size: int, resample: int) -> int:
    """Pillow's window width (source pixels per output pixel) for one axis."""
    _, support = FILTERS[int(resample)]
    scale = in_size / out_size
    return math.ceil(support * max(scale, 1.0)) * 2 + 1


@functools.lru_cache(maxsize=512)
def taps(in_size: int, out_size: int, resample: int) -> tuple[np.ndarray, np.ndarray]:
    """One axis of ``Image.resize`` from ``in_size`` to ``out_size`` pixels, as Pillow computes
    it -> ``start`` ``(out_size,)`` int64, the first source pixel of each output pixel's window,
    and ``coeff`` ``(out_size, window)`` int64 fixed-point weights (``2**22`` = 1) over the window
    (zero past its end). Read-only, remembered."""
    fn, support = FILTERS[int(resample)]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support *= filterscale
    ss = 1.0 / filterscale
    ksize = math.ceil(support) * 2 + 1
    center = (np.arange(out_size) + 0.5) * scale
    # C's (int) cast truncates towards zero, as np.trunc does
    xmin = np.maximum(np.trunc(center - support + 0.5).astype(np.int64), 0)
    xmax = np.minimum(np.trunc(center + support + 0.5).astype(np.int64), in_size) - xmin
    x = np.arange(ksize)[None, :]
    used = x < xmax[:, None]
    w = np.where(used, fn((x + xmin[:, None] - center[:, None] + 0.5) * ss), 0.0)
    total = np.cumsum(w, axis=1)[:, -1:]  # summed left to right, as the C loop does
    w = np.where(total != 0.0, w / np.where(total != 0.0, total, 1.0), w)
    one = float(1 << PRECISION_BITS)
    fixed = np.where(w < 0, np.trunc(-0.5 + w * one), np.trunc(0.5 + w * one)).astype(np.int64)
    fixed[~used] = 0
    for a in (xmin, fixed):
        a.setflags(write=False)
    return xmin, fixed


def weights(in_size: int, out_size: int, resample: int) -> np.ndarray:
    """:func:`taps` as a dense ``(out_size, in_size)`` int64 matrix."""
    start, coeff = taps(in_size, out_size, resample)
    out = np.zeros((out_size, in_size), np.int64)
    cols = start[:, None] + np.arange(coeff.shape[1])
    keep = cols < in_size
    out[np.broadcast_to(np.arange(out_size)[:, None], cols.shape)[keep], cols[keep]] = coeff[keep]
    return out


class Band(NamedTuple):
    """One axis of a batch's resizes and crops: ``start`` ``(B, n)`` int64 and ``coeff``
    ``(B, n, K)`` int64, as :func:`taps` gives them, for the ``n`` output pixels the crop keeps
    (rows outside the resized image: zero weights)."""

    start: np.ndarray
    coeff: np.ndarray


def band(sizes: Sequence[int], resized: Sequence[int], crop: Sequence[int], resample: int) -> Band:
    """Per image: its side, the side after the resize, the output side after a centre crop ->
    one :class:`Band` for the batch (a crop row ``i`` reads resized row ``i + (resized - crop)
    // 2``, as the processors' centre crop does)."""
    parts = [taps(int(s), int(r), resample) for s, r in zip(sizes, resized, strict=True)]
    k = max(c.shape[1] for _, c in parts)
    n = max(int(c) for c in crop)
    start = np.zeros((len(parts), n), np.int64)
    coeff = np.zeros((len(parts), n, k), np.int64)
    for b, ((s, c), r, m) in enumerate(zip(parts, resized, crop, strict=True)):
        src = np.arange(int(m)) + (int(r) - int(m)) // 2
        ok = (src >= 0) & (src < int(r))
        start[b, : int(m)][ok] = s[src[ok]]
        coeff[b, : int(m), : c.shape[1]][ok] = c[src[ok]]
    return Band(start, coeff)


class Digits(NamedTuple):
    """A :class:`Band` ready for a device: ``start`` ``(B, n)`` int64 and its weights split into
    float32 digits ``(B, n, K)`` each, ``w = Σ digits[i] · 2**(8·i)`` (the low ones in [0, 256),
    the top one signed and small), as tensors (pinned where CUDA is available)."""

    start: torch.Tensor
    digits: tuple[torch.Tensor, ...]


def digits(b: Band) -> Digits:
    """A :class:`Band` -> its :class:`Digits` (CPU work: can run before the device needs it)."""
    import torch

    pin = torch.cuda.is_available()
    out, rest = [], b.coeff.astype(np.int64)
    for _ in range((PRECISION_BITS + 1) // DIGIT_BITS):
        out.append(rest & ((1 << DIGIT_BITS) - 1))
        rest = rest >> DIGIT_BITS  # floor division: exact for negative weights too
    out.append(rest)

    def tensor(a: np.ndarray, dtype) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(a, dtype))
        return t.pin_memory() if pin else t

    return Digits(tensor(b.start, np.int64), tuple(tensor(d, np.float32) for d in out))


def _dense(start: torch.Tensor, digit: torch.Tensor, width: int) -> torch.Tensor:
    """(B, n) window starts and (B, n, K) weights (one digit), on the device -> (B, n, width)."""
    import torch

    k = digit.shape[2]
    cols = (start[..., None] + torch.arange(k, device=start.device)).clamp_(max=width - 1)
    out = torch.zeros((*digit.shape[:2], width), dtype=torch.float32, device=start.device)
    return out.scatter_add_(2, cols, digit)  # clamped columns carry zero weights


def _pass(x: torch.Tensor, d: Digits) -> torch.Tensor:
    """``(B, R, W)`` integer values 0..255 times the weights ``(B, n, W)`` of ``d``, transposed:
    ``(B, R, n)``, rounded and clipped as Pillow does, as float32. Every digit's product is an
    exact integer in float32 (at most 255 · 255 · MAX_WINDOW < 2**24), their sum an int32 (as
    Pillow's accumulator)."""
    import torch

    dev = x.device
    start = d.start.to(dev, non_blocking=True)
    total = None
    for i, digit in enumerate(d.digits):
        w = _dense(start, digit.to(dev, non_blocking=True), x.shape[-1])
        part = torch.bmm(x, w.transpose(1, 2)).to(torch.int32)
        part = part << (DIGIT_BITS * i) if i else part
        total = part if total is None else total.add_(part)
    # Pillow's clip8: (sum + 2**21) >> 22 (an arithmetic shift: floor), clipped to 0..255
    total = (total + (1 << (PRECISION_BITS - 1))) >> PRECISION_BITS
    return total.clamp_(0, 255).float()


def resize_u8(x: torch.Tensor, by: Band | Digits, bx: Band | Digits) -> torch.Tensor:
    """``(B, C, H, W)`` pixel values 0..255 (any dtype; an image smaller than ``H × W`` at the
    top left, whatever lies past it: its weights there are zero), the batch's vertical and
    horizontal :class:`Band` s (or their :func:`digits`) -> ``(B, C, h, w)`` float32 values
    0..255: the pixels of Pillow's resize (horizontal pass, then vertical) and centre crop, on
    ``x``'s device."""
    by = digits(by) if isinstance(by, Band) else by
    bx = digits(bx) if isinstance(bx, Band) else bx
    b, c, h, w = x.shape
    tmp = _pass(x.float().reshape(b, c * h, w), bx)  # (B, C·H, w'): every row, horizontally
    w2 = tmp.shape[-1]
    cols = tmp.view(b, c, h, w2).transpose(2, 3).reshape(b, c * w2, h)  # (B, C·w', H)
    out = _pass(cols, by)  # (B, C·w', h'): every column, vertically
    h2 = out.shape[-1]
    return out.view(b, c, w2, h2).transpose(2, 3).contiguous()
