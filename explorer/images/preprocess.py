"""An image processor's resize, centre crop, rescale and normalise, batched: RGB PIL images ->
``(N, 3, h, w)`` float32 ``pixel_values`` equal, bit for bit, to what the Hugging Face PIL-backend
processor (``CLIPImageProcessorPil``, ``BitImageProcessorPil`` for DINOv2, ``ViTImageProcessorPil``)
returns for the same images.

What those processors do (``transformers.image_processing_backends.PilBackend._preprocess``), and
what :class:`Recipe` holds: resize each 8-bit image with Pillow (``size={"shortest_edge": s}``: the
shorter side to ``s``, the longer to ``int(s * long / short)``; ``{"height", "width"}``: exactly
that), with the processor's filter (bicubic for CLIP and DINOv2, bilinear for ViT; Pillow
antialiases by widening the filter when it shrinks); crop the centre (offset ``(size - crop) // 2``,
zero-padded where the crop is larger); rescale (``float64(v) * factor``, stored as float32) and
normalise (``(v - mean) / std`` in float32), per channel. The torchvision ("fast") processors
differ: they resize with ``torch``'s antialiased bicubic in floating point without Pillow's
rounding between the two passes, so their pixels differ from these by a level or so.

Two ways to the same numbers:

* :func:`pixel_values` (CPU): Pillow's resize on a bounded pool of threads (Pillow releases the
  GIL while it resamples), then the crop and one table lookup per pixel (the 256 values an 8-bit
  pixel can take, rescaled and normalised once) into one preallocated tensor;
* :func:`pack` then :func:`pixel_values_on` (a GPU): the decoded uint8 pixels, zero-padded into
  one pinned buffer (:func:`pack`, on worker threads, can run while the device works on the
  previous batch), copied to the device without blocking and resized there with
  :func:`explorer.images.resample.resize_u8` (Pillow's arithmetic, batched), cropped by the
  same matrices, then normalised on the device.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from PIL import Image

from explorer.core import pool
from explorer.images import resample

if TYPE_CHECKING:
    import torch

__all__ = ["Packed", "Recipe", "pack", "pixel_values", "pixel_values_on"]

DEVICE_MAX_SIDE = 2048
"""Images with a longer side than this (or shrunk past :data:`resample.MAX_WINDOW`) are resized
by Pillow on the CPU before :func:`pack`: the device's buffers and matrices stay small."""


@dataclass(frozen=True)
class Recipe:
    """What an image processor does to an 8-bit RGB image.

    ``shortest_edge`` or ``size`` ``(h, w)`` (at most one; neither: no resize), ``resample`` a
    ``PIL.Image.Resampling`` value, ``crop`` ``(h, w)`` or None, ``rescale`` the factor or None,
    ``mean``/``std`` three values each or None (no normalisation).
    """

    shortest_edge: int | None = None
    size: tuple[int, int] | None = None
    resample: int = int(Image.Resampling.BICUBIC)
    crop: tuple[int, int] | None = None
    rescale: float | None = 1 / 255
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.shortest_edge is not None and self.size is not None:
            raise ValueError("a recipe resizes by shortest_edge or to a size, not both")
        if self.crop is None and self.shortest_edge is not None:
            raise ValueError("a shortest-edge resize needs a crop: the outputs must share a size")
        if int(self.resample) not in resample.FILTERS:
            raise ValueError(f"unsupported resampling filter {self.resample!r}")
        if (self.mean is None) != (self.std is None):
            raise ValueError("mean and std go together")

    def resized(self, h: int, w: int) -> tuple[int, int]:
        """An ``h × w`` image's size after the resize (the processors' own arithmetic)."""
        if self.size is not None:
            return self.size
        if self.shortest_edge is None:
            return h, w
        s = self.shortest_edge
        short, long = (w, h) if w <= h else (h, w)
        new_long = int(s * long / short)
        return (new_long, s) if w <= h else (s, new_long)

    def output(self, h: int, w: int) -> tuple[int, int]:
        """The ``(h, w)`` of an ``h × w`` image's pixel values."""
        return self.crop if self.crop is not None else self.resized(h, w)

    @property
    def fixed_output(self) -> tuple[int, int] | None:
        """The output size shared by every image, or None where it depends on the image."""
        return self.crop or self.size


