"""The lesson's computations: each runnable step on its bundled example (through the lab, the
playground, the perturbation lab and the atlas, never a copy of their logic), and its "what to
notice" line written from the numbers it got and naming the model that ran.

No gradio here: each step returns a :class:`StepResult` of plain values (a PIL image, a plotly
figure, a DataFrame, a markdown line) for the tab to show and the tests to check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from PIL import Image

from explorer import atlas, datasets
from explorer.core.errors import ExplorerError
from explorer.core.progress import Progress, no_progress
from explorer.images import io as imaging
from explorer.images import pictures, plots
from explorer.lab import actions as lab
from explorer.perturb import measure as perturb_lab
from explorer.playground import digits as pg
from explorer.playground import figures as figs
from explorer.playground.cache import get_trained
from explorer.spaces import cache
from explorer.ui.atlas import views as atlas_views

NOTICE = "**What to notice.** "
RESOLUTION = 256  # the lab steps: big enough for a visible error map, seconds on a CPU
INTERP_RESOLUTION = 128
INTERP_STEPS = 7  # odd: the middle frame is the halfway one (t = 0.5)
GENERATIONS = 3


SD_VAE = "sd-vae-ft-mse"


def sd_ratio() -> float:
    """Numbers in an RGB image per number in sd-vae-ft-mse's latent: 3·8² / its channels."""
    from explorer.models import registry

    return 3 * 8 * 8 / registry.REGISTRY[SD_VAE].latent_channels


@dataclass
class StepResult:
    image: Image.Image | None = None
    plot: object | None = None  # a plotly figure
    table: pd.DataFrame | None = None
    notice: str = ""
    also: dict[str, str] = field(default_factory=dict)  # other models it ran: name -> version


def _example(name: str):
    found = imaging.example_images()
    if name not in found:
        raise ExplorerError(
            f"The bundled example '{name}' is missing (assets/{name}.jpg): reinstall the app."
        )
    return found[name]


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


# --------------------------------------------------------------------------- the steps


def with_model(model: str, text: str) -> str:
    """A step's notice, naming the model that ran first."""
    return f"{NOTICE}With **{model}**: {text}"


def latent_spread(z: np.ndarray) -> tuple[float, float]:
    """(N,2) latents -> (low, high): the 1st and 99th percentiles over both coordinates."""
    return float(np.percentile(z, 1)), float(np.percentile(z, 99))


def digits_covered(samples: np.ndarray, share: float = 0.02) -> int:
    """(N,8,8) decoded samples -> how many of the 10 digits the classifier gives at least
    ``share`` of them to (a prior whose samples are all one digit covers 1)."""
    guesses = pg.classify(samples).argmax(axis=1)
    counts = np.bincount(guesses, minlength=10)
    return int((counts >= share * len(guesses)).sum())


