"""Pictures made for display: the error heatmap, side-by-side strips and GIFs.

PIL images in, PIL images (or a GIF file, written atomically) out. Loading and checking what a
user uploads is :mod:`explorer.images.io`'s job.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from explorer.core import files
from explorer.images.io import to_numpy_hwc, to_rgb

__all__ = [
    "INFERNO_LUT",
    "captioned",
    "code_map_image",
    "code_palette",
    "error_heatmap",
    "error_scale",
    "hstack",
    "save_gif",
    "with_colour_bar",
]


# matplotlib's "inferno" sampled at 10 evenly spaced points (the same list as plotly's
# plotly.colors.sequential.Inferno); interpolated linearly to a 256-entry LUT below.
_INFERNO_ANCHORS = (
    "#000004",
    "#1b0c41",
    "#4a0c6b",
    "#781c6d",
    "#a52c60",
    "#cf4446",
    "#ed6925",
    "#fb9b06",
    "#f7d13d",
    "#fcffa4",
)


def _inferno_lut() -> np.ndarray:
    anchors = np.array(
        [[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in _INFERNO_ANCHORS], dtype=np.float64
    )
    xp = np.linspace(0.0, 1.0, len(anchors))
    x = np.linspace(0.0, 1.0, 256)
    lut = np.stack([np.interp(x, xp, anchors[:, ch]) for ch in range(3)], axis=1)
    return np.rint(lut).astype(np.uint8)


INFERNO_LUT: np.ndarray = _inferno_lut()
"""(256, 3) uint8 inferno-like colormap; row 0 is the colour of zero error."""


def code_palette(size: int) -> np.ndarray:
    """Codebook size K -> (K, 3) uint8 colours, one per code index, the same for a given index
    whatever K: hues step by the golden ratio and brightness cycles over three levels, so
    neighbouring indices differ."""
    i = np.arange(int(size), dtype=np.float64)
    h = (i * 0.6180339887498949) % 1.0 * 6.0
    s = np.where((i // 3) % 2 == 0, 0.75, 0.5)
    v = np.array([0.95, 0.75, 0.55])[(i % 3).astype(int)]
    c = v * s
    x = c * (1 - np.abs(h % 2 - 1))
    sector = h.astype(int) % 6
    zero = np.zeros_like(c)
    rgb = np.select(
        [sector[:, None] == k for k in range(6)],
        [
            np.stack(t, axis=1)
            for t in (
                (c, x, zero),
                (x, c, zero),
                (zero, c, x),
                (zero, x, c),
                (x, zero, c),
                (c, zero, x),
            )
        ],
    )
    return np.rint((rgb + (v - c)[:, None]) * 255).astype(np.uint8)


def code_map_image(indices: np.ndarray, size: int, scale: int = 1) -> Image.Image:
    """(h,w) int code indices in [0, size) -> RGB image (w·scale × h·scale) in the colours of
    :func:`code_palette`, each latent pixel a ``scale``-pixel square."""
    idx = np.asarray(indices)
    rgb = code_palette(size)[idx]
    return Image.fromarray(rgb, "RGB").resize(
        (idx.shape[1] * int(scale), idx.shape[0] * int(scale)), Image.NEAREST
    )


def _abs_error(a: Image.Image, b: Image.Image) -> np.ndarray:
    if a.size != b.size:
        raise ValueError(f"images must have the same size, got {a.size} and {b.size}")
    return np.abs(to_numpy_hwc(a) - to_numpy_hwc(b)).mean(axis=2)


def _auto_vmax(err: np.ndarray) -> float:
    vmax = float(np.percentile(err, 99)) if err.size else 0.0
    if not vmax > 1e-12:
        vmax = float(err.max()) if err.size and err.max() > 1e-12 else 1.0
    return vmax


def error_scale(a: Image.Image, b: Image.Image) -> float:
    """Two same-size images -> the mean |a - b| over RGB (pixels in [0, 1]) that
    :func:`error_heatmap` draws brightest by default: its 99th percentile (or the maximum, or 1
    for identical images)."""
    return _auto_vmax(_abs_error(a, b))


def with_colour_bar(heatmap: Image.Image, vmax: float, what: str = "error") -> Image.Image:
    """An :func:`error_heatmap` picture, vmax in [0, 1] pixel units -> the same picture with a
    horizontal inferno bar under it, labelled in 8-bit levels: ``0`` at the left, ``vmax·255``
    at the right ("mean |error| per pixel, of 255")."""
    from PIL import ImageDraw, ImageFont

    w, h = heatmap.size
    bar_h, text_h = max(8, h // 40), max(14, h // 22)
    out = Image.new("RGB", (w, h + bar_h + text_h + 6), (255, 255, 255))
    out.paste(heatmap.convert("RGB"), (0, 0))
    ramp = INFERNO_LUT[np.linspace(0, 255, w).round().astype(np.intp)]
    out.paste(Image.fromarray(np.repeat(ramp[None], bar_h, axis=0), "RGB"), (0, h + 2))
    draw = ImageDraw.Draw(out)
    try:
        font = ImageFont.load_default(size=max(10, text_h - 3))
    except TypeError:  # Pillow before 10.1: one size only
        font = ImageFont.load_default()
    levels = vmax * 255
    right = f"{levels:.1f}/255 or more" if levels < 9.95 else f"{levels:.0f}/255 or more"
    y = h + bar_h + 3
    draw.text((2, y), "0", fill=(40, 40, 40), font=font)
    label = f"mean |{what}| per pixel"
    lw = draw.textlength(label, font=font)
    draw.text(((w - lw) / 2, y), label, fill=(40, 40, 40), font=font)
    rw = draw.textlength(right, font=font)
    draw.text((w - rw - 2, y), right, fill=(40, 40, 40), font=font)
    return out


def error_heatmap(a: Image.Image, b: Image.Image, vmax: float | None = None) -> Image.Image:
    """Two same-size images -> RGB heatmap of mean |a - b| over RGB (values in [0, 1]).

    The error is divided by ``vmax`` (default: its 99th percentile, or 1 where that is 0, so
    identical images give a uniform colormap-minimum image), clipped to [0, 1] and mapped
    through :data:`INFERNO_LUT` (dark = no error, bright yellow = ``vmax`` or more).

    Raises:
        ValueError: the images differ in size, or ``vmax`` is not positive.
    """
    err = _abs_error(a, b)
    if vmax is None:
        vmax = _auto_vmax(err)
    elif not (np.isfinite(vmax) and vmax > 0):
        raise ValueError(f"vmax must be a positive number, got {vmax!r}")
    idx = np.rint(np.clip(err / vmax, 0.0, 1.0) * 255.0).astype(np.intp)
    return Image.fromarray(INFERNO_LUT[idx], mode="RGB")


def captioned(image: Image.Image, text: str) -> Image.Image:
    """An image with a line of ``text`` above it, on white (the caption's height ~8 % of the
    image's, at least 16 px)."""
    from PIL import ImageDraw, ImageFont

    w, h = image.size
    th = max(16, h // 12)
    out = Image.new("RGB", (w, h + th + 4), (255, 255, 255))
    out.paste(image.convert("RGB"), (0, th + 4))
    draw = ImageDraw.Draw(out)
    try:
        font = ImageFont.load_default(size=th - 2)
    except TypeError:  # Pillow before 10.1: one size only
        font = ImageFont.load_default()
    tw = draw.textlength(text, font=font)
    draw.text(((w - tw) / 2, 1), text, fill=(30, 30, 30), font=font)
    return out


def hstack(
    images: Sequence[Image.Image],
    gap: int = 4,
    background: tuple[int, int, int] = (255, 255, 255),
) -> Image.Image:
    """Images side by side -> one RGB strip, each resized (aspect kept) to the first's height.

    Raises:
        ValueError: no images, or a negative ``gap``.
    """
    if not images:
        raise ValueError("hstack() needs at least one image")
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    height = images[0].height
    tiles = []
    for im in images:
        rgb = im if im.mode == "RGB" else to_rgb(im)
        if rgb.height != height:
            width = max(1, round(rgb.width * height / rgb.height))
            rgb = rgb.resize((width, height), Image.Resampling.LANCZOS)
        tiles.append(rgb)
    total = sum(t.width for t in tiles) + gap * (len(tiles) - 1)
    strip = Image.new("RGB", (total, height), tuple(background))
    x = 0
    for t in tiles:
        strip.paste(t, (x, 0))
        x += t.width + gap
    return strip


def save_gif(
    frames: Sequence[Image.Image],
    path: str | os.PathLike[str],
    fps: float = 8.0,
    boomerang: bool = True,
) -> Path:
    """Same-size frames -> looping (``loop=0``) animated GIF at ``path``; returns the path.

    ``boomerang`` appends the frames in reverse without repeating the two ends
    (a, b, c -> a, b, c, b). The file is written atomically (temp file + rename) and parent
    folders are created. Note that Pillow merges consecutive identical frames into one
    longer frame, so ``n_frames`` of the result can be smaller than the number given.

    Raises:
        ValueError: no frames, frames of different sizes, or ``fps`` not positive.
    """
    seq = list(frames)
    if not seq:
        raise ValueError("save_gif() needs at least one frame")
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps!r}")
    if len({f.size for f in seq}) != 1:
        raise ValueError(f"all frames must have the same size, got {sorted({f.size for f in seq})}")
    if boomerang:
        seq = seq + seq[-2:0:-1]
    seq = [f if f.mode == "RGB" else to_rgb(f) for f in seq]
    out = Path(path)
    duration_ms = max(20, round(1000.0 / fps))  # browsers clamp faster GIF frames anyway
    files.atomic_write(
        out,
        lambda fh: seq[0].save(
            fh,
            format="GIF",
            save_all=True,
            append_images=seq[1:],
            duration=duration_ms,
            loop=0,
            disposal=1,
        ),
    )
    return out
