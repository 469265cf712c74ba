"""The VAE lab: one image through a VAE -- encode, round trips, generations, comparisons,
interpolation, channel edits.

What the UI and the CLI call for the lab (no gradio, no figures, no Markdown here): images in,
dataclasses of arrays, PIL images and numbers out. The words and figures are made from these in
``explorer.ui.lab.views`` and ``explorer.images.plots``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from PIL import Image

from explorer.analysis import latents, metrics, vq
from explorer.core.errors import ExplorerError
from explorer.core.lru import LRU
from explorer.core.progress import Progress, no_progress
from explorer.images import io as imaging
from explorer.images import pictures
from explorer.models.vae import VAE, Posterior
from explorer.spaces.gpu_calls import RemoteVAE, open_vae

__all__ = [
    "CROP_MODES",
    "RESOLUTIONS",
    "Codes",
    "Comparison",
    "Edit",
    "Encoded",
    "Generations",
    "Interpolation",
    "LatentStats",
    "RoundTrip",
    "codes",
    "compare",
    "edit",
    "encode",
    "generations",
    "interpolate",
    "latent_stats",
    "prepare_input",
    "roundtrip",
]

RESOLUTIONS = (64, 128, 256, 384, 512, 768, 1024)
CROP_MODES = ("square", "fit")


# --------------------------------------------------------------------------- encoding


@dataclass
class Encoded:
    """One prepared image and its scaled posterior ((1,C,h,w) mean, std or None) under one model
    (``vae``: loaded here, or a :class:`~explorer.spaces.gpu_calls.RemoteVAE` whose passes run
    in ZeroGPU workers; the lab calls the same methods of both)."""

    image: Image.Image
    posterior: Posterior
    vae: VAE | RemoteVAE
    encode_s: float

    @property
    def latent(self) -> np.ndarray:
        """(C,h,w) float32 scaled posterior mean."""
        return self.posterior.mean[0].numpy()

    @property
    def std(self) -> np.ndarray | None:
        """(C,h,w) float32 posterior std; None for a deterministic (tiny) autoencoder."""
        return None if self.posterior.std is None else self.posterior.std[0].numpy()


_ENCODED: LRU[tuple] = LRU(32)


def prepare_input(image, resolution: int = 512, mode: str = "square") -> Image.Image:
    """Any image source -> RGB PIL image resized/cropped to multiples of 8 (see imaging.prepare)."""
    if image is None:
        raise ExplorerError("No image yet: upload, paste or pick an example image first.")
    if mode not in CROP_MODES:
        raise ExplorerError(f"Unknown crop mode {mode!r}; choose one of {', '.join(CROP_MODES)}.")
    loaded = imaging.load_image(image)
    try:
        return imaging.prepare(loaded, int(resolution), mode)
    except (TypeError, ValueError) as exc:  # a resolution imaging.prepare refuses
        raise ExplorerError(
            f"Cannot prepare the image at resolution {resolution!r}: {exc}. "
            "Pick a resolution that is a multiple of 8 between 64 and 2048."
        ) from exc


def encode(
    image, model: str, resolution: int = 512, mode: str = "square", folder: str | None = None
) -> Encoded:
    """Load + prepare ``image``, encode it with ``model`` -> :class:`Encoded` (its (1,C,h,w)
    scaled posterior; cached by content, model and size)."""
    prepared = prepare_input(image, resolution, mode)
    vae = open_vae(model, folder or None)
    digest = hashlib.sha1(prepared.tobytes()).hexdigest()
    key = (digest, prepared.size, vae.spec.name, str(vae.spec.encoder_path))
    hit = _ENCODED.get(key)  # holds no model: the model cache alone decides what stays loaded
    if hit is not None:
        return Encoded(hit[0], hit[1], vae, hit[2])
    posterior, encode_s = vae.timed_encode(imaging.to_tensor(prepared))
    enc = Encoded(prepared, posterior, vae, encode_s)
    _ENCODED.put(key, (prepared, posterior, enc.encode_s))
    return enc


@dataclass
class LatentStats:
    """What the Encode tab shows about one latent, as numbers and images.

    ``latent``: (C,h,w) scaled posterior mean; ``std``: (C,h,w) posterior std or None
    (deterministic); ``image_size``: (W, H) of the prepared image; ``ratio``: numbers in the
    image per number in the latent; ``gaussian``: :func:`explorer.analysis.metrics.gaussian_summary` of
    the latent; ``channels``: per-channel mean/std/min/max; ``preview``: the latent's first
    three principal components as an RGB image of the input's size.
    """

    model: str
    description: str
    latent: np.ndarray
    std: np.ndarray | None
    image_size: tuple[int, int]
    ratio: float
    gaussian: dict[str, float]
    channels: pd.DataFrame
    preview: Image.Image
    encode_s: float


def latent_stats(enc: Encoded) -> LatentStats:
    """An :class:`Encoded` -> its (C,h,w) latent's statistics, compression and RGB preview."""
    z = enc.latent
    W, H = enc.image.size
    preview = latents.pca_rgb(torch.from_numpy(z))
    return LatentStats(
        model=enc.vae.name,
        description=enc.vae.describe(),
        latent=z,
        std=enc.std,
        image_size=(W, H),
        ratio=metrics.compression_ratio((H, W, 3), z.shape),
        gaussian=metrics.gaussian_summary(z),
        channels=pd.DataFrame(metrics.channel_stats(z)).round(4),
        preview=imaging.to_pil(preview)[0].resize((W, H), Image.NEAREST),
        encode_s=enc.encode_s,
    )


