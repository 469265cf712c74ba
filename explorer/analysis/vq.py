"""Vector quantisation, as arrays: nearest codebook entries, quantised latents, codebook usage.

A VQ autoencoder's decoder does not see its encoder's continuous latent: each latent pixel (a
C-vector) is first replaced by the nearest of K codebook vectors (Euclidean distance). These are
the same computations as diffusers' ``VectorQuantizer`` (tests/test_vq.py checks the indices
against it), done in float64 on NumPy arrays so that the lab can show which code each pixel took.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["CodeUsage", "code_indices", "code_usage", "quantize"]

_CHUNK_CELLS = 4_000_000  # pixels x codes per distance block (32 MB of float64)


def _pixels(latents: np.ndarray, codebook: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,C,h,w), (K,C) -> (N*h*w, C) float64 pixel vectors and the (K,C) float64 codebook."""
    z = np.asarray(latents, np.float64)
    e = np.asarray(codebook, np.float64)
    if z.ndim != 4 or e.ndim != 2 or z.shape[1] != e.shape[1]:
        raise ValueError(
            f"latents (N,C,h,w) and codebook (K,C) must agree in C: got {z.shape} and {e.shape}"
        )
    return z.transpose(0, 2, 3, 1).reshape(-1, z.shape[1]), e


def code_indices(latents: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """(N,C,h,w) continuous latents, (K,C) codebook -> (N,h,w) int64 index of the nearest code
    per latent pixel (Euclidean; the lowest index on an exact tie)."""
    n, _, h, w = np.shape(latents)
    x, e = _pixels(latents, codebook)
    e2 = (e * e).sum(axis=1)
    out = np.empty(len(x), np.int64)
    step = max(1, _CHUNK_CELLS // max(1, len(e)))
    for i in range(0, len(x), step):
        xi = x[i : i + step]
        # ||x||^2 is the same for every code of a pixel: argmin over ||e||^2 - 2 x.e suffices
        out[i : i + step] = np.argmin(e2[None, :] - 2.0 * xi @ e.T, axis=1)
    return out.reshape(n, h, w)


def quantize(latents: np.ndarray, codebook: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,C,h,w) latents, (K,C) codebook -> ((N,C,h,w) float32 latents with every pixel replaced
    by its nearest codebook row, (N,h,w) int64 indices)."""
    idx = code_indices(latents, codebook)
    q = np.asarray(codebook, np.float32)[idx]  # (N,h,w,C)
    return np.ascontiguousarray(q.transpose(0, 3, 1, 2)), idx


@dataclass
class CodeUsage:
    """How a code-index map uses a codebook of ``size`` codes: ``counts`` (size,) pixels per
    code (summing to the number of latent pixels), ``used`` codes with a count > 0, and the
    ``perplexity`` exp(entropy) of the usage distribution, in [1, used]: the number of equally
    used codes that would have the same entropy."""

    counts: np.ndarray
    used: int
    size: int
    perplexity: float

    @property
    def pixels(self) -> int:
        return int(self.counts.sum())


def code_usage(indices: np.ndarray, size: int) -> CodeUsage:
    """(…) int code indices in [0, size) -> :class:`CodeUsage` (counts, codes used, perplexity)."""
    idx = np.asarray(indices).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise ValueError(f"code indices must lie in [0, {size}), got [{idx.min()}, {idx.max()}]")
    counts = np.bincount(idx.astype(np.int64), minlength=size)
    p = counts[counts > 0] / max(1, idx.size)
    entropy = float(-(p * np.log(p)).sum()) if p.size else 0.0
    return CodeUsage(counts, int((counts > 0).sum()), int(size), math.exp(entropy))
