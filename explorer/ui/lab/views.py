"""The lab tab's words, tables and figures, made from :mod:`explorer.lab.actions`'s results."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from explorer.core import files
from explorer.images import pictures, plots
from explorer.lab.actions import (
    Codes,
    Comparison,
    Edit,
    Encoded,
    Generations,
    Interpolation,
    RoundTrip,
    codes,
    latent_stats,
)

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


STD_LABEL, HIST_LABEL = "Posterior std", "Histogram vs N(0,1)"


def _vq_view(s, cb: Codes) -> dict:
    """What the Encode tab shows instead for a VQ model: the code-index map in the std's place,
    the histogram without an N(0,1) prior, the codebook usage, and the summary's words."""
    u, (c, h, w) = cb.usage, s.latent.shape
    W, H = s.image_size
    palette = pictures.code_palette(u.size)
    g = s.gaussian
    image_bits = W * H * 3 * 8
    summary = (
        f"**{s.description}**\n\n"
        f"| image | continuous latent | code map | encode time |\n|---|---|---|---|\n"
        f"| {W}×{H}×3 = {W * H * 3:,} | {c}×{h}×{w} = {s.latent.size:,} "
        f"(**{s.ratio:.1f}×** fewer numbers) | {h}×{w} codes of {u.size:,} = "
        f"{cb.bits:,.0f} bits (**{image_bits / cb.bits:.0f}×** fewer than the 8-bit image) | "
        f"{s.encode_s * 1000:.0f} ms |\n\n"
        f"The decoder never sees this continuous latent: each of the {h * w:,} latent pixels is "
        f"snapped to its nearest of {u.size:,} codebook vectors (the code-index map). This image "
        f"uses **{u.used:,} of {u.size:,} codes** (perplexity {u.perplexity:.1f}: as spread as "
        f"{u.perplexity:.1f} equally used codes). RMS distance from a latent pixel to its code "
        f"{cb.rms_distance:.3f}, against an RMS latent-pixel norm of {cb.rms_norm:.3f}.\n\n"
        f"Latent values over all channels: mean {g['mean']:.3f}, std {g['std']:.3f}. A VQ latent "
        "has no KL term pulling it towards N(0,1) (the codebook sets its spread), so no "
        "comparison with N(0,1) is made here; there is no posterior std either."
    )
    return {
        "summary": summary,
        "std": plots.code_map(
            cb.indices, palette, f"Code-index map: {u.used:,} of {u.size:,} codes used"
        ),
        "std_label": "Code-index map (nearest codebook entry per latent pixel)",
        "histogram": plots.latent_histogram(
            s.latent, "Continuous latent values (no N(0,1) prior)", prior=False
        ),
        "hist_label": "Histogram of latent values (no N(0,1) prior for a VQ model)",
        "usage": plots.code_usage(
            u.counts,
            palette,
            f"Codebook usage: {u.used:,} of {u.size:,} codes, perplexity {u.perplexity:.1f}",
        ),
    }


def encode_view(enc: Encoded, shared_scale: bool = True) -> dict:
    """Encoded -> everything the Encode tab shows: summary, channel grid, stats, histogram, std,
    preview; for a VQ model the code-index map (in ``std``) and codebook ``usage`` (else None),
    and the labels of the std and histogram plots."""
    s = latent_stats(enc)
    common = {
        "grid": plots.channel_grid(s.latent, shared_scale),
        "stats": s.channels,
        "preview": s.preview,
    }
    cb = codes(enc)
    if cb is not None:
        return {**common, **_vq_view(s, cb)}
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
        **common,
        "summary": summary,
        "histogram": plots.latent_histogram(z),
        "std": std_fig,
        "std_label": STD_LABEL,
        "hist_label": HIST_LABEL,
        "usage": None,
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


def roundtrip_summary(rt: RoundTrip, asked: str = "mean") -> str:
    """The sentence above the round trip's images (Markdown); ``asked``: what the user chose to
    decode ("mean" or "sample"), said when the model could not do it."""
    source = {
        "codes": "decoded from its codes: the latent snapped to the codebook",
        "latent": "decoded from its latent: a deterministic autoencoder has no posterior",
    }.get(rt.source, f"decoded from the posterior {rt.source}")
    text = (
        f"**PSNR {fmt_db(rt.psnr)} dB · SSIM {rt.ssim:.4f}** · {rt.ratio:.1f}× fewer numbers in the latent · "
        f"encode {rt.encode_s * 1000:.0f} ms, decode {rt.decode_s * 1000:.0f} ms "
        f"({rt.model}, {source}). The error map is the mean absolute error per pixel, "
        f"brightest at {_levels(rt.error_vmax)} (its bar below): bright where fine detail was lost."
    )
    if asked == "sample" and rt.source != "sample":
        text += (
            f" *Sample* changes nothing here: {rt.model}'s encoder gives one latent per image, "
            "with no posterior spread to draw from (only a KL VAE has one)"
            + (", and a VQ model decodes that latent's codes." if rt.source == "codes" else ".")
        )
    return text