def step_autoencoders(progress: Progress = no_progress) -> StepResult:
    models = {}
    for k, kind in enumerate(("ae", "vae")):
        cfg = pg.TrainConfig(kind)  # the playground's default config: cached after first use

        def prog(f: float, d: str, k=k, kind=kind) -> None:
            progress((k + min(max(f, 0.0), 1.0)) / 2, f"{kind.upper()}: {d}")

        models[kind] = get_trained(cfg, prog)
    m = {k: pg.evaluate(t) for k, t in models.items()}
    table = pd.DataFrame(
        [
            {
                "model": k,
                "recon_mse": round(v["recon_mse"], 5),
                "prior_kl": round(v["prior_kl"], 6),
                "sample_confidence": round(v["sample_confidence"], 4),
            }
            for k, v in m.items()
        ]
    )
    sheets = {
        k: figs.tile_images(pg.prior_samples(t, 16, seed=0), cols=8, scale=4)
        for k, t in models.items()
    }
    image = pictures.hstack(
        [
            pictures.captioned(
                Image.fromarray(sheets[k]).convert("RGB"), f"{k.upper()}: N(0, I) draws"
            )
            for k in ("ae", "vae")
        ],
        gap=16,
    )
    ae, vae = m["ae"], m["vae"]
    spread = {k: latent_spread(figs.latents(t)[0]) for k, t in models.items()}
    covered = {
        k: digits_covered(pg.prior_samples(t, pg.N_PRIOR_SAMPLES, seed=0))
        for k, t in models.items()
    }
    (alo, ahi), (vlo, vhi) = spread["ae"], spread["vae"]
    s = (
        f"the playground's AE and VAE (2-D latent, digits). KL from N(0, I): VAE "
        f"**{vae['prior_kl']:.3g} nats**, AE **{ae['prior_kl']:.3g}**. In numbers you can see: "
        f"the AE's latents run from **{alo:.1f} to {ahi:.1f}** (1st–99th percentile), the "
        f"VAE's from **{vlo:.1f} to {vhi:.1f}**, while N(0, I) draws stay mostly within ±2. "
    )
    cv, ca = vae["sample_confidence"], ae["sample_confidence"]
    s += (
        f"Decoded N(0, I) draws (left AE, right VAE): the digit classifier is {cv:.0%} sure "
        f"of the VAE's and {ca:.0%} of the AE's"
    )
    if ca >= cv:
        s += (
            " — *more* sure of the AE's: confidence says a sample looks like *some* digit, not "
            "that the prior reaches every digit. Of its 500 draws the AE's are read as "
            f"**{covered['ae']}** of the 10 digits, the VAE's as **{covered['vae']}**"
        )
    else:
        s += (
            f"; the AE's 500 draws are read as **{covered['ae']}** of the 10 digits, the VAE's "
            f"as **{covered['vae']}**"
        )
    s += f". Reconstruction error: VAE {vae['recon_mse']:.4f}, AE {ae['recon_mse']:.4f}"
    s += " — the KL term costs some sharpness." if vae["recon_mse"] > ae["recon_mse"] else "."
    return StepResult(image=image, table=table, notice=NOTICE + s[0].upper() + s[1:])


def _abs_corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return abs(float((a * b).sum()) / den) if den else 0.0


def picture_correlation(stats: lab.LatentStats, image: Image.Image) -> float:
    """|correlation| between the latent's first principal component and the photo's brightness,
    both at the latent's size: how much of the picture the latent map still shows."""
    _, h, w = stats.latent.shape
    grey = np.asarray(image.convert("L").resize((w, h), Image.BILINEAR), np.float64)
    pc1 = np.asarray(stats.preview.resize((w, h), Image.NEAREST), np.float64)[..., 0]
    return _abs_corr(grey, pc1)


def model_kind(enc: lab.Encoded) -> str:
    """``"vq"`` (decodes codebook entries), ``"kl"`` (a posterior with a std: a KL VAE) or
    ``"tiny"`` (one deterministic latent, no KL term) for the model that encoded ``enc``."""
    if enc.vae.quantized:
        return "vq"
    return "kl" if enc.std is not None else "tiny"


KIND_WORDS = {
    "kl": "a KL VAE",
    "tiny": "a deterministic (tiny) autoencoder",
    "vq": "a VQ autoencoder",
}


def step_latent_maps(
    model: str, folder: str | None, progress: Progress = no_progress
) -> StepResult:
    progress(0.1, f"encoding the astronaut with {model}")
    enc = lab.encode(_example("astronaut"), model, RESOLUTION, "square", folder)
    st = lab.latent_stats(enc)
    c, h, w = st.latent.shape
    W, H = st.image_size
    r = picture_correlation(st, enc.image)
    table = pd.DataFrame(
        [
            {"what": "model", "value": model},
            {"what": "image (W×H×3)", "value": f"{W}×{H}×3"},
            {"what": "latent (C×h×w)", "value": f"{c}×{h}×{w}"},
            {"what": "per side", "value": f"/{W // w}"},
            {"what": "compression", "value": f"{st.ratio:.1f}×"},
            {"what": "|corr| PC1 vs brightness", "value": f"{r:.2f}"},
        ]
    )
    s = (
        f"{KIND_WORDS[model_kind(enc)]}, {c} latent channels. The {W}×{H} photo becomes a "
        f"{c}-channel {w}×{h} grid (/{W // w} on each side): **{st.ratio:.1f}× fewer numbers**"
    )
    sd = sd_ratio()
    if model != SD_VAE and abs(st.ratio - sd) > 0.05:
        s += f" (with {SD_VAE}, 4 channels, it would be {sd:.0f}×)"
    s += (
        f". The latent's first principal component correlates **{r:.2f}** with the photo's "
        "brightness at that size"
    )
    s += " — the picture is still plainly there." if r >= 0.5 else "."
    return StepResult(
        image=pictures.hstack([enc.image, st.preview]), table=table, notice=with_model(model, s)
    )


