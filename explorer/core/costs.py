"""What work costs, in estimated CPU-seconds (one core busy for one second), before it runs:
numbers in, one number out. Public mode charges these to the visitor who asks
(:func:`explorer.core.public.price`).

The figures are BENCHMARKS.md's, measured on the team's 2-core machine (torch using both cores,
so a wall-clock second there is two CPU-seconds): ``bench/vae_speed.py`` (a 512² TAESD/TAEF2
encode 0.85 s, decode 0.9 s; the SD VAE 4.8 s / 10.4 s), ``bench/atlas_scale.py`` (per image:
TAEF2 VAE at 64 px 13 ms, CLIP ViT-B/32 70 ms, DINOv2-small 85 ms; UMAP of 1,000 points about
1 s a space), ``python -m bench.playground`` (the three digit autoencoders, 150 epochs: 12.9 CPU-s), and
a decode measurement (1,000 solid 16 MP PNGs: about 420 CPU-s). A model registered in
code states its own figure in its spec (``cpu_seconds_per_megapixel``, ``cpu_seconds_per_image``);
these are the fallbacks by kind. They are estimates for pricing, not promises of speed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = [
    "DECODE_S_PER_MEGAPIXEL",
    "EMBEDDER_S_PER_IMAGE",
    "PLAYGROUND_S_PER_EPOCH",
    "PROJECT_S_PER_POINT",
    "VAE_S_PER_MEGAPIXEL",
    "atlas_cost",
    "decode_cost",
    "vae_cost",
]

WALL_TO_CPU = 2.0  # the benchmarks ran torch on both cores of the 2-core machine

DECODE_S_PER_MEGAPIXEL = 420.0 / 16_000.0
"""Decoding (and downsizing) an image, per decoded megapixel."""

_TINY = (0.85 * WALL_TO_CPU / 0.262, 0.90 * WALL_TO_CPU / 0.262)  # TAESD / TAEF2 at 512²
_FULL = (4.83 * WALL_TO_CPU / 0.262, 10.35 * WALL_TO_CPU / 0.262)  # the SD VAE at 512²
VAE_S_PER_MEGAPIXEL = {"tiny": _TINY, "taesd-local": _TINY, "kl": _FULL, "vq": _FULL}
"""(encode, decode) CPU-seconds per input megapixel, by the VAE spec's kind."""

EMBEDDER_S_PER_IMAGE = {
    "clip": 0.070 * WALL_TO_CPU,  # ViT-B/32 at 224 px
    "dino": 0.085 * WALL_TO_CPU,  # DINOv2-small at 224 px
    "vit": 0.30 * WALL_TO_CPU,  # ViT-B/16 at 224 px: about 4x B/32's tokens
}
"""One image through an image embedder, by family."""

UNET_DEFAULT_S_PER_IMAGE = 10.0 * WALL_TO_CPU

PROJECT_S_PER_POINT = 1.0 * WALL_TO_CPU / 1000
"""UMAP (and the metrics beside it) per point and space."""

PLAYGROUND_S_PER_EPOCH = 12.9 / 150
"""Training the three digit autoencoders (AE, VAE, VQ-VAE), per epoch, together."""

FLOOR_S = 0.01  # the least a request that runs a model is charged


def _finite(x: float, what: str) -> float:
    x = float(x)
    if not (math.isfinite(x) and x >= 0):
        raise ValueError(f"{what} must be a finite number of at least 0, not {x!r}")
    return x


def decode_cost(megapixels: float) -> float:
    """Decoded megapixels -> CPU-seconds to decode and downsize them."""
    return _finite(megapixels, "megapixels") * DECODE_S_PER_MEGAPIXEL


def vae_cost(
    kind: str,
    megapixels: float,
    *,
    encodes: float = 1.0,
    decodes: float = 1.0,
    per_mp: float | None = None,
) -> float:
    """``encodes`` encodes and ``decodes`` decodes of ``megapixels`` through a VAE of ``kind``
    -> CPU-seconds. ``per_mp``: the spec's own figure for one encode plus one decode (split
    between them as the kind's figures are)."""
    enc, dec = VAE_S_PER_MEGAPIXEL.get(kind, _FULL)
    if per_mp is not None:
        share = enc / (enc + dec)
        enc, dec = per_mp * share, per_mp * (1 - share)
    mp = _finite(megapixels, "megapixels")
    return max(
        FLOOR_S, mp * (enc * _finite(encodes, "encodes") + dec * _finite(decodes, "decodes"))
    )


def atlas_cost(per_image: Iterable[tuple[float, int]], *, points: int, spaces: int) -> float:
    """``(CPU-seconds per image, images to embed)`` for each space, the set's ``points`` and
    how many ``spaces`` are projected -> CPU-seconds for embedding and projecting the set."""
    embed = sum(_finite(s, "seconds") * max(0, int(n)) for s, n in per_image)
    return embed + PROJECT_S_PER_POINT * max(0, int(points)) * max(0, int(spaces))
