"""The lab tab's words, tables and figures, made from :mod:`explorer.lab`'s results."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from .. import files, pictures, plots
from ..lab import Edit, Encoded, Generations, Interpolation, RoundTrip, latent_stats

RT_HEADERS = [
    "model",
    "decoded from",
    "PSNR (dB)",
    "SSIM",
    "compression",
    "encode (ms)",
    "decode (ms)",
]


def fmt_db(x: float, digits: int = 2) -> str:
    """A PSNR in dB for the reader: ``"31.42"``, ``"∞"`` for identical images."""
    return "∞" if x == math.inf else f"{x:.{digits}f}"


def encode_view(enc: Encoded, shared_scale: bool = True) -> dict:
    """Encoded -> everything the Encode tab shows: summary, channel grid, stats, histogram, std, preview."""
    s = latent_stats(enc)
    z = s.latent
    c, h, w = z.shape
    W, H = s.image_size
    g = s.gaussian
    if s.std is not None:
        std_fig = plots.heatmap(
            s.std.mean(axis=0),
            f"Posterior std, mean over channels (mean {s.std.mean():.4f})",
            label="std",
        )
        std_note = (
            f"Posterior std: mean {s.std.mean():.4f}, max {s.std.max():.4f} — the encoder is "
            "almost certain about each latent, so the KL term barely blurs it."
        )
    else:
        std_fig = plots.message_figure(
            f"{s.model} is deterministic:<br>a tiny autoencoder has no posterior,<br>so there is no std map."
        )
        std_note = "Deterministic encoder: the latent is a single point, not a distribution."
    summary = (
        f"**{s.description}**\n\n"
        f"| image | latent | numbers in image ÷ in latent | encode time |\n|---|---|---|---|\n"
        f"| {W}×{H}×3 = {W * H * 3:,} | {c}×{h}×{w} = {z.size:,} | **{s.ratio:.1f}×** | "
        f"{s.encode_s * 1000:.0f} ms |\n\n"
        f"Scaled latent over all channels: mean {g['mean']:.3f}, std {g['std']:.3f}, "
        f"skewness {g['skewness']:.2f}, excess kurtosis {g['excess_kurtosis']:.2f}, "
        f"KL(fit ‖ N(0,1)) = {g['kl_to_standard_normal']:.3f}. {std_note}"
    )
    return {
        "summary": summary,
        "grid": plots.channel_grid(z, shared_scale),
        "stats": s.channels,
        "histogram": plots.latent_histogram(z),
        "std": std_fig,
        "preview": s.preview,
    }


def roundtrip_row(rt: RoundTrip) -> dict:
    """One row of the round-trip / comparison table (columns :data:`RT_HEADERS`)."""
    return {
        "model": rt.model,
        "decoded from": rt.source,
        "PSNR (dB)": round(rt.psnr, 2),
        "SSIM": round(rt.ssim, 4),
        "compression": f"{rt.ratio:.1f}×",
        "encode (ms)": round(rt.encode_s * 1000),
        "decode (ms)": round(rt.decode_s * 1000),
    }


def roundtrip_summary(rt: RoundTrip) -> str:
    """The sentence above the round trip's images (Markdown)."""
    return (
        f"**PSNR {fmt_db(rt.psnr)} dB · SSIM {rt.ssim:.4f}** · {rt.ratio:.1f}× fewer numbers in the latent · "
        f"encode {rt.encode_s * 1000:.0f} ms, decode {rt.decode_s * 1000:.0f} ms "
        f"({rt.model}, decoded from the posterior {rt.source}). The error map is the mean absolute "
        "error per pixel: bright where fine detail — text, faces, high-frequency texture — was lost."
    )


def generations_table(g: Generations) -> pd.DataFrame:
    """generation, PSNR (dB), SSIM: one row per round trip, rounded to 4 decimals."""
    return pd.DataFrame(
        {"generation": range(1, len(g.psnr) + 1), "PSNR (dB)": g.psnr, "SSIM": g.ssim}
    ).round(4)


def generations_figure(g: Generations) -> go.Figure:
    """PSNR and SSIM per generation."""
    return plots.generations_plot(g.psnr, g.ssim)


def interpolation_gifs(it: Interpolation) -> tuple[Path, Path]:
    """The interpolation's frames and its crossfade as looping GIFs, each in a fresh
    per-request folder (:func:`explorer.files.tmp_path`); returns (latent GIF, crossfade GIF)."""
    latent = pictures.save_gif(
        it.frames, files.tmp_path(f"latent-{it.method}-{len(it.frames)}-steps.gif")
    )
    fade = pictures.save_gif(
        it.crossfade, files.tmp_path(f"pixel-crossfade-{len(it.crossfade)}-steps.gif")
    )
    return latent, fade


def interpolation_note(it: Interpolation) -> str:
    """The sentence above the interpolation strips (Markdown)."""
    return (
        f"{len(it.frames)} frames, {it.method}. Endpoints decode at {it.endpoint_psnr[0]:.1f} dB "
        f"and {it.endpoint_psnr[1]:.1f} dB PSNR vs A and B. The latent path morphs colour and "
        "layout; the crossfade only superimposes — neither moves *through meaning*."
    )


def edit_figure(ed: Edit, channel: int, op: str) -> go.Figure:
    """The edited channel before and after, side by side."""
    return plots.channel_before_after(ed.channel_before, ed.channel_after, channel, op)


def edit_note(ed: Edit) -> str:
    """The sentence above the edit's images (Markdown)."""
    return (
        f"Edited decode vs unedited decode: **{fmt_db(ed.psnr_vs_baseline)} dB PSNR**, mean "
        f"absolute change {ed.mean_abs_change:.4f} (pixels in [0, 1]). The difference map (scaled to "
        "its own 99th percentile) shows where this channel's change lands in pixels."
    )