def detail_error_ratio(rt: lab.RoundTrip) -> float:
    """Mean round-trip error on the photo's 10 % most detailed pixels (largest brightness
    gradient) over that on its smoothest half."""
    a = np.asarray(rt.original.convert("L"), np.float64)
    b = np.asarray(rt.reconstruction.convert("L"), np.float64)
    gy, gx = np.gradient(a)
    detail = np.hypot(gx, gy).ravel()
    err = np.abs(a - b).ravel()
    hi = err[detail >= np.quantile(detail, 0.9)].mean()
    lo = err[detail <= np.quantile(detail, 0.5)].mean()
    return _ratio(float(hi), float(lo))


PSNR_TIE_DB = 0.05  # PSNR changes smaller than this read as "about the same"
DETAIL_RATIO = 1.5  # detail error / smooth error from which the error "follows the detail"


def step_round_trip(model: str, folder: str | None, progress: Progress = no_progress) -> StepResult:
    photo = _example("astronaut")
    progress(0.05, f"round trip through {model}")
    rt = lab.roundtrip(photo, model, RESOLUTION, "square", "mean", 0, folder)
    gens = lab.generations(
        photo, model, GENERATIONS, RESOLUTION, "square", folder,
        lambda f, d: progress(0.3 + 0.7 * f, d),
    )  # fmt: skip
    table = pd.DataFrame(
        {
            "generation": range(1, GENERATIONS + 1),
            "psnr_db": [round(p, 2) for p in gens.psnr],
            "ssim": [round(s, 4) for s in gens.ssim],
        }
    )
    ratio = detail_error_ratio(rt)
    drop = gens.psnr[0] - gens.psnr[-1]  # the table's first and last rows
    decoded = {
        "latent": "decoded from its one latent: it has no posterior",
        "codes": "decoded from its codes",
    }.get(rt.source, f"decoded from the posterior {rt.source}")
    where = (
        "is brightest where the photo has fine detail"
        if ratio >= DETAIL_RATIO
        else "is not concentrated on the photo's fine detail"
    )
    s = (
        f"PSNR **{rt.psnr:.1f} dB**, SSIM **{rt.ssim:.3f}** after one round trip ({decoded}). "
        f"The error map (right; its bar is in 8-bit levels) {where}: the error on its 10 % most "
        f"detailed pixels is **{ratio:.1f}×** that on its smoothest half. After {GENERATIONS} "
        f"round trips PSNR is **{gens.psnr[-1]:.1f} dB**"
    )
    if drop >= PSNR_TIE_DB:
        s += f" ({drop:.1f} dB lower: the losses pile up)."
    elif drop <= -PSNR_TIE_DB:
        s += f" ({-drop:.1f} dB higher: repeated round trips brought it closer to the photo)."
    else:
        s += " (about the same)."
    error = pictures.with_colour_bar(rt.error, rt.error_vmax)
    image = pictures.hstack([rt.original, rt.reconstruction, error])
    return StepResult(image=image, table=table, notice=with_model(model, s))


NEAR_GAUSSIAN_KL = 0.1  # nats: a fitted Gaussian this close to N(0, 1) reads as "near N(0, 1)"


