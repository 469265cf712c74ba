"""The Autoencoders tab (the playground): AE vs VAE vs VQ-VAE on the 8x8 digits, side by side."""

from __future__ import annotations

import math

import gradio as gr
import numpy as np
import pandas as pd

from .. import playground as pg
from .. import playground_figures as figs
from .. import plots
from ..errors import ExplorerError
from ..playground_cache import get_trained
from .common import ImageOut, progress_adapter, user_errors

INTRO = """
Why does Stable Diffusion use a **variational** autoencoder? Three tiny autoencoders with the same
2-D latent are trained on scikit-learn's 1,797 handwritten 8×8 digits: a plain **AE**
(reconstruction only), a **VAE** (+ β·KL to N(0, I)) and a **VQ-VAE** (the latent snapped to one
of K codebook vectors). Then we *sample the prior* — N(0, I) for AE and VAE, a random code for the
VQ-VAE — and decode, the way a generator would. A few seconds of CPU per model; trained models
are cached, so a second visitor with the same settings waits for nothing.
"""

TITLES = {"ae": "AE (plain)", "vae": "VAE", "vq": "VQ-VAE"}
COLUMNS = list(figs.CSV_COLUMNS)
GRID_N = 15


def _configs(beta, codebook_size, epochs, seed) -> dict[str, pg.TrainConfig]:
    try:
        return {
            "ae": pg.TrainConfig("ae", epochs=epochs, seed=seed),
            "vae": pg.TrainConfig("vae", epochs=epochs, seed=seed, beta=beta),
            "vq": pg.TrainConfig("vq", epochs=epochs, seed=seed, codebook_size=codebook_size),
        }
    except (TypeError, ValueError) as exc:
        raise ExplorerError(
            f"Those settings cannot be trained ({exc}). Use 1-2000 epochs, β in 0-100, a "
            "codebook of 2-512 codes and a seed >= 0."
        ) from exc


def _train_all(cfgs: dict[str, pg.TrainConfig], progress) -> dict[str, pg.Trained]:
    out = {}
    for k, (model, cfg) in enumerate(cfgs.items()):

        def prog(f: float, desc: str, k=k, model=model) -> None:
            progress((k + min(max(f, 0.0), 1.0)) / len(cfgs), f"{TITLES[model]}: {desc}")

        prog(0.0, "training (or loading from the cache)")
        out[model] = get_trained(cfg, prog)
    return out


def _grid(trained: pg.Trained, wide: bool) -> np.ndarray:
    grid = figs.decoded_grid(trained, GRID_N, 6.0 if wide else 3.0)
    return figs.tile_images(figs.grid_tiles(grid, GRID_N), cols=GRID_N, scale=4, gap=1)


def _pair(a, b) -> tuple[int, int]:
    try:
        da, db = int(a), int(b)
    except (TypeError, ValueError):
        raise ExplorerError("Pick two digits between 0 and 9 to interpolate between.") from None
    if not (0 <= da <= 9 and 0 <= db <= 9) or da != a or db != b:
        raise ExplorerError("Pick two digits between 0 and 9 to interpolate between.")
    labels = pg.digits()[1]
    return int(np.argmax(labels == da)), int(np.argmax(labels == db))


def _interp(trained: pg.Trained, i: int, j: int) -> np.ndarray:
    return figs.tile_images(figs.interpolate(trained, i, j, 10), cols=5, scale=6)


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def what_the_numbers_show(m: dict[str, dict[str, float]], codes_used: int, codes: int) -> str:
    """The evaluate() numbers of ae / vae / vq -> a few sentences that say what they show (the
    comparisons come out the way the numbers are, not the way the textbook says)."""
    ae, vae, vq = m["ae"], m["vae"], m["vq"]
    out = []
    if vae["prior_kl"] < ae["prior_kl"]:
        out.append(
            f"The VAE's latents match the prior far better: KL to N(0, I) is "
            f"**{vae['prior_kl']:.3g}** nats against **{ae['prior_kl']:.3g}** for the plain AE, "
            "whose codes drift wherever reconstruction wants them."
        )
    else:
        out.append(
            f"This run the VAE's KL to N(0, I) (**{vae['prior_kl']:.3g}** nats) is *not* below the "
            f"AE's (**{ae['prior_kl']:.3g}**): try more epochs or a larger β."
        )
    ratio = vae["recon_mse"] / max(ae["recon_mse"], 1e-12)
    if ratio > 1.0:
        out.append(
            f"The price is sharpness: the VAE reconstructs worse (MSE **{vae['recon_mse']:.4f}** "
            f"vs **{ae['recon_mse']:.4f}**, {ratio:.1f}×)."
        )
    else:
        out.append(
            f"Here the VAE even reconstructs as well as the AE (MSE {vae['recon_mse']:.4f} vs "
            f"{ae['recon_mse']:.4f})."
        )
    conf = {k: m[k]["sample_confidence"] for k in ("ae", "vae", "vq")}
    best = max(conf, key=conf.get)
    line = (
        f"The digit classifier is most confident about the **{TITLES[best]}**'s prior samples "
        f"({', '.join(f'{TITLES[k]} {_pct(v)}' for k, v in conf.items())})."
    )
    if conf["ae"] >= conf["vae"]:
        line += (
            " So the AE's samples are *not* worse by this measure: confidence says a sample looks "
            "like some digit, not that the prior covers all of them — look at the samples below "
            "(and at the wide plane's holes) before crediting the VAE."
        )
    else:
        line += " Decoding N(0, I) lands on digits more often when the prior was trained for."
    out.append(line)
    out.append(
        f"5-NN digit accuracy in the 2-D latent: AE {_pct(ae['latent_knn5'])}, VAE "
        f"{_pct(vae['latent_knn5'])}, VQ-VAE {_pct(vq['latent_knn5'])}. The VQ-VAE uses "
        f"**{codes_used} of its {codes} codes**."
    )
    return "**What the numbers show.** " + " ".join(out)