def _levels(vmax: float) -> str:
    """A change in [0, 1] pixel units as 8-bit levels: ``"12/255"``."""
    levels = vmax * 255
    return f"{levels:.1f}/255" if levels < 9.95 else f"{levels:.0f}/255"


def error_picture(heatmap, vmax: float, what: str = "error"):
    """An error or difference heatmap with its colour bar in pixel units (8-bit levels)."""
    return pictures.with_colour_bar(heatmap, vmax, what)


def compare_note(c: Comparison, usable: list[str]) -> str:
    """The line above the comparison: which two models ran, and, when they are one model, why
    (only one usable) -- so that a comparison of a model with itself is never silent."""
    a, b = c.a.model, c.b.model
    if a != b:
        return (
            f"**{a}**: PSNR {fmt_db(c.a.psnr)} dB, SSIM {c.a.ssim:.4f} · **{b}**: PSNR "
            f"{fmt_db(c.b.psnr)} dB, SSIM {c.b.ssim:.4f}."
        )
    why = (
        f"it is the only VAE that runs here without a download ({', '.join(usable)})"
        if usable == [a]
        else "the same model is chosen on both sides"
    )
    return (
        f"**Both sides are {a}**: {why}, so this compares the model with itself (the two rows "
        "match). Pick another second VAE, or make one usable (a local checkpoint folder, or "
        "`python -m explorer download`), to compare two."
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
    per-request folder (:func:`explorer.core.files.tmp_path`); returns (latent GIF, crossfade GIF)."""
    latent = pictures.save_gif(
        it.frames, files.tmp_path(f"latent-{it.method}-{len(it.frames)}-steps.gif")
    )
    fade = pictures.save_gif(
        it.crossfade, files.tmp_path(f"pixel-crossfade-{len(it.crossfade)}-steps.gif")
    )
    return latent, fade


def interpolation_note(it: Interpolation) -> str:
    """The sentence above the interpolation strips (Markdown)."""
    vq_note = ""
    if it.quantized and it.codes_changed:
        mid = it.codes_changed[len(it.codes_changed) // 2]
        vq_note = (
            " VQ model: the path runs through the continuous latent and each frame is "
            "re-quantised (snapped to the codebook) before decoding, so frames change in jumps, "
            f"code by code: {mid:.0%} of latent pixels have left A's code by the middle frame, "
            f"{it.codes_changed[-1]:.0%} by B."
        )
    return (
        f"{len(it.frames)} frames, {it.method}. Endpoints decode at {it.endpoint_psnr[0]:.1f} dB "
        f"and {it.endpoint_psnr[1]:.1f} dB PSNR vs A and B. The latent path morphs colour and "
        "layout; the crossfade only superimposes — neither moves *through meaning*." + vq_note
    )


def edit_figure(ed: Edit, channel: int, op: str) -> go.Figure:
    """The edited channel before and after, side by side."""
    return plots.channel_before_after(ed.channel_before, ed.channel_after, channel, op)


def edit_note(ed: Edit) -> str:
    """The sentence above the edit's images (Markdown)."""
    p = ed.psnr_vs_baseline
    seen = (
        " — too small to see side by side; the map is stretched to show where it lands"
        if p >= 40
        else ""
    )
    return (
        f"Edited decode vs unedited decode: **{fmt_db(p)} dB PSNR**, mean absolute change "
        f"{_levels(ed.mean_abs_change)} per pixel. The difference map is drawn brightest at "
        f"{_levels(ed.difference_vmax)} (its 99th percentile; the bar under it is in 8-bit "
        f"levels){seen}." + _edit_vq_note(ed)
    )


def _edit_vq_note(ed: Edit) -> str:
    """For a VQ model: the edit acts only through the codes it changes."""
    if ed.codes_changed is None:
        return ""
    return (
        f" VQ model: the edited continuous latent is re-quantised before decoding; this edit "
        f"moved **{ed.codes_changed:.1%} of latent pixels** to another code. The decoder sees "
        "only codes: an edit too small to change a pixel's nearest code changes nothing there, "
        "and one channel cannot be edited alone (each code fixes all channels at once)."
    )
