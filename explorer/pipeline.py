"""What the UI and CLI call: image in, figures / images / tables / numbers out. No gradio here."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from PIL import Image

from . import files, imaging, latents, metrics, plots
from .errors import ExplorerError
from .runtime import LRU, Progress, no_progress
from .vae import VAE, Posterior, load_vae

RESOLUTIONS = (64, 128, 256, 384, 512, 768, 1024)
CROP_MODES = ("square", "fit")


# --------------------------------------------------------------------------- encoding


@dataclass
class Encoded:
    """One prepared image and its scaled posterior under one model."""

    image: Image.Image
    posterior: Posterior
    vae: VAE
    encode_s: float

    @property
    def latent(self) -> np.ndarray:
        """(C,h,w) float32 scaled posterior mean."""
        return self.posterior.mean[0].numpy()


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
    """Load + prepare ``image`` and encode it with ``model`` (cached by content, model and size)."""
    prepared = prepare_input(image, resolution, mode)
    vae = load_vae(model, folder or None)
    digest = hashlib.sha1(prepared.tobytes()).hexdigest()
    key = (digest, prepared.size, vae.spec.name, str(vae.spec.encoder_path))
    hit = _ENCODED.get(key)  # holds no model: the model cache alone decides what stays loaded
    if hit is not None:
        return Encoded(hit[0], hit[1], vae, hit[2])
    x = imaging.to_tensor(prepared)
    start = time.perf_counter()
    posterior = vae.encode(x)
    enc = Encoded(prepared, posterior, vae, time.perf_counter() - start)
    _ENCODED.put(key, (prepared, posterior, enc.encode_s))
    return enc


def _fmt(x: float, digits: int = 2) -> str:
    return "∞" if x == float("inf") else f"{x:.{digits}f}"


def encode_view(enc: Encoded, shared_scale: bool = True) -> dict:
    """Encoded -> everything the Encode tab shows: summary, channel grid, stats, histogram, std, preview."""
    z = enc.latent
    c, h, w = z.shape
    W, H = enc.image.size
    g = metrics.gaussian_summary(z)
    stats = pd.DataFrame(metrics.channel_stats(z)).round(4)
    ratio = metrics.compression_ratio((H, W, 3), z.shape)
    if enc.posterior.std is not None:
        std = enc.posterior.std[0].numpy()
        std_fig = plots.heatmap(
            std.mean(axis=0),
            f"Posterior std, mean over channels (mean {std.mean():.4f})",
            label="std",
        )
        std_note = (
            f"Posterior std: mean {std.mean():.4f}, max {std.max():.4f} — the encoder is "
            "almost certain about each latent, so the KL term barely blurs it."
        )
    else:
        std_fig = _message_figure(
            f"{enc.vae.name} is deterministic:<br>a tiny autoencoder has no posterior,<br>so there is no std map."
        )
        std_note = "Deterministic encoder: the latent is a single point, not a distribution."
    preview = latents.pca_rgb(torch.from_numpy(z))
    preview_img = imaging.to_pil(preview)[0].resize((W, H), Image.NEAREST)
    summary = (
        f"**{enc.vae.describe()}**\n\n"
        f"| image | latent | numbers in image ÷ in latent | encode time |\n|---|---|---|---|\n"
        f"| {W}×{H}×3 = {W * H * 3:,} | {c}×{h}×{w} = {z.size:,} | **{ratio:.1f}×** | "
        f"{enc.encode_s * 1000:.0f} ms |\n\n"
        f"Scaled latent over all channels: mean {g['mean']:.3f}, std {g['std']:.3f}, "
        f"skewness {g['skewness']:.2f}, excess kurtosis {g['excess_kurtosis']:.2f}, "
        f"KL(fit ‖ N(0,1)) = {g['kl_to_standard_normal']:.3f}. {std_note}"
    )
    return {
        "summary": summary,
        "grid": plots.channel_grid(z, shared_scale),
        "stats": stats,
        "histogram": plots.latent_histogram(z),
        "std": std_fig,
        "preview": preview_img,
    }


def _message_figure(text: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(
        text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font={"size": 14}
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=200, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return fig


# --------------------------------------------------------------------------- round trips


@dataclass
class RoundTrip:
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

    def row(self) -> dict:
        return {
            "model": self.model,
            "decoded from": self.source,
            "PSNR (dB)": round(self.psnr, 2),
            "SSIM": round(self.ssim, 4),
            "compression": f"{self.ratio:.1f}×",
            "encode (ms)": round(self.encode_s * 1000),
            "decode (ms)": round(self.decode_s * 1000),
        }


def _decode_timed(vae: VAE, z: torch.Tensor) -> tuple[Image.Image, float]:
    start = time.perf_counter()
    x = vae.decode(z)
    return imaging.to_pil(x)[0], time.perf_counter() - start


def roundtrip(
    image,
    model: str,
    resolution: int = 512,
    mode: str = "square",
    source: str = "mean",
    seed: int = 0,
    folder: str | None = None,
) -> RoundTrip:
    """Encode then decode (from the posterior mean or a seeded sample); metrics vs the original."""
    enc = encode(image, model, resolution, mode, folder)
    z = enc.posterior.sample(seed) if source == "sample" else enc.posterior.mean
    used = "sample" if source == "sample" and enc.posterior.std is not None else "mean"
    recon, decode_s = _decode_timed(enc.vae, z)
    a, b = imaging.to_numpy_hwc(enc.image), imaging.to_numpy_hwc(recon)
    return RoundTrip(
        enc.image,
        recon,
        imaging.error_heatmap(enc.image, recon),
        metrics.psnr(a, b),
        metrics.ssim(a, b),
        metrics.compression_ratio(a.shape, enc.latent.shape),
        enc.encode_s,
        decode_s,
        enc.vae.name,
        used,
    )


def roundtrip_summary(rt: RoundTrip) -> str:
    return (
        f"**PSNR {_fmt(rt.psnr)} dB · SSIM {rt.ssim:.4f}** · {rt.ratio:.1f}× fewer numbers in the latent · "
        f"encode {rt.encode_s * 1000:.0f} ms, decode {rt.decode_s * 1000:.0f} ms "
        f"({rt.model}, decoded from the posterior {rt.source}). The error map is the mean absolute "
        "error per pixel: bright where fine detail — text, faces, high-frequency texture — was lost."
    )


def generations(
    image,
    model: str,
    n: int = 5,
    resolution: int = 512,
    mode: str = "square",
    folder: str | None = None,
    progress: Progress = no_progress,
) -> tuple[list[Image.Image], list[float], list[float]]:
    """Repeated round trips x_{k+1} = D(E(x_k)); returns images after each and PSNR/SSIM vs x_0."""
    if not 1 <= int(n) <= 50:
        raise ExplorerError("Choose between 1 and 50 generations.")
    enc = encode(image, model, resolution, mode, folder)
    ref = imaging.to_numpy_hwc(enc.image)
    x = imaging.to_tensor(enc.image)
    images, psnrs, ssims = [], [], []
    for k in range(int(n)):
        progress(k / n, f"generation {k + 1}/{n}")
        x = enc.vae.decode(enc.vae.encode(x).mean)
        img = imaging.to_pil(x)[0]
        arr = imaging.to_numpy_hwc(img)
        images.append(img)
        psnrs.append(metrics.psnr(ref, arr))
        ssims.append(metrics.ssim(ref, arr))
    progress(1.0, "done")
    return images, psnrs, ssims


def compare(
    image,
    model_a: str,
    model_b: str,
    resolution: int = 512,
    mode: str = "square",
    folder: str | None = None,
) -> tuple[RoundTrip, RoundTrip]:
    """Round-trip the same image through two models."""
    return (
        roundtrip(image, model_a, resolution, mode, folder=folder),
        roundtrip(image, model_b, resolution, mode, folder=folder),
    )


# --------------------------------------------------------------------------- interpolation


@dataclass
class Interpolation:
    frames: list[Image.Image]
    crossfade: list[Image.Image]
    strip: Image.Image
    crossfade_strip: Image.Image
    gif: Path
    crossfade_gif: Path
    endpoint_psnr: tuple[float, float]


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
    """Two images -> decoded latent interpolation frames (+ GIF) beside a pixel crossfade."""
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
    frames = []
    for i in range(zs.shape[0]):
        progress(0.2 + 0.7 * i / zs.shape[0], f"decoding frame {i + 1}/{zs.shape[0]}")
        frames.append(imaging.to_pil(a.vae.decode(zs[i : i + 1]))[0])
    xa, xb = imaging.to_tensor(a.image), imaging.to_tensor(b.image)
    fades = imaging.to_pil(latents.crossfade(xa, xb, int(steps)))
    progress(0.95, "writing GIFs")
    gif = imaging.save_gif(frames, files.tmp_path(f"latent-{method}-{len(frames)}-steps.gif"))
    fade_gif = imaging.save_gif(fades, files.tmp_path(f"pixel-crossfade-{len(fades)}-steps.gif"))
    pa = metrics.psnr(imaging.to_numpy_hwc(a.image), imaging.to_numpy_hwc(frames[0]))
    pb = metrics.psnr(imaging.to_numpy_hwc(b.image), imaging.to_numpy_hwc(frames[-1]))
    return Interpolation(
        frames, fades, imaging.hstack(frames), imaging.hstack(fades), gif, fade_gif, (pa, pb)
    )


# --------------------------------------------------------------------------- edits


@dataclass
class Edit:
    baseline: Image.Image
    edited: Image.Image
    difference: Image.Image
    channel_before: np.ndarray
    channel_after: np.ndarray
    psnr_vs_baseline: float
    mean_abs_change: float


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
    """Edit one latent channel (scale/zero/shift/noise), decode, and compare with the unedited decode."""
    enc = encode(image, model, resolution, mode, folder)
    z = enc.posterior.mean
    try:
        z2 = latents.edit_channel(z, int(channel), op, float(amount), int(seed))
    except ValueError as exc:
        raise ExplorerError(f"{exc}. Pick a channel between 0 and {z.shape[1] - 1}.") from exc
    base, _ = _decode_timed(enc.vae, z)
    edited, _ = _decode_timed(enc.vae, z2)
    a, b = imaging.to_numpy_hwc(base), imaging.to_numpy_hwc(edited)
    p = metrics.psnr(a, b)
    return Edit(
        base,
        edited,
        imaging.error_heatmap(base, edited),
        z[0, int(channel)].numpy(),
        z2[0, int(channel)].numpy(),
        p,
        float(np.abs(a - b).mean()),
    )
