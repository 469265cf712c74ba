"""Encoding and decoding in tiles, used when a whole image runs out of memory (or when asked to).

``tile`` is always a side in latent pixels (an image tile is ``tile * downscale`` pixels);
neighbouring tiles overlap by at least a quarter of a tile and are blended. KL VAEs use diffusers'
own tiling, where GroupNorm and attention see one tile at a time, so the result is only close to
the untiled one. TAESD-family models tile only their full-resolution layers and run the
latent-resolution ones (TAEF2's GroupNorm included) on the whole latent: within ~0.01 of the
untiled result (see tests/test_faults.py).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import nn

from explorer.core.errors import ExplorerError
from explorer.models.device import free_cuda_memory, is_out_of_memory

__all__ = [
    "MIN_TILE_LATENT",
    "TILE_LATENT",
    "diffusers_tiling",
    "run_with_tiling",
    "tile_for",
    "tiny_tiled_decode",
    "tiny_tiled_encode",
]

TILE_LATENT = 64  # largest automatic tile side, latent pixels (512 image pixels at /8)
MIN_TILE_LATENT = 8  # below this an out-of-memory error is reported instead of retried
_log = logging.getLogger(__name__)
T = TypeVar("T")


def tile_for(h: int, w: int, tile: int | None) -> int:
    """The tile side (latent pixels) for an (h, w) latent: ``tile`` if given, else about half the
    longer side, at most :data:`TILE_LATENT`; a multiple of 4, at least 4."""
    if tile is None:
        tile = min(TILE_LATENT, max(MIN_TILE_LATENT, -(-max(h, w) // 2)))
    return max(4, int(tile) // 4 * 4)


def run_with_tiling(
    run: Callable[[int | None], T],
    latent_hw: tuple[int, int],
    tiled: bool | None,
    tile: int | None,
    what: str,
    model: str,
    downscale: int,
) -> T:
    """``run(None)`` (whole) or ``run(tile)``, for ``what`` (e.g. "decoding") with ``model``.

    ``tiled`` True: in tiles; False: never in tiles; None: whole, and on out-of-memory in tiles,
    halving the tile on each further out-of-memory down to :data:`MIN_TILE_LATENT` (then an
    :class:`ExplorerError`). An out-of-memory error that tiling would not help (the latent fits
    in one tile, or ``tiled`` is False) propagates, for the caller to batch smaller.
    """
    h, w = latent_hw
    first = tile_for(h, w, tile)
    if not tiled:
        try:
            return run(None)
        except Exception as exc:
            if tiled is False or not is_out_of_memory(exc) or max(h, w) <= first:
                raise
            _log.warning("out of memory while %s %dx%d latents: retrying in tiles", what, h, w)
        free_cuda_memory()  # outside the except block: the failed pass's tensors are gone
    size = first
    while True:
        try:
            return run(size)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            if size <= MIN_TILE_LATENT or tile is not None:
                raise ExplorerError(
                    f"Out of memory while {what} with {model}, even in tiles of "
                    f"{size * downscale} px: pick a smaller resolution or model, or free some "
                    "GPU memory."
                ) from exc
            size = max(MIN_TILE_LATENT, size // 2 // 4 * 4)
            _log.warning(
                "out of memory while %s in tiles: retrying with %d-pixel tiles",
                what,
                size * downscale,
            )
        free_cuda_memory()


# --------------------------------------------------------------------------- blending


def _ramp(n: int, fade: int, start: bool, end: bool) -> torch.Tensor:
    """(n,) weights: 1, fading linearly towards 0 over ``fade`` samples at a shared edge."""
    w = torch.ones(n)
    fade = min(fade, n)
    if fade > 0:
        up = (torch.arange(fade, dtype=torch.float32) + 0.5) / fade
        if start:
            w[:fade] = torch.minimum(w[:fade], up)
        if end:
            w[n - fade :] = torch.minimum(w[n - fade :], up.flip(0))
    return w


def _tile_starts(size: int, tile: int, overlap: int, align: int) -> list[int]:
    """Starts of the fewest ``tile``-long windows that cover ``size`` with at least
    ``overlap`` between neighbours, spread evenly, on multiples of ``align``."""
    if size <= tile:
        return [0]
    n = -(-(size - overlap) // max(1, tile - overlap))
    while True:
        starts = [round(k * (size - tile) / (n - 1) / align) * align for k in range(n)]
        if all(b - a <= tile - overlap for a, b in itertools.pairwise(starts)):
            return starts
        n += 1  # rounding to ``align`` left a gap too wide: one more window


def _blend_tiles(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int,
    overlap: int,
    scale: float,
) -> torch.Tensor:
    """``fn`` over overlapping ``tile``-square tiles of ``x`` (N,C,H,W), whose outputs are
    ``scale`` times the input size; blended with linear ramps over the overlaps and
    normalised, so that every output pixel is a weighted mean of the tiles covering it.

    With ``scale`` 1/k, ``tile``, ``overlap`` and the input size must be multiples of k.
    Returns float32 on ``x``'s device.
    """
    _, _, h, w = x.shape
    align = max(1, round(1 / scale))  # encoding: starts on whole latent pixels
    fade = max(1, round(overlap * scale))
    out = weight = None
    rows, cols = _tile_starts(h, tile, overlap, align), _tile_starts(w, tile, overlap, align)
    for i in rows:
        for j in cols:
            y = fn(x[..., i : i + tile, j : j + tile]).float()
            if out is None:
                shape = (y.shape[0], y.shape[1], round(h * scale), round(w * scale))
                out = y.new_zeros(shape)
                weight = y.new_zeros((1, 1, shape[2], shape[3]))
            th, tw = y.shape[-2:]
            oi, oj = round(i * scale), round(j * scale)
            mask = _ramp(th, fade, i > 0, i + tile < h)[:, None] * _ramp(
                tw, fade, j > 0, j + tile < w
            )
            mask = mask.to(y.device)
            out[..., oi : oi + th, oj : oj + tw] += y * mask
            weight[..., oi : oi + th, oj : oj + tw] += mask
    return out / weight


# --------------------------------------------------------------------------- TAESD family


def tiny_tiled_encode(encoder: nn.Sequential, x: torch.Tensor, tile: int, ds: int) -> torch.Tensor:
    """(1,3,H,W) in [0,1] -> raw latents through a TAESD-family ``encoder``: the full-resolution
    layers in blended tiles of ``tile * ds`` px, the latent-resolution layers after the last
    downsampling (TAEF2's GroupNorm among them) on the whole latent, so their statistics stay
    global."""
    strided = [i for i, m in enumerate(encoder) if getattr(m, "stride", (1,))[0] > 1]
    k = strided[-1] + 1 if strided else len(encoder)
    h = _blend_tiles(encoder[:k], x, tile * ds, tile // 4 * ds, 1 / ds)
    return encoder[k:](h.to(x.dtype))


def tiny_tiled_decode(decoder: nn.Sequential, z: torch.Tensor, tile: int, ds: int) -> torch.Tensor:
    """(1,C,h,w) raw latents -> image in [0,1] through a TAESD-family ``decoder``: the
    latent-resolution layers before the first upsampling (soft clamp, TAEF2's GroupNorm) on the
    whole latent, the rest in blended ``tile``-latent-pixel tiles."""
    ups = [i for i, m in enumerate(decoder) if isinstance(m, nn.Upsample)]
    k = ups[0] if ups else 0
    h = decoder[:k](z)
    return _blend_tiles(decoder[k:], h, tile, tile // 4, ds).clamp(0, 1)


# --------------------------------------------------------------------------- diffusers KL


class diffusers_tiling:
    """Context: a diffusers AutoencoderKL tiles with ``tile`` latent pixels (a quarter of
    overlap, its own blending), then gets its settings back. Hold the VAE's lock."""

    _FIELDS = ("use_tiling", "tile_sample_min_size", "tile_latent_min_size", "tile_overlap_factor")

    def __init__(self, module: nn.Module, tile: int, downscale: int):
        self.module, self.tile, self.downscale = module, tile, downscale

    def __enter__(self) -> nn.Module:
        m = self.module
        self.saved = tuple(getattr(m, f) for f in self._FIELDS)
        m.use_tiling, m.tile_overlap_factor = True, 0.25
        m.tile_latent_min_size = self.tile
        m.tile_sample_min_size = self.tile * self.downscale
        return m

    def __exit__(self, *exc) -> None:
        for f, value in zip(self._FIELDS, self.saved, strict=True):
            setattr(self.module, f, value)
