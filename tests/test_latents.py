"""explorer.analysis.latents: interpolation, channel edits, crossfade and the PCA preview."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explorer.analysis import latents
from explorer.analysis.latents import (
    EDIT_OPS,
    crossfade,
    edit_channel,
    interpolate,
    lerp,
    pca_rgb,
    slerp,
)

SHAPES = [(1, 4, 8, 8), (1, 16, 4, 6), (1, 32, 2, 3), (1, 4, 1, 1)]


def _pair(shape, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    b = (torch.randn(shape, generator=g, dtype=torch.float64) * 3 + 1).to(dtype)
    return a, b


def _orthogonal_pair(shape, norm_a=1.0, norm_b=1.0, seed=0):
    """Two float64 tensors whose flattened forms are orthogonal, with the given norms."""
    a, b = _pair(shape, seed, torch.float64)
    fa, fb = a.flatten(), b.flatten()
    fb = fb - (fb @ fa) / (fa @ fa) * fa
    fa, fb = fa / fa.norm() * norm_a, fb / fb.norm() * norm_b
    return fa.reshape(shape), fb.reshape(shape)


# --------------------------------------------------------------------------- interpolation


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("method", ["lerp", "slerp"])
@pytest.mark.parametrize("steps", [2, 3, 7])
def test_interpolate_endpoints_are_the_inputs_exactly(shape, method, steps):
    a, b = _pair(shape)
    out = interpolate(a, b, steps, method)
    assert out.shape == (steps, *shape[1:])
    assert out.dtype == a.dtype
    assert torch.equal(out[0:1], a)
    assert torch.equal(out[-1:], b)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_interpolate_rejects_bad_arguments(method):
    a, b = _pair((1, 4, 2, 2))
    with pytest.raises(ValueError, match="steps"):
        interpolate(a, b, 1, method)
    with pytest.raises(ValueError, match="shape"):
        interpolate(a, torch.zeros(1, 4, 2, 3), 3, method)


def test_lerp_known_values():
    a = torch.zeros(1, 4, 2, 2)
    b = torch.full((1, 4, 2, 2), 4.0)
    assert torch.equal(lerp(a, b, 0.5), torch.full((1, 4, 2, 2), 2.0))
    assert torch.equal(lerp(a, b, 0.25), torch.full((1, 4, 2, 2), 1.0))
    x = torch.arange(8.0).reshape(1, 2, 2, 2)
    assert torch.allclose(lerp(x, -x, 0.5), torch.zeros_like(x))
    frames = interpolate(a, b, 5, "lerp")
    expected = torch.arange(5.0).reshape(5, 1, 1, 1).expand(5, 4, 2, 2)
    assert torch.allclose(frames, expected)


@pytest.mark.parametrize("shape", [(1, 4, 8, 8), (1, 16, 4, 4), (1, 32, 2, 2)], ids=str)
def test_slerp_between_orthogonal_equal_norm_vectors(shape):
    a, b = _orthogonal_pair(shape, 5.0, 5.0)
    mid = slerp(a, b, 0.5)
    assert torch.allclose(mid, (a + b) / math.sqrt(2), atol=1e-10)
    assert mid.norm().item() == pytest.approx(5.0, rel=1e-10)
    # the same through interpolate(), in float32
    frames = interpolate(a.float(), b.float(), 3, "slerp")
    assert torch.allclose(frames[1:2], ((a + b) / math.sqrt(2)).float(), atol=1e-5)
    # every frame stays on the sphere of radius 5
    norms = interpolate(a, b, 9, "slerp").flatten(1).norm(dim=1)
    assert torch.allclose(norms, torch.full_like(norms, 5.0), atol=1e-9)


def test_slerp_angle_and_norm_follow_t():
    """At t the result is at angle t·ω from a, and its norm is (1-t)|a| + t|b|."""
    a, b = _pair((1, 4, 4, 4), seed=3, dtype=torch.float64)
    fa, fb = a.flatten(), b.flatten()
    omega = torch.arccos(fa @ fb / (fa.norm() * fb.norm()))
    for t in (0.1, 0.3, 0.5, 0.9):
        out = slerp(a, b, t).flatten()
        cos_to_a = out @ fa / (out.norm() * fa.norm())
        assert cos_to_a.item() == pytest.approx(math.cos(t * omega.item()), abs=1e-9)
        assert out.norm().item() == pytest.approx(
            (1 - t) * fa.norm().item() + t * fb.norm().item(), rel=1e-9
        )
    # orthogonal vectors of norm 1 and 3: the midpoint has norm 2
    a, b = _orthogonal_pair((1, 4, 2, 2), 1.0, 3.0)
    assert slerp(a, b, 0.5).norm().item() == pytest.approx(2.0, rel=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_slerp_parallel_inputs_fall_back_without_nan(dtype):
    a, _ = _pair((1, 4, 4, 4), dtype=dtype)
    tiny = torch.randn(a.shape, generator=torch.Generator().manual_seed(9), dtype=dtype) * 1e-9
    for b in (a.clone(), 2 * a, a + tiny * a.abs().max()):
        for t in (0.0, 0.25, 0.5, 1.0):
            out = slerp(a, b, t)
            assert torch.isfinite(out).all()
            assert torch.allclose(out, lerp(a, b, t), rtol=1e-5, atol=1e-5)
        frames = interpolate(a, b, 5, "slerp")
        assert torch.isfinite(frames).all()
    # exactly opposite vectors: no defined great circle, still no NaN
    assert torch.isfinite(slerp(a, -a, 0.5)).all()
    # a zero latent (e.g. after zeroing every channel): the result is t·b
    b = 2 * a + 1
    zero = torch.zeros_like(a)
    assert torch.allclose(slerp(zero, b, 0.25), 0.25 * b, atol=1e-6)


def test_slerp_works_per_sample():
    """Each sample of a batch is interpolated on its own (one parallel, one orthogonal)."""
    a0, b0 = _orthogonal_pair((1, 4, 2, 2), 2.0, 2.0, seed=1)
    a1, _ = _pair((1, 4, 2, 2), seed=2, dtype=torch.float64)
    a, b = torch.cat([a0, a1]), torch.cat([b0, 3 * a1])
    out = slerp(a, b, 0.5)
    assert torch.allclose(out[0:1], (a0 + b0) / math.sqrt(2), atol=1e-10)
    assert torch.allclose(out[1:2], 2 * a1, atol=1e-10)


# --------------------------------------------------------------------------- channel edits


def _latent(c, seed=0, h=16, w=16):
    return torch.randn((1, c, h, w), generator=torch.Generator().manual_seed(seed))


def _expected_channel(op, before, amount):
    if op == "scale":
        return before * amount
    if op == "shift":
        return before + amount
    if op == "zero":
        return torch.zeros_like(before)
    return None  # noise: checked separately


@pytest.mark.parametrize("op", EDIT_OPS)
@pytest.mark.parametrize("channels", [4, 16, 32])
def test_edit_changes_only_the_chosen_channel(op, channels):
    z = _latent(channels, seed=channels)
    original = z.clone()
    amount = 0.7
    for k in sorted({0, 1, channels // 2, channels - 1}):
        out = edit_channel(z, k, op, amount, seed=5)
        assert out.shape == z.shape and out.dtype == z.dtype
        assert torch.equal(z, original), "the input latent was modified in place"
        others = [i for i in range(channels) if i != k]
        assert torch.equal(out[:, others], z[:, others]), f"{op} on {k} touched another channel"
        assert not torch.equal(out[:, k], z[:, k]), f"{op} did not change channel {k}"
        expected = _expected_channel(op, z[:, k], amount)
        if expected is not None:
            assert torch.allclose(out[:, k], expected, atol=1e-6)


def test_edit_known_values():
    z = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    assert torch.equal(edit_channel(z, 1, "scale", 2.0)[:, 1], z[:, 1] * 2)
    assert torch.equal(edit_channel(z, 1, "scale", 1.0), z)
    assert torch.equal(edit_channel(z, 2, "shift", -1.5)[:, 2], z[:, 2] - 1.5)
    assert torch.equal(edit_channel(z, 0, "zero")[:, 0], torch.zeros(2, 2, 2))
    assert torch.equal(edit_channel(z, 0, "noise", 0.0), z)


def test_noise_edit_is_seeded():
    z = _latent(4)
    a = edit_channel(z, 2, "noise", 0.5, seed=1)
    b = edit_channel(z, 2, "noise", 0.5, seed=1)
    c = edit_channel(z, 2, "noise", 0.5, seed=2)
    assert torch.equal(a, b)
    assert not torch.equal(a[:, 2], c[:, 2])
    assert torch.equal(a[:, [0, 1, 3]], c[:, [0, 1, 3]])
    # the added noise is amount · N(0, 1)
    for amount in (0.5, 2.0):
        added = (
            edit_channel(_latent(4, h=64, w=64), 2, "noise", amount, seed=3)
            - _latent(4, h=64, w=64)
        )[:, 2]
        assert added.mean().item() == pytest.approx(0.0, abs=0.1 * amount)
        assert added.std().item() == pytest.approx(amount, rel=0.05)


@pytest.mark.parametrize("channel", [-1, 4, 100])
@pytest.mark.parametrize("op", EDIT_OPS)
def test_edit_out_of_range_channel_raises(channel, op):
    with pytest.raises(ValueError, match="out of range"):
        edit_channel(_latent(4), channel, op)


def test_edit_unknown_op_raises():
    with pytest.raises(ValueError, match="unknown edit"):
        edit_channel(_latent(4), 0, "invert")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- crossfade


def test_crossfade_endpoints_and_midpoint():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (1, 3, 8, 8), generator=g).float() / 255
    y = torch.randint(0, 256, (1, 3, 8, 8), generator=g).float() / 255
    frames = crossfade(x, y, 5)
    assert frames.shape == (5, 3, 8, 8)
    assert torch.equal(frames[0:1], x)
    assert torch.allclose(frames[-1:], y, atol=1e-7)
    assert torch.allclose(frames[2:3], (x + y) / 2, atol=1e-7)
    assert frames.min() >= 0 and frames.max() <= 1


# --------------------------------------------------------------------------- PCA preview


@pytest.mark.parametrize("channels", [1, 2, 3, 4, 16, 32])
def test_pca_rgb_shape_and_range(channels):
    z = _latent(channels, seed=channels, h=12, w=10)[0] * 3 + 2
    rgb = pca_rgb(z)
    assert rgb.shape == (3, 12, 10)
    assert rgb.dtype == torch.float32
    assert torch.isfinite(rgb).all()
    assert rgb.min() >= 0 and rgb.max() <= 1
    assert rgb.max() - rgb.min() > 0.5  # stretched, not a flat image


def test_pca_rgb_of_a_constant_latent_is_finite():
    rgb = pca_rgb(torch.full((4, 8, 8), 3.0))
    assert rgb.shape == (3, 8, 8) and torch.isfinite(rgb).all()


def _patterns(h=32, w=40):
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    p1 = np.sin(3 * xx) + 0.5 * yy  # the strong pattern
    p2 = np.cos(4 * yy) * xx  # a weaker, different one
    return p1, p2


def _corr(a, b):
    return float(np.corrcoef(np.asarray(a).ravel(), np.asarray(b).ravel())[0, 1])


@pytest.mark.parametrize("channels", [4, 16, 32])
def test_pca_rgb_recovers_a_linear_spatial_pattern(channels):
    rng = np.random.default_rng(channels)
    p1, p2 = _patterns()
    w1 = rng.uniform(0.5, 2.0, channels)  # all positive: the channel mean follows p1
    w2 = rng.standard_normal(channels)
    w2 -= (w2 @ w1) / (w1 @ w1) * w1  # orthogonal loadings
    w2 *= 0.3 * np.linalg.norm(w1) / np.linalg.norm(w2)  # and clearly smaller variance
    offsets = rng.standard_normal(channels)
    z = (
        w1[:, None, None] * p1
        + w2[:, None, None] * p2
        + offsets[:, None, None]
        + 1e-3 * rng.standard_normal((channels, *p1.shape))
    )
    rgb = pca_rgb(torch.from_numpy(z).float()).numpy()
    assert abs(_corr(rgb[0], p1)) > 0.99
    # the documented sign: component 1 correlates positively with the channel mean
    assert _corr(rgb[0], z.mean(axis=0)) > 0.99
    assert abs(_corr(rgb[1], p2)) > 0.95


def test_module_exports_edit_ops():
    assert set(latents.EDIT_OPS) == {"scale", "zero", "shift", "noise"}