@functools.lru_cache(maxsize=32)
def _table(recipe: Recipe) -> np.ndarray:
    """(3, 256) float32: each 8-bit value's rescaled, normalised value per channel, computed
    with the processor's own numpy operations (so a lookup gives its numbers exactly)."""
    v = np.broadcast_to(np.arange(256, dtype=np.uint8), (3, 256))
    x = v.astype(np.float64) * recipe.rescale if recipe.rescale is not None else v
    x = np.asarray(x).astype(np.float32)
    if recipe.mean is not None:
        mean = np.array(recipe.mean, dtype=np.float32)[:, None]
        std = np.array(recipe.std, dtype=np.float32)[:, None]
        x = (x - mean) / std
    out = np.ascontiguousarray(x, np.float32)
    out.setflags(write=False)
    return out


def _crop(a: np.ndarray, crop: tuple[int, int] | None) -> np.ndarray:
    """(H, W, 3) -> the centre crop, zero-padded as ``image_transforms.center_crop`` pads."""
    if crop is None:
        return a
    ch, cw = crop
    h, w = a.shape[:2]
    top, left = (h - ch) // 2, (w - cw) // 2
    if top >= 0 and left >= 0:
        return a[top : top + ch, left : left + cw]
    out = np.zeros((ch, cw, a.shape[2]), a.dtype)
    ys, xs = max(0, -top), max(0, -left)
    src = a[max(0, top) : max(0, top) + ch - ys, max(0, left) : max(0, left) + cw - xs]
    out[ys : ys + src.shape[0], xs : xs + src.shape[1]] = src
    return out


def _resized_pil(im: Image.Image, recipe: Recipe) -> Image.Image:
    h, w = recipe.resized(im.height, im.width)
    return im.resize((w, h), int(recipe.resample)) if (h, w) != (im.height, im.width) else im


def _rgb(im: Image.Image) -> Image.Image:
    if im.mode != "RGB":
        raise ValueError(f"expected RGB images, got mode {im.mode!r}")
    return im


def pixel_values(
    images: Sequence[Image.Image], recipe: Recipe, *, threads: int | None = None
) -> torch.Tensor:
    """N RGB images -> ``(N, 3, h, w)`` float32 pixel values (the processor's, exactly), resized by
    Pillow on up to ``threads`` threads (default: the usable CPUs)."""
    import torch

    out_hw = recipe.fixed_output
    if out_hw is None:
        raise ValueError("pixel_values needs a recipe with a fixed output size (a crop or a size)")
    table = _table(recipe)
    out = torch.empty((len(images), 3, *out_hw), dtype=torch.float32)
    view = out.numpy()

    def one(item: tuple[int, Image.Image]) -> None:
        i, im = item
        a = _crop(np.asarray(_resized_pil(_rgb(im), recipe)), recipe.crop)
        for c in range(3):
            np.take(table[c], a[:, :, c], out=view[i, c], mode="clip")

    for _ in pool.imap_ordered(one, enumerate(images), threads=threads):
        pass
    return out


class Packed(NamedTuple):
    """A batch ready for the device: ``pixels`` ``(B, H, W, 3)`` uint8 (pinned where CUDA is
    available), each image at the top left of the batch's largest size (the rest is not read);
    ``sizes`` each image's ``(h, w)`` there; ``resized`` whether Pillow already resized (and
    cropped) it on the CPU; ``by``, ``bx`` the vertical and horizontal resize-and-crop weights
    (:func:`explorer.images.resample.digits`)."""

    pixels: torch.Tensor
    sizes: list[tuple[int, int]]
    resized: list[bool]
    by: resample.Digits
    bx: resample.Digits


def _device_ready(im: Image.Image, recipe: Recipe) -> tuple[np.ndarray, bool]:
    """An image as the device path takes it: its pixels, or Pillow's resize and crop of them
    where the device would need too wide a window or too big a buffer."""
    h, w = im.height, im.width
    rh, rw = recipe.resized(h, w)
    f = int(recipe.resample)
    too_big = max(h, w) > DEVICE_MAX_SIDE
    if too_big or max(resample.window(h, rh, f), resample.window(w, rw, f)) > resample.MAX_WINDOW:
        return np.ascontiguousarray(_crop(np.asarray(_resized_pil(im, recipe)), recipe.crop)), True
    return np.asarray(im), False


