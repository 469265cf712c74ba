"""A digit drawn with the mouse, read the way scikit-learn's digits were made, and placed in each
playground model's latent space.

scikit-learn's 1,797 digits (the UCI "optdigits" set) are NIST form scans: each digit was cut
out, size-normalised into a 32×32 bitmap, and the bitmap divided into 4×4 blocks whose on-pixels
were counted, giving 8×8 integers 0..16. Every one of them spans all 8 rows (the digit is 32 px
tall) and most span 6 columns (24 px wide, centred), with ~310 on-pixels of 1,024.
:func:`to_digit` does the same to a canvas: the ink (dark, opaque paint) is cut to its bounding
box, scaled to 32 px tall (at most :data:`MAX_WIDTH` wide, the aspect kept below that), centred,
thresholded at half coverage, and counted in 4×4 blocks. The NIST bitmaps' strokes were
normalised too (their ink varies little: 95 % of the digits have at least :data:`MIN_INK`
on-pixels), so a mouse line that leaves fewer is thickened first, one pixel ring at a time.

:func:`place` encodes the 8×8 digit with a trained model -> its latent (the VQ-VAE's code too),
its decode, and where it lies among the 1,797 training digits' latents. Arrays in, arrays out;
the sentences for bad drawings are :class:`DrawingError`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from explorer.core.errors import ExplorerError
from explorer.playground import digits as pg

__all__ = [
    "BITMAP",
    "BLOCK",
    "MAX_WIDTH",
    "MIN_HEIGHT",
    "MIN_INK",
    "DrawingError",
    "Drawn",
    "Placement",
    "block_counts",
    "ink",
    "place",
    "to_bitmap",
    "to_digit",
]

BITMAP = 32  # the NIST bitmap's side
BLOCK = 4  # counted in BLOCK x BLOCK blocks -> 8 x 8 values of 0..16
MAX_WIDTH = 24  # px: the training digits' usual width (6 of the 8 block columns)
MIN_HEIGHT = 0.25  # a drawing shorter than this share of the canvas is a dot or a dash
MIN_INK = 261  # on-pixels of 1,024: the 5th percentile of the training digits' (median 313)
MAX_THICKEN = 4  # rings of pixels a thin line may gain (a 1 px line becomes 9 px wide)
_NEIGHBOURS = 5  # training digits read around a drawn one


class DrawingError(ExplorerError):
    """A canvas that holds no digit to read (empty, a dot, a dash); the message says what to do."""


@dataclass(frozen=True)
class Drawn:
    """A canvas read as a digit: ``pixels`` (8,8) float32 in [0,1] (ink = 1, counts / 16, the
    playground's input), ``counts`` (8,8) int 0..16, ``bitmap`` (32,32) bool, ``thickened``: how
    many pixel rings were added to a thin line, ``box``: the ink's (top, left, bottom, right)
    on the canvas, ``canvas``: the canvas's (height, width)."""

    pixels: np.ndarray
    counts: np.ndarray
    bitmap: np.ndarray
    thickened: int
    box: tuple[int, int, int, int]
    canvas: tuple[int, int]


def ink(canvas: np.ndarray) -> np.ndarray:
    """(H,W) grey, (H,W,3) RGB or (H,W,4) RGBA uint8 or float in [0,1] -> (H,W) float32 ink in
    [0,1]: darkness (1 - luminance) times opacity, so black paint is 1 and a white or
    transparent canvas 0."""
    a = np.asarray(canvas)
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    a = np.clip(a.astype(np.float32), 0.0, 1.0)
    if a.ndim == 2:
        return 1.0 - a
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise DrawingError(
            f"A drawing is an image (height × width × 3 or 4 channels), not an array of shape "
            f"{a.shape}."
        )
    lum = a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
    alpha = a[..., 3] if a.shape[2] == 4 else 1.0
    return ((1.0 - lum) * alpha).astype(np.float32)


def _grow(bitmap: np.ndarray) -> np.ndarray:
    """One ring of pixels more (3×3 dilation), inside the bitmap."""
    b = np.pad(bitmap, 1)
    out = np.zeros_like(bitmap)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            out |= b[dy : dy + bitmap.shape[0], dx : dx + bitmap.shape[1]]
    return out


def to_bitmap(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """(H,W) bool ink mask with some ink -> ((32,32) bool NIST-style bitmap, rings added): the
    ink's bounding box scaled to 32 px tall (width by the same factor, at most
    :data:`MAX_WIDTH`), centred, on where at least half covered; thickened while it has fewer
    than :data:`MIN_INK` on-pixels (at most :data:`MAX_THICKEN` rings)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    crop = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32)
    h, w = crop.shape
    width = int(min(MAX_WIDTH, max(1, round(w * BITMAP / h))))
    small = Image.fromarray(crop, mode="F").resize((width, BITMAP), Image.Resampling.BOX)
    bitmap = np.zeros((BITMAP, BITMAP), bool)
    left = (BITMAP - width) // 2
    bitmap[:, left : left + width] = np.asarray(small) >= 0.5
    rings = 0
    while rings < MAX_THICKEN and 0 < bitmap.sum() < MIN_INK:
        bitmap, rings = _grow(bitmap), rings + 1
    return bitmap, rings


def block_counts(bitmap: np.ndarray) -> np.ndarray:
    """(32,32) bool bitmap -> (8,8) int64 on-pixels per 4×4 block, 0..16 (optdigits' features)."""
    b = np.asarray(bitmap, bool)
    n = BITMAP // BLOCK
    return b.reshape(n, BLOCK, n, BLOCK).sum(axis=(1, 3)).astype(np.int64)


def to_digit(canvas: np.ndarray | None) -> Drawn:
    """A canvas (see :func:`ink`) -> :class:`Drawn`, or :class:`DrawingError` for an empty canvas
    or a mark too short to be a digit (under :data:`MIN_HEIGHT` of the canvas's height: a dot
    or a dash)."""
    if canvas is None:
        raise DrawingError("Draw a digit (0-9) in the box first, then press the button.")
    amount = ink(canvas)
    mask = amount >= 0.5
    if not mask.any():
        raise DrawingError(
            "The canvas is empty: draw a digit (0-9) with the mouse, as tall as most of the box."
        )
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    box = (int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1]))
    height, width = box[2] - box[0] + 1, box[3] - box[1] + 1
    canvas_h, canvas_w = mask.shape
    if height < MIN_HEIGHT * canvas_h:
        what = "a dash" if width >= MIN_HEIGHT * canvas_w else "a dot or a short stroke"
        raise DrawingError(
            f"That is {what}, not a digit yet: it is {height} px tall on a {canvas_h} px canvas. "
            "Every training digit fills its frame's height, so draw the whole digit, from near "
            "the top of the box to near the bottom."
        )
    bitmap, rings = to_bitmap(mask)
    counts = block_counts(bitmap)
    pixels = (counts / 16.0).astype(np.float32)
    return Drawn(pixels, counts, bitmap, rings, box, (canvas_h, canvas_w))


# --------------------------------------------------------------------------- in a latent space


@dataclass(frozen=True)
class Placement:
    """One model's reading of a drawn digit: ``z`` (2,) its latent (the VQ-VAE's continuous
    encoder output), ``code`` the VQ-VAE's code index (None otherwise) and ``zq`` (2,) the
    vector the decoder gets, ``decoded`` (8,8) in [0,1], ``neighbours`` the labels of the
    :data:`_NEIGHBOURS` nearest training latents (nearest first), ``nearest`` the distance to
    the nearest one and ``spacing`` the 95th percentile of the training digits' own
    nearest-neighbour distances (so ``nearest > spacing``: further from every digit than 95 %
    of the digits are from their nearest)."""

    z: np.ndarray
    zq: np.ndarray
    code: int | None
    decoded: np.ndarray
    neighbours: tuple[int, ...]
    nearest: float
    spacing: float

    @property
    def far(self) -> bool:
        return self.nearest > self.spacing


_SPACINGS: dict[tuple[str, int], float] = {}  # by (config key, model object): a few floats
_MAX_SPACINGS = 16


def _training_spacing(trained: pg.Trained, z_train: np.ndarray) -> float:
    """The 95th percentile of the training latents' leave-one-out nearest-neighbour distances
    (remembered per model)."""
    key = (trained.cfg.key(), id(trained.net))
    if key not in _SPACINGS:
        from scipy.spatial import cKDTree

        dist, _ = cKDTree(z_train).query(z_train, k=2)
        while len(_SPACINGS) >= _MAX_SPACINGS:
            _SPACINGS.pop(next(iter(_SPACINGS)))
        _SPACINGS[key] = float(np.percentile(dist[:, 1], 95))
    return _SPACINGS[key]


def place(trained: pg.Trained, pixels: np.ndarray) -> Placement:
    """A trained playground model, (8,8) or (64,) pixels in [0,1] -> :class:`Placement`."""
    x = np.asarray(pixels, np.float32).reshape(1, pg.PIXELS)
    z = pg.encode(trained, x)
    code = None
    zq = z
    if trained.cfg.model == "vq":
        zq, idx = pg.quantise(trained, z)
        code = int(idx[0])
    decoded = pg.decode(trained, zq)[0]
    z_train = pg.encode(trained)
    labels = pg.digits()[1]
    dist = np.sqrt(((z_train - z[0]) ** 2).sum(axis=1))
    order = np.argsort(dist, kind="stable")[:_NEIGHBOURS]
    return Placement(
        z=z[0],
        zq=zq[0],
        code=code,
        decoded=decoded,
        neighbours=tuple(int(labels[i]) for i in order),
        nearest=float(dist[order[0]]),
        spacing=_training_spacing(trained, z_train),
    )
