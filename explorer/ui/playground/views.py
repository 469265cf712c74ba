"""The Autoencoders tab's words, tables and figures: what the numbers show, the metrics table, the
decoded grids and interpolations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from PIL import Image

from explorer.images import pictures
from explorer.playground import digits as pg
from explorer.playground import figures as figs

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


PLANE = 3.0  # the plain plane: [-3, 3]², where N(0, I) draws fall


def plane_extent(trained: pg.Trained, wide: bool) -> float:
    """Half the side of the latent square a grid decodes: :data:`PLANE`, or (``wide``) the
    square that holds the model's own training latents (the 99.5th percentile of their
    absolute coordinates, rounded up, at least :data:`PLANE`): where an AE's latents leave gaps
    inside it, the decoder was never trained."""
    if not wide:
        return PLANE
    z = figs.latents(trained)[0]
    return max(PLANE, float(math.ceil(np.percentile(np.abs(z), 99.5))))


def _grid(trained: pg.Trained, wide: bool) -> Image.Image:
    e = plane_extent(trained, wide)
    grid = figs.decoded_grid(trained, GRID_N, e)
    tiles = figs.tile_images(figs.grid_tiles(grid, GRID_N), cols=GRID_N, scale=4, gap=1)
    return pictures.captioned(Image.fromarray(tiles).convert("RGB"), f"z in [-{e:g}, {e:g}]²")


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
            "(and at the wider plane, which spans the AE's whole latent range) before crediting the VAE."
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


# --------------------------------------------------------------------------- a drawn digit

DRAW_INTRO = """
Pick the brush (left of the box), draw a digit (0-9) with the mouse, as tall as most of the box,
and press the button: it is read the way the training digits were made (cut to its ink, scaled into a 32×32
bitmap, counted in 4×4 blocks: 8×8 values of 0..16), encoded by the three models trained above
(the same settings), and shown as a ★ on each latent scatter with each model's decode beside it.
Draw a 3 and see where it lands; draw a scribble and see where the AE puts it.
"""


def _digits_phrase(neighbours: tuple[int, ...]) -> str:
    counts = {d: neighbours.count(d) for d in dict.fromkeys(neighbours)}
    top, n = max(counts.items(), key=lambda kv: (kv[1], -neighbours.index(kv[0])))
    if n == len(neighbours):
        return f"among **{top}s** (all {n} of its nearest training digits)"
    if n > len(neighbours) / 2:
        return f"mostly among **{top}s** ({n} of its {len(neighbours)} nearest training digits)"
    listed = ", ".join(str(d) for d in neighbours)
    return f"between digits (its {len(neighbours)} nearest training digits: {listed})"


def drawing_note(places: dict, probs: np.ndarray, thickened: int) -> str:
    """Each model's :class:`explorer.playground.drawing.Placement` of the drawing, the digit
    classifier's (10,) probabilities for it, the pixel rings added to a thin line -> what the
    numbers show, in a few sentences."""
    guess = int(np.argmax(probs))
    out = [
        f"**Your drawing** reads as a **{guess}** to the digit classifier "
        f"({_pct(float(probs[guess]))} sure)."
    ]
    if thickened:
        out.append(
            f"(Its line was thickened by {thickened} pixel ring{'s' * (thickened > 1)} in the "
            "32×32 bitmap, to about the training digits' ink.)"
        )
    for model, p in places.items():
        where = f"(z = {p.z[0]:.2f}, {p.z[1]:.2f})"
        line = f"**{TITLES[model]}** puts it at {where}, {_digits_phrase(p.neighbours)}"
        if p.far:
            line += (
                f" — but far from every training digit: {p.nearest:.2f} from the nearest, where "
                f"95 % of the digits have a neighbour within {p.spacing:.2f}, so its decoder "
                "was never trained there"
            )
        if p.code is not None:
            line += f"; the VQ-VAE snaps it to code #{p.code} and decodes that"
        out.append(line + ".")
    return " ".join(out)