@dataclass
class Codes:
    """A VQ model's codes for one latent: ``indices`` (h,w) int64, the nearest codebook entry of
    each latent pixel (what its decoder sees); ``usage`` counts per code, codes used, perplexity;
    ``rms_distance`` the root-mean-square distance from a continuous latent pixel to its code,
    beside ``rms_norm``, that of the latent pixels themselves (scaled units); ``bits`` the
    information in the code map, h·w·log2(K)."""

    indices: np.ndarray
    usage: vq.CodeUsage
    rms_distance: float
    rms_norm: float
    bits: float


def codes(enc: Encoded) -> Codes | None:
    """An :class:`Encoded` of a VQ model -> its (h,w) code-index map and codebook usage; None for
    a model without a codebook."""
    book = enc.vae.codebook
    if book is None:
        return None
    z = enc.posterior.mean.numpy()  # (1,C,h,w)
    q, idx = vq.quantize(z, book.numpy())
    k = book.shape[0]
    return Codes(
        idx[0],
        vq.code_usage(idx, k),
        float(np.sqrt(((z - q) ** 2).sum(axis=1).mean())),
        float(np.sqrt((z**2).sum(axis=1).mean())),
        idx[0].size * math.log2(k),
    )


# --------------------------------------------------------------------------- round trips


@dataclass
class RoundTrip:
    """decode(encode(x)) beside x: images, PSNR (dB) / SSIM in [-1, 1] against the original,
    the compression ratio, timings, and what was decoded (``source``: a KL VAE's posterior
    "mean" or a "sample", "latent" for a deterministic autoencoder, which has one latent and
    no posterior, or "codes" for a VQ model: its latent snapped to the codebook);
    ``error_vmax``: the mean |error| (pixels in [0, 1]) the error map draws brightest."""

    original: Image.Image
    reconstruction: Image.Image
    error: Image.Image
    psnr: float
    ssim: float
    ratio: float
    encode_s: float
    decode_s: float
    model: str
    source: str
    error_vmax: float = 1.0


def _decode_timed(vae: VAE | RemoteVAE, z: torch.Tensor) -> tuple[Image.Image, float]:
    x, seconds = vae.timed_decode(z)
    return imaging.to_pil(x)[0], seconds


