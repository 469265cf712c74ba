"""explorer.analysis.metrics against scikit-image, numpy and closed-form answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from explorer.analysis.metrics import channel_stats, compression_ratio, gaussian_summary, psnr, ssim


def _images(seed, shape=(48, 40, 3), noise=0.1):
    rng = np.random.default_rng(seed)
    a = rng.random(shape)
    b = np.clip(a + noise * rng.standard_normal(shape), 0, 1)
    return a, b


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("noise", [0.01, 0.1, 0.5])
def test_psnr_matches_skimage(seed, noise):
    a, b = _images(seed, noise=noise)
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0), rel=1e-12)
    assert psnr(a, b) == pytest.approx(psnr(b, a), rel=1e-12)


def test_psnr_known_answer():
    a = np.random.default_rng(0).uniform(0.1, 0.8, (32, 32, 3))
    assert psnr(a, a + 0.1) == pytest.approx(20.0, abs=1e-9)  # MSE 0.01 -> 20 dB
    assert psnr(a, a - 0.01) == pytest.approx(40.0, abs=1e-9)
    assert psnr(np.zeros((8, 8, 3)), np.ones((8, 8, 3))) == pytest.approx(0.0, abs=1e-12)


def test_psnr_identical_is_inf():
    a, _ = _images(0)
    assert psnr(a, a.copy()) == math.inf
    assert psnr(a.astype(np.float32), a.astype(np.float32)) == math.inf


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("shape", [(64, 64, 3), (33, 50, 3)], ids=str)
def test_ssim_matches_skimage(seed, shape):
    a, b = _images(seed, shape)
    expected = structural_similarity(a, b, channel_axis=-1, data_range=1)
    assert ssim(a, b) == pytest.approx(expected, rel=1e-12)


def test_ssim_identical_is_one_and_orders_quality():
    a, b_small = _images(3, noise=0.02)
    _, b_large = _images(3, noise=0.3)
    assert ssim(a, a.copy()) == pytest.approx(1.0, abs=1e-12)
    assert 1.0 > ssim(a, b_small) > ssim(a, b_large)


@pytest.mark.parametrize("side", [3, 4, 5, 6])
def test_ssim_on_images_smaller_than_the_window(side):
    a, b = _images(0, (side, side + 2, 3))
    value = ssim(a, b)
    assert math.isfinite(value) and -1 <= value <= 1
    assert ssim(a, a.copy()) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("channels", [4, 16])
def test_channel_stats_match_numpy(channels):
    rng = np.random.default_rng(channels)
    z = (rng.standard_normal((channels, 8, 6)) * rng.uniform(0.5, 3, (channels, 1, 1))).astype(
        np.float32
    ) + np.arange(channels, dtype=np.float32)[:, None, None]
    stats = channel_stats(z)
    assert [s["channel"] for s in stats] == list(range(channels))
    z64 = z.astype(np.float64)
    for s, ch in zip(stats, z64, strict=True):
        assert s["mean"] == pytest.approx(ch.mean(), rel=1e-12)
        assert s["std"] == pytest.approx(ch.std(ddof=0), rel=1e-12)
        assert s["min"] == ch.min() and s["max"] == ch.max()


@pytest.mark.parametrize(
    ("latent", "expected"),
    [((4, 64, 64), 48.0), ((16, 64, 64), 12.0), ((32, 64, 64), 6.0), ((4, 32, 32), 192.0)],
)
def test_compression_ratio(latent, expected):
    assert compression_ratio((512, 512, 3), latent) == expected


def test_gaussian_summary_of_a_standard_normal_sample():
    g = gaussian_summary(np.random.default_rng(0).standard_normal(200_000))
    assert set(g) == {"mean", "std", "skewness", "excess_kurtosis", "kl_to_standard_normal"}
    assert g["mean"] == pytest.approx(0, abs=0.01)
    assert g["std"] == pytest.approx(1, abs=0.01)
    assert g["skewness"] == pytest.approx(0, abs=0.03)
    assert g["excess_kurtosis"] == pytest.approx(0, abs=0.06)
    assert 0 <= g["kl_to_standard_normal"] < 1e-3


def test_gaussian_summary_kl_of_a_shifted_wider_normal():
    v = np.random.default_rng(1).normal(1.0, 2.0, (400, 500))  # any shape is flattened
    g = gaussian_summary(v)
    assert g["mean"] == pytest.approx(1.0, abs=0.02)
    assert g["std"] == pytest.approx(2.0, abs=0.02)
    assert g["kl_to_standard_normal"] == pytest.approx(0.5 * (4 + 1 - 1 - math.log(4)), abs=0.03)


def test_gaussian_summary_shape_moments_of_a_uniform_sample():
    g = gaussian_summary(np.random.default_rng(2).uniform(-1, 1, 200_000))
    assert g["std"] == pytest.approx(1 / math.sqrt(3), rel=0.01)
    assert g["skewness"] == pytest.approx(0, abs=0.02)
    assert g["excess_kurtosis"] == pytest.approx(-1.2, abs=0.02)


def test_gaussian_summary_of_a_constant_is_finite():
    g = gaussian_summary(np.full(100, 3.0))
    assert g["mean"] == 3.0 and g["std"] == 0.0
    assert all(math.isfinite(v) for v in g.values())
