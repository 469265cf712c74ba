"""The TAESD-family architecture (taesd, taesdxl, taesd3, taef1, taef2), as in Ollin Boer Bohan's
``taesd.py``: ``Encoder`` and ``Decoder`` build ``nn.Sequential`` stacks whose indices are the
checkpoints' keys, so the original ``*_encoder.pth`` / ``*_decoder.pth`` files load strictly::

    Encoder: 0 conv(3→W)  1 block  2 conv/2  3-5 blocks  6 conv/2  7-9 blocks
             10 conv/2  11-13 blocks (TAEF2: with pool branch)  14 conv(W→C)
    Decoder: 0 clamp tanh(x/3)·3  1 conv(C→W)  2 ReLU  3-5 blocks (TAEF2: pool branch)
             6 upsample×2  7 conv  8-10 blocks  11 upsample×2  12 conv  13-15 blocks
             16 upsample×2  17 conv  18 block  19 conv(W→3)

Images are RGB in [0, 1] (not diffusers' [-1, 1]); latents are raw, roughly [-3, 3]. Reading
checkpoint files and telling the variants apart lives in :mod:`explorer.models.checkpoints`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Block", "Clamp", "Decoder", "Encoder", "TAEVariant", "TinyAutoencoder"]

POOL_GROUPS = 4  # GroupNorm groups in TAEF2's pool branch
_FAMILY_HINTS: dict[tuple[int, bool], str] = {
    (4, False): "TAESD/TAESDXL-like",
    (16, False): "TAESD3/TAEF1-like",
    (32, True): "TAEF2-like",
}


def conv(n_in: int, n_out: int, **kwargs) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class Clamp(nn.Module):
    """Soft clamp of the latents into (-3, 3): tanh(x/3)·3."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    """ReLU(conv(x) + x), conv = conv–ReLU–conv–ReLU–conv. With ``pool_width`` (TAEF2) it first
    adds ``pool(x)``: 1×1 conv W→P, GroupNorm(4, P), ReLU, 1×1 conv P→W (no biases)."""

    def __init__(self, width: int, pool_width: int | None = None) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            conv(width, width), nn.ReLU(), conv(width, width), nn.ReLU(), conv(width, width)
        )
        self.skip = nn.Identity()  # TAESD's 1x1 skip conv only where widths differ: never here
        self.fuse = nn.ReLU()
        self.pool = None
        if pool_width is not None:
            self.pool = nn.Sequential(
                nn.Conv2d(width, pool_width, 1, bias=False),
                nn.GroupNorm(POOL_GROUPS, pool_width),
                nn.ReLU(),
                nn.Conv2d(pool_width, width, 1, bias=False),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + self.skip(x))


def Encoder(latent_channels: int = 4, width: int = 64, pool_width: int | None = None):
    """(N, 3, H, W) RGB in [0, 1] -> (N, C, H/8, W/8) raw latents."""
    low = {"pool_width": pool_width}  # the lowest resolution's blocks carry TAEF2's pool branch
    return nn.Sequential(
        conv(3, width), Block(width),
        conv(width, width, stride=2, bias=False), Block(width), Block(width), Block(width),
        conv(width, width, stride=2, bias=False), Block(width), Block(width), Block(width),
        conv(width, width, stride=2, bias=False),
        Block(width, **low), Block(width, **low), Block(width, **low),
        conv(width, latent_channels),
    )  # fmt: skip


def Decoder(latent_channels: int = 4, width: int = 64, pool_width: int | None = None):
    """(N, C, h, w) raw latents -> (N, 3, 8h, 8w) RGB, roughly [0, 1] (not clamped)."""
    low = {"pool_width": pool_width}
    return nn.Sequential(
        Clamp(), conv(latent_channels, width), nn.ReLU(),
        Block(width, **low), Block(width, **low), Block(width, **low),
        nn.Upsample(scale_factor=2), conv(width, width, bias=False),
        Block(width), Block(width), Block(width),
        nn.Upsample(scale_factor=2), conv(width, width, bias=False),
        Block(width), Block(width), Block(width),
        nn.Upsample(scale_factor=2), conv(width, width, bias=False),
        Block(width), conv(width, 3),
    )  # fmt: skip


@dataclass(frozen=True)
class TAEVariant:
    """One TAESD-family architecture: ``latent_channels`` C; ``pool`` when the lowest-resolution
    blocks carry TAEF2's pool branch, ``pool_width`` wide (256 in TAEF2); block ``width`` (64 in
    every released checkpoint)."""

    latent_channels: int
    pool: bool
    width: int = 64
    pool_width: int = 256

    def describe(self) -> str:
        """E.g. "TAESD-family, 32 latent channels, with pool branch (TAEF2-like)"; the name in
        parentheses is a guess from the channel count."""
        parts = [f"TAESD-family, {self.latent_channels} latent channels"]
        if self.pool:
            parts.append("with pool branch")
        if self.width != 64:
            parts.append(f"{self.width}-wide blocks")
        hint = _FAMILY_HINTS.get((self.latent_channels, self.pool))
        return ", ".join(parts) + (f" ({hint})" if hint else "")


class TinyAutoencoder(nn.Module):
    """RGB (N, 3, H, W) in [0, 1] <-> raw latents (N, C, H/8, W/8): an encoder and a decoder."""

    downscale: int = 8

    def __init__(self, variant: TAEVariant) -> None:
        super().__init__()
        self.variant = variant
        pool_width = variant.pool_width if variant.pool else None
        self.encoder = Encoder(variant.latent_channels, variant.width, pool_width)
        self.decoder = Decoder(variant.latent_channels, variant.width, pool_width)

    def _param(self) -> torch.Tensor:
        return next(self.parameters())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB in [0, 1], H and W multiples of 8 -> (N, C, H/8, W/8) raw latents, in
        the model's device and dtype."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(
                f"encode expects an (N, 3, H, W) RGB batch, got shape {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        if h % self.downscale or w % self.downscale:
            raise ValueError(
                f"encode expects H and W to be multiples of {self.downscale}, got {h}x{w}; "
                "pad or resize the image first"
            )
        p = self._param()
        return self.encoder(x.to(device=p.device, dtype=p.dtype))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) raw latents -> (N, 3, 8h, 8w) RGB clamped to [0, 1] (the decoder's soft
        clamp of the latents comes first)."""
        c = self.variant.latent_channels
        if z.ndim != 4 or z.shape[1] != c:
            raise ValueError(
                f"decode expects an (N, {c}, h, w) latent batch, got shape {tuple(z.shape)}"
            )
        p = self._param()
        return self.decoder(z.to(device=p.device, dtype=p.dtype)).clamp(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB in [0, 1] -> its reconstruction in [0, 1]."""
        return self.decode(self.encode(x))