def step_kl_prior(model: str, folder: str | None, progress: Progress = no_progress) -> StepResult:
    progress(0.1, f"encoding the astronaut with {model}")
    enc = lab.encode(_example("astronaut"), model, RESOLUTION, "square", folder)
    st = lab.latent_stats(enc)
    g, kind, vae = st.gaussian, model_kind(enc), enc.vae
    kl = g["kl_to_standard_normal"]
    rows = [
        {"statistic": "kind", "value": KIND_WORDS[kind]},
        {"statistic": "mean", "value": round(g["mean"], 3)},
        {"statistic": "std", "value": round(g["std"], 3)},
        {"statistic": "scale, shift", "value": f"{vae.scaling_factor:g}, {vae.shift_factor:g}"},
    ]
    moments = f"The latent values have mean **{g['mean']:.2f}** and std **{g['std']:.2f}**"
    if kind == "vq":
        cb = lab.codes(enc)
        rows += [
            {"statistic": "codes used", "value": f"{cb.usage.used} of {cb.usage.size}"},
            {"statistic": "perplexity", "value": round(cb.usage.perplexity, 1)},
        ]
        s = (
            f"{KIND_WORDS[kind]}: its decoder sees codebook entries, not a draw from a "
            f"Gaussian, so there is no N(0, 1) prior to compare with and no KL term. {moments} "
            f"before quantisation; this image uses **{cb.usage.used} of {cb.usage.size}** codes "
            "(the histogram shows the continuous values, without an N(0, 1) curve)."
        )
        plot = plots.latent_histogram(
            st.latent, f"{model}: astronaut latent (no N(0,1) prior)", prior=False
        )
        return StepResult(plot=plot, table=_table(rows), notice=with_model(model, s))
    rows.insert(3, {"statistic": "KL to N(0,1) (nats)", "value": round(kl, 3)})
    s = f"{moments}: KL to N(0, 1) **{kl:.3f} nats** (0 would be a perfect match). "
    near = kl <= NEAR_GAUSSIAN_KL
    if kind == "kl":
        mean_std = float(np.mean(st.std))
        rows.append({"statistic": "mean posterior std", "value": round(mean_std, 4)})
        s += (
            f"It is {KIND_WORDS[kind]}: its training adds a KL term pulling each latent towards "
            f"N(0, 1), and the app multiplies by its scaling factor {vae.scaling_factor:g} "
            f"(shift {vae.shift_factor:g}). The latent is "
            f"{'near N(0, 1)' if near else 'not near N(0, 1)'} here. The encoder's own "
            f"uncertainty (mean posterior std **{mean_std:.3g}**) is "
            + (
                "tiny next to the spread of the values: the KL term shapes the latent but "
                "leaves it far from pure noise."
                if mean_std < 0.1 * g["std"]
                else "not small next to the spread of the values: a sample from the posterior "
                "is noticeably noisier than its mean."
            )
        )
    else:
        rows.append({"statistic": "posterior std", "value": "none (deterministic)"})
        unscaled = vae.scaling_factor == 1 and vae.shift_factor == 0
        s += (
            f"It is {KIND_WORDS[kind]}: no posterior, no sampling and no KL term in its "
            f"training, and its scale is {vae.scaling_factor:g}, shift {vae.shift_factor:g}"
            + (" (the app rescales nothing). " if unscaled else ". ")
        )
        s += (
            "Its latents still come out near N(0, 1): a TAESD-family encoder is distilled to "
            "reproduce the scaled latents of the KL VAE it stands in for, so it inherits their "
            "shape without a KL term of its own."
            if near
            else "Its latents are not near N(0, 1): with no KL term, nothing pulls them there."
        )
    plot = plots.latent_histogram(st.latent, f"{model}: astronaut latent vs N(0,1)")
    return StepResult(plot=plot, table=_table(rows), notice=with_model(model, s))


def _table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).astype({"value": str})


DOUBLE_EXPOSURE_DB = 20.0  # halfway frame this close (PSNR) to the crossfade's: a double exposure


def halfway(steps: int) -> tuple[int, float]:
    """Frames of a path with ``steps`` frames (t = 0 … 1) -> (index of the frame nearest the
    middle, its t): t = 0.5 exactly when ``steps`` is odd."""
    mid = (steps - 1) // 2 if steps % 2 else steps // 2
    return mid, mid / (steps - 1)


def step_interpolation(
    model: str, folder: str | None, progress: Progress = no_progress
) -> StepResult:
    it = lab.interpolate(
        _example("astronaut"), _example("coffee"), model, INTERP_STEPS, "slerp",
        INTERP_RESOLUTION, folder, progress,
    )  # fmt: skip
    n = len(it.frames)
    mid, t = halfway(n)
    gap = pictures_psnr(it.frames[mid], it.crossfade[mid])
    table = pd.DataFrame(
        [
            {"what": "A decoded vs A (dB)", "psnr_db": round(it.endpoint_psnr[0], 2)},
            {"what": "B decoded vs B (dB)", "psnr_db": round(it.endpoint_psnr[1], 2)},
            {
                "what": f"frame {mid + 1} of {n} (t = {t:g}) vs crossfade's (dB)",
                "psnr_db": round(gap, 2),
            },
        ]
    )
    strip = _vstack(it.strip, it.crossfade_strip)
    s = (
        f"top: the decoded slerp path, {n} frames from t = 0 to 1; bottom: the pixel "
        f"crossfade. The ends decode back at **{it.endpoint_psnr[0]:.1f} / "
        f"{it.endpoint_psnr[1]:.1f} dB**. The halfway frame (frame {mid + 1} of {n}, "
        f"t = {t:g}) is **{gap:.1f} dB** from the crossfade's"
    )
    s += (
        " — close to a plain double exposure."
        if gap >= DOUBLE_EXPOSURE_DB
        else " — not a plain double exposure: compare the two strips to see what differs."
    )
    return StepResult(image=strip, table=table, notice=with_model(model, s))


