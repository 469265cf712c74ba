"""Latent-space operations: interpolation, channel edits, previews. Tensors in, tensors out."""

from __future__ import annotations

from typing import Literal

import torch

Method = Literal["lerp", "slerp"]
EditOp = Literal["scale", "zero", "shift", "noise"]
EDIT_OPS: tuple[str, ...] = ("scale", "zero", "shift", "noise")


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """(…) a, (…) b, t in [0,1] -> (…) (1-t)·a + t·b."""
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, eps: float = 1e-6) -> torch.Tensor:
    """(N,…) a, b, t in [0,1] -> (N,…) spherical interpolation per sample (lerp when nearly parallel).

    Angles are taken between the flattened samples; the result's norm interpolates linearly between
    the two norms, so a slerp between two latents of equal norm stays on that sphere.
    """
    shape = a.shape
    fa, fb = a.reshape(shape[0], -1).double(), b.reshape(shape[0], -1).double()
    na, nb = fa.norm(dim=1, keepdim=True), fb.norm(dim=1, keepdim=True)
    ua, ub = fa / na.clamp_min(eps), fb / nb.clamp_min(eps)
    cos = (ua * ub).sum(dim=1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    parallel = sin.abs() < eps
    safe_sin = torch.where(parallel, torch.ones_like(sin), sin)
    wa = torch.where(parallel, 1 - t * torch.ones_like(sin), torch.sin((1 - t) * omega) / safe_sin)
    wb = torch.where(parallel, t * torch.ones_like(sin), torch.sin(t * omega) / safe_sin)
    direction = wa * ua + wb * ub
    direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(eps)
    out = direction * ((1 - t) * na + t * nb)
    return out.reshape(shape).to(a.dtype)


def interpolate(
    a: torch.Tensor, b: torch.Tensor, steps: int, method: Method = "slerp"
) -> torch.Tensor:
    """(1,C,h,w) a, b -> (steps,C,h,w) latents from a to b inclusive (steps >= 2)."""
    if steps < 2:
        raise ValueError("steps must be at least 2")
    if a.shape != b.shape:
        raise ValueError(f"latents differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    fn = slerp if method == "slerp" else lerp
    ts = torch.linspace(0, 1, steps).tolist()
    frames = [fn(a, b, t) for t in ts]
    frames[0], frames[-1] = a.clone(), b.clone()  # exact endpoints, free of round-off
    return torch.cat(frames, dim=0)


def crossfade(x: torch.Tensor, y: torch.Tensor, steps: int) -> torch.Tensor:
    """(1,3,H,W) x, y in [0,1] -> (steps,3,H,W) pixel-space blend, the baseline for interpolation."""
    return torch.cat([lerp(x, y, t) for t in torch.linspace(0, 1, steps).tolist()], dim=0)


def edit_channel(
    z: torch.Tensor, channel: int, op: EditOp, amount: float = 1.0, seed: int = 0
) -> torch.Tensor:
    """(N,C,h,w) scaled latents -> (N,C,h,w) copy with channel ``channel`` edited, others untouched.

    ``scale``: multiply by amount; ``zero``: set to 0; ``shift``: add amount;
    ``noise``: add amount · N(0,1) (seeded).
    """
    if not 0 <= channel < z.shape[1]:
        raise ValueError(f"channel {channel} out of range: this latent has {z.shape[1]} channels")
    out = z.clone()
    c = out[:, channel]
    if op == "scale":
        out[:, channel] = c * amount
    elif op == "zero":
        out[:, channel] = 0
    elif op == "shift":
        out[:, channel] = c + amount
    elif op == "noise":
        gen = torch.Generator().manual_seed(seed)
        out[:, channel] = c + amount * torch.randn(c.shape, generator=gen, dtype=torch.float32).to(
            c
        )
    else:
        raise ValueError(f"unknown edit {op!r}; choose one of {', '.join(EDIT_OPS)}")
    return out


def pca_rgb(z: torch.Tensor) -> torch.Tensor:
    """(C,h,w) latent -> (3,h,w) in [0,1]: its first three principal components as RGB.

    Works for any channel count; each component is stretched to its 1st–99th percentile.
    Signs are fixed so that each component correlates positively with the channel mean.
    """
    c, h, w = z.shape
    x = z.reshape(c, -1).T.double()  # (h*w, C)
    x = x - x.mean(dim=0, keepdim=True)
    _, _, v = torch.linalg.svd(x, full_matrices=False)
    k = min(3, v.shape[0])
    comps = x @ v[:k].T  # (h*w, k)
    ref = x.mean(dim=1, keepdim=True)
    signs = torch.sign((comps * ref).sum(dim=0))
    comps = comps * torch.where(signs == 0, torch.ones_like(signs), signs)
    if k < 3:
        comps = torch.cat([comps, comps[:, :1].repeat(1, 3 - k)], dim=1)
    lo = torch.quantile(comps, 0.01, dim=0)
    hi = torch.quantile(comps, 0.99, dim=0)
    rgb = ((comps - lo) / (hi - lo).clamp_min(1e-8)).clamp(0, 1)
    return rgb.T.reshape(3, h, w).float()