def _table(m: dict[str, dict[str, float]]) -> pd.DataFrame:
    rows = []
    for model, v in m.items():
        rows.append(
            {
                "model": model,
                **{
                    k: (None if math.isnan(v[k]) else round(v[k], 5))
                    for k in COLUMNS
                    if k != "model"
                },
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


@user_errors("Training the autoencoders")
def on_playground(
    beta, codebook_size, epochs, seed, wide, digit_a, digit_b, progress=gr.Progress()
):
    cfgs = _configs(beta, codebook_size, epochs, seed)
    i, j = _pair(digit_a, digit_b)
    models = _train_all(cfgs, progress_adapter(progress))
    progress(0.97, desc="measuring and drawing")
    metrics = {k: pg.evaluate(t) for k, t in models.items()}
    scatters, grids, samples, interps = [], [], [], []
    for model, trained in models.items():
        z, y = figs.latents(trained)
        marks = pg.codebook(trained) if model == "vq" else None
        scatters.append(
            plots.latent_scatter(z, y, f"{TITLES[model]}: latents of 1,797 digits", marks)
        )
        grids.append(_grid(trained, wide))
        samples.append(figs.tile_images(figs.prior_samples(trained, 32, seed=0), cols=8, scale=5))
        interps.append(_interp(trained, i, j))
    usage = figs.codebook_usage(models["vq"])
    chart = figs.bar_chart(usage)
    note = what_the_numbers_show(metrics, int((usage > 0).sum()), len(usage))
    return (*scatters, *grids, *samples, *interps, chart, _table(metrics), note)


@user_errors("Drawing the latent plane")
def on_playground_plane(beta, codebook_size, epochs, seed, wide, progress=gr.Progress()):
    models = _train_all(_configs(beta, codebook_size, epochs, seed), progress_adapter(progress))
    return tuple(_grid(t, wide) for t in models.values())


@user_errors("Interpolating")
def on_playground_interp(
    beta, codebook_size, epochs, seed, digit_a, digit_b, progress=gr.Progress()
):
    i, j = _pair(digit_a, digit_b)
    models = _train_all(_configs(beta, codebook_size, epochs, seed), progress_adapter(progress))
    return tuple(_interp(t, i, j) for t in models.values())


def _picture(caption: str) -> ImageOut:
    """A caption line above an output picture (a label badge would hide its top row)."""
    gr.Markdown(caption, elem_classes=["playground-caption"])
    return ImageOut(label=caption, show_label=False, interactive=False, format="png")


def build() -> None:
    """The Autoencoders tab's layout and wiring (inside an open gr.Blocks)."""
    with gr.Tab("Autoencoders", id="autoencoders"):
        gr.Markdown(INTRO)
        with gr.Row(equal_height=True):
            beta = gr.Slider(0, 8, value=1.0, step=0.25, label="β (VAE: weight of the KL term)")
            codebook_size = gr.Slider(2, 128, value=32, step=1, label="Codebook size K (VQ-VAE)")
            epochs = gr.Slider(1, 400, value=150, step=1, label="Epochs (4 steps each)")
            seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
            train_btn = gr.Button("Train", variant="primary", scale=0, min_width=120)
        with gr.Row(equal_height=True):
            wide = gr.Checkbox(
                value=False,
                label="Wider plane (decode [-6, 6]² instead of [-3, 3]²: holes show up)",
            )
            digit_a = gr.Number(
                value=0, precision=0, minimum=0, maximum=9, label="Interpolate from digit"
            )
            digit_b = gr.Number(value=1, precision=0, minimum=0, maximum=9, label="to digit")
        note = gr.Markdown(elem_id="playground-note")
        scatters, grids, samples, interps = [], [], [], []
        with gr.Row():
            for model in pg.MODELS:
                with gr.Column(min_width=280):
                    gr.Markdown(f"### {TITLES[model]}")
                    scatters.append(
                        gr.Plot(label=f"{TITLES[model]} latent space", show_label=False)
                    )
                    grids.append(_picture("Decoded grid over the latent plane (z₁ →, z₂ ↑)"))
                    samples.append(_picture("Prior samples, decoded"))
                    interps.append(_picture("Interpolation: digit A → digit B, 10 steps"))
                    if model == "vq":
                        usage = _picture("Codebook usage: digits per code (red: unused)")
        table = gr.Dataframe(
            headers=COLUMNS, interactive=False, label="Measurements (playground.evaluate)"
        )
        gr.Markdown(
            "*recon_mse*: mean squared pixel error of the 1,797 reconstructions. *prior_kl*: KL "
            "(nats) from a Gaussian fitted to the data's latents to N(0, I) (none for the "
            "VQ-VAE, whose prior is a uniform choice of code). *sample_confidence*: the digit "
            "classifier's mean top probability on 500 decoded prior samples. *latent_knn5*: "
            "leave-one-out 5-NN digit accuracy in the 2-D latent."
        )

    settings = [beta, codebook_size, epochs, seed]
    train_btn.click(
        on_playground,
        [*settings, wide, digit_a, digit_b],
        [*scatters, *grids, *samples, *interps, usage, table, note],
        api_name="playground",
    )
    wide.change(on_playground_plane, [*settings, wide], grids, api_name="playground_plane")
    for box in (digit_a, digit_b):
        box.change(
            on_playground_interp,
            [*settings, digit_a, digit_b],
            interps,
            api_name=False,
        )