def pictures_psnr(a: Image.Image, b: Image.Image) -> float:
    from explorer.analysis import metrics

    return metrics.psnr(imaging.to_numpy_hwc(a), imaging.to_numpy_hwc(b.resize(a.size)))


def _vstack(top: Image.Image, bottom: Image.Image, gap: int = 4) -> Image.Image:
    bottom = bottom.resize((top.width, round(bottom.height * top.width / bottom.width)))
    out = Image.new("RGB", (top.width, top.height + gap + bottom.height), (255, 255, 255))
    out.paste(top, (0, 0))
    out.paste(bottom, (0, top.height + gap))
    return out


def _at(table: pd.DataFrame, name: str, strength: float) -> float:
    hit = table[(table.perturbation == name) & (table.strength == strength)]
    return float(hit.distance.iloc[0])


PERTURBATIONS_SHOWN = (  # (ladder, strength, what the table calls it)
    ("flip", 1.0, "mirror image (flip)"),
    ("hue", 180.0, "hue turned 180°"),
    ("greyscale", 1.0, "greyscale"),
    ("blur", 1.0, "blur 1 px"),
)
LAYOUT, COLOUR = ("flip",), ("hue", "greyscale")


def step_perturbations(
    model: str, folder: str | None, progress: Progress = no_progress
) -> StepResult:
    photo = imaging.load_image(_example("astronaut"))
    space = f"vae:{model}"
    m = perturb_lab.measure(photo, [space], folder, cache.shared(), progress)
    t = m.table[m.table.space == space]
    moved = {name: _at(t, name, strength) for name, strength, _ in PERTURBATIONS_SHOWN}
    rows = [
        {"change": label, "distance": round(moved[name], 4)}
        for name, _, label in PERTURBATIONS_SHOWN
    ]
    flip, hue, grey, blur = (moved[k] for k in ("flip", "hue", "greyscale", "blur"))
    s = (
        f"a mirror image moves the VAE latent **{flip:.0%}** of the way to an unrelated photo, "
        f"a 180° hue turn **{hue:.0%}**, greyscale **{grey:.0%}**, a 1 px blur **{blur:.0%}**"
    )
    layout, colour = max(moved[k] for k in LAYOUT), max(moved[k] for k in COLOUR)
    s += (
        " — the layout change, which keeps every object and every colour, moves it more than "
        "any colour change."
        if layout > colour
        else " — here a colour change moves it at least as much as the mirror image."
    )
    same = t[(t.perturbation == "same_meaning") & (t.strength > 0)]
    if len(same):
        d = float(same.distance.mean())
        rows.append({"change": f"another {m.refs.meaning} photo", "distance": round(d, 4)})
        s += f" Another photo of the same meaning ({m.refs.meaning}) is at **{d:.0%}**."
    s += (
        " Only the VAE is measured here, so the step works offline; CLIP and DINOv2 (which "
        "should shrug off a flip) are in the Perturbations tab once downloaded."
    )
    images = [im.resize((128, 128)) for _, im in m.ladders["flip"]]
    return StepResult(
        image=pictures.hstack(images), table=pd.DataFrame(rows), notice=with_model(model, s)
    )


def lesson_unet(n: int) -> str | None:
    """The UNet space step 7 adds for ``n`` images: the usable default at its default timestep,
    if its CPU estimate (if any) fits :data:`explorer.spaces.unet.CPU_BUDGET_S`; else None."""
    from explorer.models import registry
    from explorer.spaces import unet

    name = registry.default_unet()
    if name is None or (unet.estimate_seconds(name, n) or 0.0) > unet.CPU_BUDGET_S:
        return None
    return f"unet:{unet.model_ref(name, unet.DEFAULT_TIMESTEP)}"


