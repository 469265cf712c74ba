"""The guided lesson ("Start here"): the eight steps' texts, the computation each runnable step
runs on a bundled example (through the lab, the playground, the perturbation lab and the atlas,
never a copy of their logic), and its "what to notice" line written from the numbers it got.

No gradio here: :func:`run_step` returns a :class:`StepResult` of plain values (a PIL image, a
plotly figure, a DataFrame, a markdown line) for the tab to show and the tests to check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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

NOTICE = "**What to notice.** "
RESOLUTION = 256  # the lab steps: big enough for a visible error map, seconds on a CPU
INTERP_RESOLUTION = 128
INTERP_STEPS = 6
GENERATIONS = 3


@dataclass(frozen=True)
class Step:
    title: str
    text: str
    button: str | None  # None: a text-only step
    shows: tuple[str, ...] = ()  # what the result holds: "image", "plot", "table"
    columns: tuple[str, ...] = ()  # the table's headers


STEPS: dict[int, Step] = {
    1: Step(
        "Autoencoders: why a variational one",
        "An autoencoder squeezes a picture into a few numbers (the latent) and rebuilds it. A "
        "plain AE is trained only to rebuild, so its latents land wherever is convenient; a VAE "
        "also pays a KL penalty for straying from N(0, I), so random draws from N(0, I) decode "
        "to something sensible. Here both are trained on 8×8 digits with a 2-D latent.",
        "Train (or load) the AE and the VAE",
        ("image", "table"),
        ("model", "recon_mse", "prior_kl", "sample_confidence"),
    ),
    2: Step(
        "Latent maps: the picture is still there",
        "Stable Diffusion's VAE turns a photo into a small grid of numbers, 8× smaller on each "
        "side, with a few channels per cell. Shown as colours (its first three principal "
        "components), the grid still looks like the photo: it is a re-coded picture. "
        "*Misconception:* VAE latents are not a semantic embedding — nearby latents mean "
        "similar pixels, not similar meaning (step 7 measures it).",
        "Encode the astronaut",
        ("image", "table"),
        ("what", "value"),
    ),
    3: Step(
        "Round trip: how much comes back",
        "Decoding the latent gives the picture back, not perfectly: PSNR (dB, higher is "
        "better) and SSIM (1 = identical structure) measure how close, and the error map shows "
        "where it differs. Repeating the round trip shows how the loss builds up. "
        "*Misconception:* the VAE is not where Stable Diffusion's GAN lives — the SD VAE is "
        "trained with a patch-GAN loss to keep its decodes sharp, but it is not the generator: "
        "the UNet makes the picture, the VAE only translates it to and from pixels.",
        "Round-trip the astronaut",
        ("image", "table"),
        ("generation", "psnr_db", "ssim"),
    ),
    4: Step(
        "The KL prior: how Gaussian is the latent?",
        "A KL VAE's training pushes each latent towards N(0, 1), and a scaling factor makes "
        "what the diffusion model sees roughly unit variance. The histogram compares the "
        "astronaut's latent values with the N(0, 1) curve; mean, std and KL to N(0, 1) put it "
        "in numbers.",
        "Measure the astronaut's latent",
        ("plot", "table"),
        ("statistic", "value"),
    ),
    5: Step(
        "Interpolation: halfway in latent space",
        "Walk in a straight (spherical) line from the astronaut's latent to the coffee's and "
        "decode each step; below it, a plain pixel crossfade. Because the latent is a re-coded "
        "picture, the halfway point is a blend of local colour and texture, not an image "
        "halfway in meaning.",
        "Interpolate astronaut → coffee",
        ("image", "table"),
        ("what", "psnr_db"),
    ),
    6: Step(
        "Perturbations: what moves the latent",
        "Mirror the photo or blur it a little, and measure how far its VAE latent moves, as a "
        "share of the distance to an unrelated photo (100 % = as far as a different picture). A "
        "mirror image keeps every object; a space that followed meaning would barely move.",
        "Perturb the astronaut (VAE)",
        ("image", "table"),
        ("change", "distance"),
    ),
    7: Step(
        "The atlas: meaning or appearance?",
        "The teaching set is 16 photos, each recoloured into 7 palettes. For every image we ask: "
        "do most of its 5 nearest neighbours in the VAE latent (other photos only, not its own "
        "recolourings) show the same thing, or share the same palette? High palette agreement "
        "and low meaning agreement is what a perceptual compressor looks like.",
        "Build the VAE atlas of the teaching set",
        ("table",),
        ("space", "labels", "knn5", "chance"),
    ),
    8: Step(
        "Where Stable Diffusion's semantics come from",
        "The prompt is read by the **CLIP text encoder**; its token embeddings steer the UNet "
        "through **cross-attention** at every denoising step, and the UNet works inside the "
        "VAE's latent space. Probing studies find the human-like semantic attributes in CLIP's "
        "representations rather than in the reverse diffusion process itself. The VAE only "
        "encodes and decodes pixels. *Misconception:* the VAE does not understand the prompt "
        "— it never sees it. This step has no button: comparing CLIP or DINOv2 with the VAE "
        "needs those models, which the Semantic atlas and Perturbations tabs load when they "
        "have been downloaded (`python -m explorer download`). Where a Stable Diffusion UNet is "
        "available, step 7 also measures its bottleneck (the forum's guess: more meaning than "
        "the VAE latent, less than a model trained for it) and says what the numbers show.",
        None,
    ),
}
RUNNABLE = tuple(n for n, s in STEPS.items() if s.button)


@dataclass
class StepResult:
    image: Image.Image | None = None
    plot: object | None = None  # a plotly figure
    table: pd.DataFrame | None = None
    notice: str = ""


def parse_step(value) -> int | None:
    """A ``?step=`` value -> a step number in 1..8, or None."""
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return n if n in STEPS else None


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
    sheets = [
        figs.tile_images(pg.prior_samples(t, 16, seed=0), cols=8, scale=4) for t in models.values()
    ]
    image = pictures.hstack([Image.fromarray(s).convert("RGB") for s in sheets], gap=16)
    ae, vae = m["ae"], m["vae"]
    s = (
        f"The VAE's latents are **{vae['prior_kl']:.3g} nats** from N(0, I), the plain AE's "
        f"**{ae['prior_kl']:.3g}**"
    )
    if vae["prior_kl"] < ae["prior_kl"]:
        s += f" — {_ratio(ae['prior_kl'], vae['prior_kl']):.0f}× further. "
    else:
        s += " — this time the AE's are not further away. "
    s += (
        f"Random N(0, I) draws (left AE, right VAE) decode to digits the classifier is "
        f"{vae['sample_confidence']:.0%} sure of for the VAE, {ae['sample_confidence']:.0%} for "
        f"the AE. Reconstruction error: VAE {vae['recon_mse']:.4f}, AE {ae['recon_mse']:.4f}"
    )
    s += " — the KL term costs some sharpness." if vae["recon_mse"] > ae["recon_mse"] else "."
    return StepResult(image=image, table=table, notice=NOTICE + s)


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


def step_latent_maps(
    model: str, folder: str | None, progress: Progress = no_progress
) -> StepResult:
    progress(0.1, "encoding")
    enc = lab.encode(_example("astronaut"), model, RESOLUTION, "square", folder)
    st = lab.latent_stats(enc)
    c, h, w = st.latent.shape
    W, H = st.image_size
    r = picture_correlation(st, enc.image)
    table = pd.DataFrame(
        [
            {"what": "image (W×H×3)", "value": f"{W}×{H}×3"},
            {"what": "latent (C×h×w)", "value": f"{c}×{h}×{w}"},
            {"what": "per side", "value": f"/{W // w}"},
            {"what": "compression", "value": f"{st.ratio:.1f}×"},
            {"what": "|corr| PC1 vs brightness", "value": f"{r:.2f}"},
        ]
    )
    s = (
        f"The {W}×{H} photo becomes a {c}-channel {w}×{h} grid (/{W // w} on each side): "
        f"**{st.ratio:.1f}× fewer numbers**. The latent's first principal component correlates "
        f"**{r:.2f}** with the photo's brightness at that size"
    )
    s += " — the picture is still plainly there." if r >= 0.5 else "."
    return StepResult(
        image=pictures.hstack([enc.image, st.preview]), table=table, notice=NOTICE + s
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


def step_round_trip(model: str, folder: str | None, progress: Progress = no_progress) -> StepResult:
    photo = _example("astronaut")
    progress(0.05, "round trip")
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
    drop = rt.psnr - gens.psnr[-1]
    s = (
        f"PSNR **{rt.psnr:.1f} dB**, SSIM **{rt.ssim:.3f}** after one round trip. The error map "
        f"(right) is brightest where the photo has fine detail: the error on its 10 % most "
        f"detailed pixels is **{ratio:.1f}×** that on its smoothest half. After {GENERATIONS} "
        f"round trips PSNR is **{gens.psnr[-1]:.1f} dB**"
    )
    s += f" ({drop:.1f} dB lower: the losses pile up)." if drop >= 0.05 else " (barely lower)."
    image = pictures.hstack([rt.original, rt.reconstruction, rt.error])
    return StepResult(image=image, table=table, notice=NOTICE + s)


def step_kl_prior(model: str, folder: str | None, progress: Progress = no_progress) -> StepResult:
    progress(0.1, "encoding")
    enc = lab.encode(_example("astronaut"), model, RESOLUTION, "square", folder)
    st = lab.latent_stats(enc)
    g = st.gaussian
    rows = [
        {"statistic": "mean", "value": round(g["mean"], 3)},
        {"statistic": "std", "value": round(g["std"], 3)},
        {"statistic": "KL to N(0,1) (nats)", "value": round(g["kl_to_standard_normal"], 3)},
    ]
    s = (
        f"The latent values have mean **{g['mean']:.2f}** and std **{g['std']:.2f}**: "
        f"KL to N(0, 1) **{g['kl_to_standard_normal']:.3f} nats** (0 would be a perfect match)"
    )
    if st.std is None:
        rows.append({"statistic": "posterior std", "value": "none (deterministic)"})
        s += (
            f". **{st.model}** is a deterministic autoencoder: it has no posterior std, so there "
            "is no sampling and no per-latent KL term in its training — how close it is to "
            "N(0, 1) comes from its scaling alone."
        )
    else:
        mean_std = float(np.mean(st.std))
        rows.append({"statistic": "mean posterior std", "value": round(mean_std, 4)})
        s += (
            f". The encoder's own uncertainty (mean posterior std **{mean_std:.3g}**) is "
            f"{'tiny' if mean_std < 0.1 * g['std'] else 'not small'} next to the spread of the "
            "values: the KL term shapes the latent but leaves it far from pure noise."
        )
    table = pd.DataFrame(rows).astype({"value": str})
    plot = plots.latent_histogram(st.latent, f"{st.model}: astronaut latent vs N(0,1)")
    return StepResult(plot=plot, table=table, notice=NOTICE + s)


def step_interpolation(
    model: str, folder: str | None, progress: Progress = no_progress
) -> StepResult:
    it = lab.interpolate(
        _example("astronaut"), _example("coffee"), model, INTERP_STEPS, "slerp",
        INTERP_RESOLUTION, folder, progress,
    )  # fmt: skip
    mid = INTERP_STEPS // 2
    gap = pictures_psnr(it.frames[mid], it.crossfade[mid])
    table = pd.DataFrame(
        [
            {"what": "A decoded vs A (dB)", "psnr_db": round(it.endpoint_psnr[0], 2)},
            {"what": "B decoded vs B (dB)", "psnr_db": round(it.endpoint_psnr[1], 2)},
            {"what": f"latent frame {mid + 1} vs crossfade (dB)", "psnr_db": round(gap, 2)},
        ]
    )
    strip = _vstack(it.strip, it.crossfade_strip)
    s = (
        f"Top: decoded latent path; bottom: pixel crossfade. The ends decode back at "
        f"**{it.endpoint_psnr[0]:.1f} / {it.endpoint_psnr[1]:.1f} dB**. Frame {mid + 1} of the "
        f"latent path is **{gap:.1f} dB** from the crossfade's"
    )
    s += (
        " — close to a plain double exposure."
        if gap >= 20
        else " — not a plain double exposure: compare the two strips to see what differs."
    )
    return StepResult(image=strip, table=table, notice=NOTICE + s)


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


def step_perturbations(
    model: str, folder: str | None, progress: Progress = no_progress
) -> StepResult:
    photo = imaging.load_image(_example("astronaut"))
    space = f"vae:{model}"
    m = perturb_lab.measure(photo, [space], folder, cache.shared(), progress)
    t = m.table[m.table.space == space]
    flip, blur = _at(t, "flip", 1.0), _at(t, "blur", 1.0)
    same = t[(t.perturbation == "same_meaning") & (t.strength > 0)]
    rows = [
        {"change": "mirror image (flip)", "distance": round(flip, 4)},
        {"change": "blur 1 px", "distance": round(blur, 4)},
    ]
    s = (
        f"A mirror image moves the VAE latent **{flip:.0%}** of the way to an unrelated photo; "
        f"a 1 px blur moves it **{blur:.0%}**"
    )
    s += (
        " — the flip, which keeps every object, moves it more."
        if flip > blur
        else " — here the blur moves it at least as much as the flip."
    )
    if len(same):
        d = float(same.distance.mean())
        rows.append({"change": f"another {m.refs.meaning} photo", "distance": round(d, 4)})
        s += f" Another photo of the same meaning ({m.refs.meaning}) is at **{d:.0%}**."
    s += (
        " Only the VAE is measured here, so the step works offline; CLIP and DINOv2 (which "
        "should shrug off a flip) are in the Perturbations tab once downloaded."
    )
    images = [im.resize((128, 128)) for _, im in m.ladders["flip"]]
    return StepResult(image=pictures.hstack(images), table=pd.DataFrame(rows), notice=NOTICE + s)


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


def step_atlas(model: str, folder: str | None, progress: Progress = no_progress) -> StepResult:
    a = teaching_atlas(model, folder, progress)
    table = atlas.metrics_table(a, "pca")
    shown = table[table.labels.isin(["meaning", "appearance"])][
        ["space", "labels", "knn5", "chance"]
    ].reset_index(drop=True)
    table_vae = table[table.space == "vae"]
    meaning, m_chance = knn5(table_vae, "meaning")
    look, a_chance = knn5(table_vae, "appearance")
    s = (
        f"In the VAE latent a vote of the 5 nearest other photos gets an image's **meaning "
        f"right for {meaning:.0%}** of images (chance {m_chance:.0%}) and its **palette for "
        f"{look:.0%}** (chance {a_chance:.0%})"
    )
    s += (
        " — appearance wins: the latent groups by colour, not by what is shown."
        if look > meaning
        else " — here meaning is not behind appearance."
    )
    s += unet_sentence(table)
    s += (
        " The same question for CLIP or DINOv2 needs those models: tick them in the Semantic "
        "atlas tab once downloaded; this step does not show a stand-in."
    )
    return StepResult(table=shown, notice=NOTICE + s)


RUNNERS: dict[int, Callable[..., StepResult]] = {
    2: step_latent_maps,
    3: step_round_trip,
    4: step_kl_prior,
    5: step_interpolation,
    6: step_perturbations,
    7: step_atlas,
}


def run_step(
    n: int, model: str, folder: str | None = None, progress: Progress = no_progress
) -> StepResult:
    """Step ``n`` (1-7) on its bundled example with ``model`` -> :class:`StepResult`."""
    n = parse_step(n) or 0
    if n not in RUNNABLE:
        raise ExplorerError(f"Steps 1-{RUNNABLE[-1]} can be run; step 8 is text only.")
    if n == 1:
        return step_autoencoders(progress)
    return RUNNERS[n](model, folder or None, progress)