def roundtrip(
    image,
    model: str,
    resolution: int = 512,
    mode: str = "square",
    source: str = "mean",
    seed: int = 0,
    folder: str | None = None,
) -> RoundTrip:
    """Encode then decode (posterior mean or a seeded sample) -> :class:`RoundTrip` with PSNR
    (dB) and SSIM in [-1, 1] against the original."""
    enc = encode(image, model, resolution, mode, folder)
    z = enc.posterior.sample(seed) if source == "sample" else enc.posterior.mean
    if enc.vae.quantized:
        used = "codes"
    elif enc.posterior.std is None:
        used = "latent"
    else:
        used = "sample" if source == "sample" else "mean"
    recon, decode_s = _decode_timed(enc.vae, z)
    a, b = imaging.to_numpy_hwc(enc.image), imaging.to_numpy_hwc(recon)
    return RoundTrip(
        enc.image,
        recon,
        pictures.error_heatmap(enc.image, recon),
        metrics.psnr(a, b),
        metrics.ssim(a, b),
        metrics.compression_ratio(a.shape, enc.latent.shape),
        enc.encode_s,
        decode_s,
        enc.vae.name,
        used,
        pictures.error_scale(enc.image, recon),
    )


@dataclass
class Generations:
    """Repeated round trips: the image after each, and PSNR (dB) / SSIM against the original."""

    images: list[Image.Image]
    psnr: list[float]
    ssim: list[float]


def generations(
    image,
    model: str,
    n: int = 5,
    resolution: int = 512,
    mode: str = "square",
    folder: str | None = None,
    progress: Progress = no_progress,
) -> Generations:
    """Repeated round trips x_{k+1} = D(E(x_k)), ``n`` in [1, 50] -> the images after each and
    PSNR (dB) / SSIM in [-1, 1] against x_0."""
    if not 1 <= int(n) <= 50:
        raise ExplorerError("Choose between 1 and 50 generations.")
    enc = encode(image, model, resolution, mode, folder)
    ref = imaging.to_numpy_hwc(enc.image)
    out = Generations([], [], [])
    for x in enc.vae.roundtrips(imaging.to_tensor(enc.image), int(n), progress):
        img = imaging.to_pil(x)[0]
        arr = imaging.to_numpy_hwc(img)
        out.images.append(img)
        out.psnr.append(metrics.psnr(ref, arr))
        out.ssim.append(metrics.ssim(ref, arr))
    progress(1.0, "done")
    return out


@dataclass
class Comparison:
    """The same image round-tripped through two models."""

    a: RoundTrip
    b: RoundTrip


def compare(
    image,
    model_a: str,
    model_b: str,
    resolution: int = 512,
    mode: str = "square",
    folder: str | None = None,
) -> Comparison:
    """Round-trip the same image through two models -> two :class:`RoundTrip` s."""
    return Comparison(
        roundtrip(image, model_a, resolution, mode, folder=folder),
        roundtrip(image, model_b, resolution, mode, folder=folder),
    )


# --------------------------------------------------------------------------- interpolation


@dataclass
class Interpolation:
    """Decoded latent interpolation ``frames`` A -> B beside a pixel ``crossfade`` of as many
    steps, each also as a side-by-side strip; ``endpoint_psnr``: PSNR (dB) of the first and last
    frames against A and B; ``quantized``: each frame's latent was snapped to a VQ codebook
    before decoding (``codes_changed``: then, per frame, the fraction of latent pixels whose
    code differs from frame A's)."""

    frames: list[Image.Image]
    crossfade: list[Image.Image]
    strip: Image.Image
    crossfade_strip: Image.Image
    endpoint_psnr: tuple[float, float]
    method: str
    quantized: bool = False
    codes_changed: list[float] | None = None