def teaching_atlas(model: str, folder: str | None, progress: Progress = no_progress) -> atlas.Atlas:
    """The teaching set in the VAE's latent (the atlas tab's defaults, a PCA map), and in the
    UNet bottleneck where one is available (:func:`lesson_unet`)."""
    images = datasets.teaching_set()
    spaces = [f"vae:{model}", lesson_unet(len(images))]
    return atlas.build(images, [s for s in spaces if s], "pca", folder, cache.shared(), progress)


def unet_sentence(table: pd.DataFrame) -> str:
    """What the UNet rows of step 7's table say against the VAE's, on meaning ("" without)."""
    rows = table[(table.space == "unet") & (table.labels == "meaning")]
    if rows.empty:
        return ""
    u, model = float(rows.knn5.iloc[0]), str(rows.model.iloc[0])
    vae = float(table[(table.space == "vae") & (table.labels == "meaning")].knn5.iloc[0])
    if abs(u - vae) <= atlas.TIE:
        how = "about as often as in the VAE latent: the denoiser adds little meaning here"
    elif u > vae:
        how = "more often than in the VAE latent: denoising adds some meaning to the latent"
    else:
        how = "less often than in the VAE latent"
    return (
        f" **Where the semantics are:** in the UNet bottleneck ({model}) the vote gets the "
        f"meaning right for {u:.0%} of images, {how} (VAE {vae:.0%})."
    )


def knn5(table: pd.DataFrame, labels: str) -> tuple[float, float]:
    """(kNN-5, chance) of the first space's ``labels`` row of an atlas metrics table."""
    row = table[table.labels == labels].iloc[0]
    return float(row.knn5), float(row.chance)


def hierarchy_note(table: pd.DataFrame, space: str = "vae") -> str:
    """What ``space``'s rows of a teaching-set metrics table say, in the order the numbers give
    (:func:`explorer.ui.atlas.views.hierarchy`), and whether that is a perceptual compressor's
    order: its own photo first, its palette among other photos next, meaning last."""
    v = atlas.verdict(table[table.space == space])
    order = [name for name, _, _ in atlas.ranked_readings(v, space)]
    text = atlas_views.hierarchy(v, space)
    if order == ["source", "appearance", "meaning"]:
        text += (
            " — the order of a perceptual compressor: the photo itself (its layout and "
            "texture, which survive any recolouring) first, the palette next, meaning last."
        )
    else:
        text += " — not the order of a perceptual compressor (own photo, palette, meaning)."
    return text


def about_measured(table: pd.DataFrame, model: str) -> str:
    """About's measured paragraph from a teaching-set metrics table (its ``vae`` rows)."""
    return (
        f"**Measured in this session** (the teaching set in the latent of {model}): a vote of "
        f"an image's 5 nearest neighbours recovers {hierarchy_note(table)} These numbers "
        "come from the run; CLIP and DINOv2, where they open, are measured the same way in the "
        "Semantic atlas."
    )


def step_atlas(model: str, folder: str | None, progress: Progress = no_progress) -> StepResult:
    a = teaching_atlas(model, folder, progress)
    table = atlas.metrics_table(a, "pca")
    shown = table[table.labels.isin(["source", "appearance", "meaning"])][
        ["space", "labels", "knn5", "chance"]
    ].reset_index(drop=True)
    s = "a vote of each image's 5 nearest neighbours in the VAE latent recovers " + hierarchy_note(
        table
    )
    s += unet_sentence(table)
    s += (
        " The same question for CLIP or DINOv2 needs those models: tick them in the Semantic "
        "atlas tab once downloaded; this step does not show a stand-in."
    )
    return StepResult(table=shown, notice=with_model(model, s), also=unet_versions(table))


def unet_versions(table: pd.DataFrame) -> dict[str, str]:
    """The UNet spaces of an atlas metrics table -> {``name@tT``: its weights' version}."""
    from explorer.models import hub, registry

    out = {}
    for ref in table.loc[table.space == "unet", "model"].unique() if "model" in table else ():
        try:
            out[str(ref)] = hub.model_revision(registry.resolve_unet(str(ref).split("@")[0]))
        except Exception:  # named in the table, but no longer resolvable here
            out[str(ref)] = "unknown"
    return out
