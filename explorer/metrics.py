"""Numbers: reconstruction quality, latent statistics, compression. NumPy in, numbers out."""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """(H,W,3) a, b in [0,1] -> PSNR in dB (inf for identical images)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if np.array_equal(a, b):
        return math.inf
    return float(peak_signal_noise_ratio(a, b, data_range=1.0))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """(H,W,3) a, b in [0,1] -> mean SSIM in [-1,1] (scikit-image, 7x7 window, per channel)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    win = min(7, *a.shape[:2])
    win = win if win % 2 else win - 1
    return float(structural_similarity(a, b, data_range=1.0, channel_axis=-1, win_size=max(win, 3)))


def compression_ratio(image_shape: tuple[int, ...], latent_shape: tuple[int, ...]) -> float:
    """(H,W,3)-like and (C,h,w)-like shapes -> how many image numbers per latent number."""
    return float(np.prod(image_shape)) / float(np.prod(latent_shape))


def channel_stats(z: np.ndarray) -> list[dict[str, float]]:
    """(C,h,w) latent -> one dict per channel with mean, std, min, max (population std)."""
    z = np.asarray(z, np.float64)
    flat = z.reshape(z.shape[0], -1)
    return [
        {
            "channel": i,
            "mean": float(c.mean()),
            "std": float(c.std()),
            "min": float(c.min()),
            "max": float(c.max()),
        }
        for i, c in enumerate(flat)
    ]


def gaussian_summary(values: np.ndarray) -> dict[str, float]:
    """(…) values -> mean, std, skewness, excess kurtosis and KL(fitted Gaussian ‖ N(0,1)).

    For a standard normal sample all five are near 0/1/0/0/0. KL between N(m, s²) and N(0, 1) is
    ½(s² + m² − 1 − ln s²): how far the latent's first two moments are from what the
    KL-regularised prior asks for.
    """
    v = np.asarray(values, np.float64).ravel()
    m, s = float(v.mean()), float(v.std())
    z = (v - m) / (s if s > 0 else 1.0)
    skew = float((z**3).mean())
    kurt = float((z**4).mean() - 3.0)
    kl = 0.5 * (s**2 + m**2 - 1.0 - math.log(max(s**2, 1e-12)))
    return {
        "mean": m,
        "std": s,
        "skewness": skew,
        "excess_kurtosis": kurt,
        "kl_to_standard_normal": kl,
    }
