"""list of N PIL images -> (N,D) float32 features of three weight-free control spaces: what the
images' pixels, palette and edges give with no model at all. Deterministic, no download.

* ``pixels``: the image resized to 16×16 RGB with Pillow's BOX filter (each output pixel the
  mean of the input pixels it covers; the whole image, no crop, so a non-square image is
  squeezed), flattened row by row as (y, x, channel): 768 values in [0,1].
* ``colour``: a joint HSV histogram, 8 hue × 4 saturation × 4 value bins (equal-width bins of
  Pillow's 0–255 HSV channels), of the image reduced (BOX) to fit within 128×128, normalised to
  sum 1: 128 values in [0,1]. Blind to where the colours are.
* ``texture``: scikit-image HOG of the greyscale image (Pillow's "L": 0.299 R + 0.587 G +
  0.114 B) resized to 128×128 (BILINEAR, antialiased when shrinking) and scaled to [0,1]:
  9 unsigned orientations, 16×16-pixel cells, 2×2-cell blocks, L2-Hys block normalisation:
  7·7·2·2·9 = 1764 values in [0,1]. Blind to hue; flat regions give zeros.

Images with transparency are composited on white first; other modes are converted to RGB.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from PIL import Image
from skimage.feature import hog

__all__ = ["BASELINES", "MODELS", "Baseline", "baseline_features"]

PIXELS_SIDE = 16
COLOUR_BINS = (8, 4, 4)  # hue, saturation, value
COLOUR_SIDE = 128
TEXTURE_SIDE = 128
HOG = {
    "orientations": 9,
    "pixels_per_cell": (16, 16),
    "cells_per_block": (2, 2),
    "block_norm": "L2-Hys",
}


class Baseline(NamedTuple):
    """A control space: the UI's description, its width and a version for cache keys."""

    description: str
    dims: int
    version: str


def _hog_dims() -> int:
    cells = TEXTURE_SIDE // HOG["pixels_per_cell"][0]
    blocks = cells - HOG["cells_per_block"][0] + 1
    return blocks * blocks * HOG["cells_per_block"][0] * HOG["cells_per_block"][1] * 9


BASELINES: dict[str, Baseline] = {
    "pixels": Baseline(
        f"Pixels (control): each image shrunk to {PIXELS_SIDE}×{PIXELS_SIDE} colour pixels; "
        "what raw pixels alone give",
        PIXELS_SIDE * PIXELS_SIDE * 3,
        f"pixels-1:{PIXELS_SIDE}x{PIXELS_SIDE}-rgb-box",
    ),
    "colour": Baseline(
        "Colour (control): a histogram of hue, saturation and brightness that ignores where "
        "the colours are; what the palette alone gives",
        int(np.prod(COLOUR_BINS)),
        f"colour-1:hsv{'x'.join(map(str, COLOUR_BINS))}-fit{COLOUR_SIDE}-box",
    ),
    "texture": Baseline(
        f"Texture (control): edge directions (HOG) on a {TEXTURE_SIDE}×{TEXTURE_SIDE} greyscale "
        "image, blind to colour; what edges and texture alone give",
        _hog_dims(),
        f"texture-1:hog-L{TEXTURE_SIDE}-bilinear-o9-c16-b2-l2hys",
    ),
}
"""Name -> :class:`Baseline`, in the order the UI lists them."""

MODELS: dict[str, str] = {
    "pixels": f"{PIXELS_SIDE}x{PIXELS_SIDE}-rgb",
    "colour": f"hsv-{'x'.join(map(str, COLOUR_BINS))}",
    "texture": f"hog-{TEXTURE_SIDE}px",
}
"""Name -> the short model name a space ref carries (``pixels:16x16-rgb``): what it computes."""


def _rgb(im: Image.Image) -> Image.Image:
    """Any PIL image -> RGB; transparency composited on white."""
    if im.mode == "RGB":
        return im
    if "A" in im.getbands() or "transparency" in im.info or im.mode in ("RGBa", "La"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def _fit(im: Image.Image, side: int) -> Image.Image:
    """Shrink (BOX) to fit within side×side keeping the aspect ratio; smaller images as they are."""
    w, h = im.size
    scale = side / max(w, h)
    if scale >= 1:
        return im
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return im.resize(size, Image.Resampling.BOX)


def _pixels(im: Image.Image) -> np.ndarray:
    small = im.resize((PIXELS_SIDE, PIXELS_SIDE), Image.Resampling.BOX)
    return np.asarray(small, np.float32).reshape(-1) / 255.0


def _colour(im: Image.Image) -> np.ndarray:
    hsv = np.asarray(_fit(im, COLOUR_SIDE).convert("HSV"), np.int64).reshape(-1, 3)
    bh, bs, bv = COLOUR_BINS
    index = (
        (hsv[:, 0] * bh // 256) * (bs * bv) + (hsv[:, 1] * bs // 256) * bv + hsv[:, 2] * bv // 256
    )
    counts = np.bincount(index, minlength=bh * bs * bv).astype(np.float64)
    return (counts / counts.sum()).astype(np.float32)


def _texture(im: Image.Image) -> np.ndarray:
    grey = im.convert("L").resize((TEXTURE_SIDE, TEXTURE_SIDE), Image.Resampling.BILINEAR)
    return hog(np.asarray(grey, np.float32) / 255.0, **HOG).astype(np.float32)


_FEATURES: dict[str, Callable[[Image.Image], np.ndarray]] = {
    "pixels": _pixels,
    "colour": _colour,
    "texture": _texture,
}


def baseline_features(name: str, images: Sequence[Image.Image]) -> np.ndarray:
    """Baseline ``name`` of :data:`BASELINES`, N PIL images -> (N, dims) float32 features (ranges
    in the module docstring). Raises ValueError for an unknown name (listing the valid ones) or
    an item that is not a PIL image."""
    if not isinstance(name, str) or name not in _FEATURES:
        raise ValueError(f"Unknown baseline space {name!r}; choose one of {', '.join(BASELINES)}.")
    out = np.empty((len(images), BASELINES[name].dims), np.float32)
    feature = _FEATURES[name]
    for i, im in enumerate(images):
        if not isinstance(im, Image.Image):
            raise ValueError(f"Item {i} is not an image ({type(im).__name__}).")
        out[i] = feature(_rgb(im))
    return out