def interpolate(
    image_a,
    image_b,
    model: str,
    steps: int = 8,
    method: str = "slerp",
    resolution: int = 256,
    folder: str | None = None,
    progress: Progress = no_progress,
) -> Interpolation:
    """Two images -> ``steps`` (2-64) decoded frames along a lerp/slerp between their
    (1,C,h,w) latent means, beside a pixel crossfade of as many steps."""
    if image_b is None:
        raise ExplorerError("Pick a second image (B) to interpolate towards.")
    if not 2 <= int(steps) <= 64:
        raise ExplorerError("Choose between 2 and 64 interpolation steps.")
    if method not in ("lerp", "slerp"):
        raise ExplorerError("Choose lerp or slerp as the interpolation method.")
    progress(0.05, "encoding A")
    a = encode(image_a, model, resolution, "square", folder)
    progress(0.15, "encoding B")
    b = encode(image_b, model, resolution, "square", folder)
    zs = latents.interpolate(a.posterior.mean, b.posterior.mean, int(steps), method)
    frames_z = [zs[i : i + 1] for i in range(zs.shape[0])]
    decoded = a.vae.decode_each(frames_z, lambda f, d: progress(0.2 + 0.75 * f, f"{d} frames"))
    frames = [imaging.to_pil(x)[0] for x in decoded]
    xa, xb = imaging.to_tensor(a.image), imaging.to_tensor(b.image)
    fades = imaging.to_pil(latents.crossfade(xa, xb, int(steps)))
    pa = metrics.psnr(imaging.to_numpy_hwc(a.image), imaging.to_numpy_hwc(frames[0]))
    pb = metrics.psnr(imaging.to_numpy_hwc(b.image), imaging.to_numpy_hwc(frames[-1]))
    changed = None
    if a.vae.codebook is not None:
        idx = vq.code_indices(zs.numpy(), a.vae.codebook.numpy())
        changed = [float((i != idx[0]).mean()) for i in idx]
    progress(1.0, "done")
    return Interpolation(
        frames,
        fades,
        pictures.hstack(frames),
        pictures.hstack(fades),
        (pa, pb),
        method,
        changed is not None,
        changed,
    )


# --------------------------------------------------------------------------- edits


@dataclass
class Edit:
    """One latent channel edited: the unedited and edited decodes and their difference map, the
    (h,w) channel before and after, PSNR (dB) of the edit against the unedited decode, and the
    mean absolute pixel change (pixels in [0, 1]); ``difference_vmax``: the change the
    difference map draws brightest (its 99th percentile, pixels in [0, 1]). ``codes_changed`` (VQ models only, else
    None): the fraction of latent pixels whose nearest code the edit changed -- the decoder sees
    the codes, so an edit that changes none changes nothing."""

    baseline: Image.Image
    edited: Image.Image
    difference: Image.Image
    channel_before: np.ndarray
    channel_after: np.ndarray
    psnr_vs_baseline: float
    mean_abs_change: float
    codes_changed: float | None = None
    difference_vmax: float = 1.0


MAX_EDIT_AMOUNT = 100.0  # latents live in about [-4, 4]: a larger edit only shows saturation


def edit(
    image,
    model: str,
    channel: int,
    op: str,
    amount: float = 1.0,
    seed: int = 0,
    resolution: int = 512,
    mode: str = "square",
    folder: str | None = None,
) -> Edit:
    """Edit one (h,w) latent channel (scale/zero/shift/noise), decode -> :class:`Edit`: both
    decodes, the channel before and after, PSNR (dB) against the unedited decode."""
    amount = float(amount)
    if not math.isfinite(amount) or abs(amount) > MAX_EDIT_AMOUNT:
        raise ExplorerError(
            f"The amount must be a number between -{MAX_EDIT_AMOUNT:g} and {MAX_EDIT_AMOUNT:g}, "
            f"not {amount!r}."
        )
    enc = encode(image, model, resolution, mode, folder)
    z = enc.posterior.mean
    try:
        z2 = latents.edit_channel(z, int(channel), op, amount, int(seed))
    except ValueError as exc:
        raise ExplorerError(f"{exc}. Pick a channel between 0 and {z.shape[1] - 1}.") from exc
    base, edited = (imaging.to_pil(x)[0] for x in enc.vae.decode_each([z, z2]))
    a, b = imaging.to_numpy_hwc(base), imaging.to_numpy_hwc(edited)
    p = metrics.psnr(a, b)
    changed = None
    if enc.vae.codebook is not None:
        book = enc.vae.codebook.numpy()
        before, after = vq.code_indices(z.numpy(), book), vq.code_indices(z2.numpy(), book)
        changed = float((before != after).mean())
    return Edit(
        base,
        edited,
        pictures.error_heatmap(base, edited),
        z[0, int(channel)].numpy(),
        z2[0, int(channel)].numpy(),
        p,
        float(np.abs(a - b).mean()),
        changed,
        pictures.error_scale(base, edited),
    )