def pack(images: Sequence[Image.Image], recipe: Recipe, *, threads: int | None = None) -> Packed:
    """N RGB images -> a :class:`Packed` batch (the CPU's share of :func:`pixel_values_on`)."""
    import torch

    ready = list(
        pool.imap_ordered(lambda im: _device_ready(_rgb(im), recipe), images, threads=threads)
    )
    sizes = [(a.shape[0], a.shape[1]) for a, _ in ready]
    hmax, wmax = max(h for h, _ in sizes), max(w for _, w in sizes)
    # not zeroed: past each image's own size its weights are zero, so what lies there is unread
    pixels = torch.empty(
        (len(ready), hmax, wmax, 3), dtype=torch.uint8, pin_memory=torch.cuda.is_available()
    )
    view = pixels.numpy()

    def put(item: tuple[int, tuple[np.ndarray, bool]]) -> None:
        i, (a, _) = item
        view[i, : a.shape[0], : a.shape[1]] = a

    for _ in pool.imap_ordered(put, enumerate(ready), threads=threads):
        pass
    resized = [r for _, r in ready]
    by, bx = _bands(sizes, resized, recipe)
    return Packed(pixels, sizes, resized, resample.digits(by), resample.digits(bx))


def _bands(
    sizes: list[tuple[int, int]], resized: list[bool], recipe: Recipe
) -> tuple[resample.Band, resample.Band]:
    """The batch's vertical and horizontal resize-and-crop windows; identity for an image
    Pillow already resized."""
    f = int(recipe.resample)
    hs, ws, rhs, rws, chs, cws = [], [], [], [], [], []
    for (h, w), done in zip(sizes, resized, strict=True):
        rh, rw = (h, w) if done else recipe.resized(h, w)
        ch, cw = (h, w) if done else recipe.output(h, w)
        for seq, v in zip((hs, ws, rhs, rws, chs, cws), (h, w, rh, rw, ch, cw), strict=True):
            seq.append(v)
    return resample.band(hs, rhs, chs, f), resample.band(ws, rws, cws, f)


@functools.lru_cache(maxsize=32)
def _normaliser(recipe: Recipe, device: str):
    """How to normalise 0..255 float32 values on ``device`` to the table's numbers exactly: the
    processor's two float32 operations where the device reproduces the table with them (checked
    on all 256 values there), else a lookup in the table."""
    import torch

    table = torch.from_numpy(_table(recipe).copy()).to(device)
    scale = recipe.rescale

    # device tensors, not Python numbers: a CUDA division by a CPU scalar multiplies by its
    # reciprocal, which rounds differently
    divisor = torch.tensor([1 / scale if scale is not None else 1.0], device=device)
    mean = torch.tensor(recipe.mean or (0.0,) * 3, dtype=torch.float32, device=device)
    std = torch.tensor(recipe.std or (1.0,) * 3, dtype=torch.float32, device=device)

    def arithmetic(v: torch.Tensor) -> torch.Tensor:  # (B, 3, h, w) values 0..255
        x = v / divisor if scale is not None else v
        if recipe.mean is not None:
            x = (x - mean[:, None, None]) / std[:, None, None]
        return x

    probe = torch.arange(256, dtype=torch.float32, device=device).expand(1, 3, 1, 256)
    if torch.equal(arithmetic(probe)[0, :, 0], table):
        return arithmetic

    def lookup(v: torch.Tensor) -> torch.Tensor:
        offsets = torch.arange(3, device=v.device).view(1, 3, 1, 1) * 256
        return table.flatten()[v.long() + offsets]

    return lookup


def pixel_values_on(
    packed: Packed, recipe: Recipe, device: torch.device | str, dtype: torch.dtype
) -> torch.Tensor:
    """A :class:`Packed` batch -> ``(B, 3, h, w)`` pixel values in ``dtype`` on ``device``: the
    processor's float32 numbers (exactly), then cast. The copy to the device does not block."""
    import torch

    device = torch.device(device)
    out_hw = recipe.fixed_output
    if out_hw is None:
        raise ValueError("pixel_values_on needs a recipe with a fixed output size")
    x = packed.pixels.to(device, non_blocking=True).permute(0, 3, 1, 2)
    v = resample.resize_u8(x, packed.by, packed.bx)  # (B, 3, h, w), 0..255
    return _normaliser(recipe, str(device))(v).to(dtype)
