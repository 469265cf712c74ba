"""The Autoencoders tab's handlers: train the three models (cached), the latent plane, interpolation."""

from __future__ import annotations

import gradio as gr
import numpy as np

from explorer.core.errors import ExplorerError
from explorer.images import plots
from explorer.playground import digits as pg
from explorer.playground import drawing
from explorer.playground import figures as figs
from explorer.playground.cache import get_trained
from explorer.ui.components import progress_adapter, user_errors
from explorer.ui.playground.views import (
    TITLES,
    _grid,
    _interp,
    _table,
    drawing_note,
    what_the_numbers_show,
)
from explorer.ui.pricing import playground_price, priced


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


def _pair(a, b) -> tuple[int, int]:
    try:
        da, db = int(a), int(b)
    except (TypeError, ValueError):
        raise ExplorerError("Pick two digits between 0 and 9 to interpolate between.") from None
    if not (0 <= da <= 9 and 0 <= db <= 9) or da != a or db != b:
        raise ExplorerError("Pick two digits between 0 and 9 to interpolate between.")
    labels = pg.digits()[1]
    return int(np.argmax(labels == da)), int(np.argmax(labels == db))


@priced(playground_price)
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


@priced(playground_price)
@user_errors("Drawing the latent plane")
def on_playground_plane(beta, codebook_size, epochs, seed, wide, progress=gr.Progress()):
    models = _train_all(_configs(beta, codebook_size, epochs, seed), progress_adapter(progress))
    return tuple(_grid(t, wide) for t in models.values())


@priced(playground_price)
@user_errors("Interpolating")
def on_playground_interp(
    beta, codebook_size, epochs, seed, digit_a, digit_b, progress=gr.Progress()
):
    i, j = _pair(digit_a, digit_b)
    models = _train_all(_configs(beta, codebook_size, epochs, seed), progress_adapter(progress))
    return tuple(_interp(t, i, j) for t in models.values())


def sketch_canvas(value) -> np.ndarray | None:
    """A gr.Sketchpad value ({"background", "layers", "composite"}, numpy RGBA) -> the drawn
    canvas: the composite, else the layers painted over one another; None for no drawing."""
    if not isinstance(value, dict):
        return None
    composite = value.get("composite")
    if composite is not None:
        return np.asarray(composite)
    layers = [np.asarray(x) for x in value.get("layers") or [] if x is not None]
    if not layers:
        return None
    from PIL import Image

    base = Image.new("RGBA", (layers[0].shape[1], layers[0].shape[0]), (0, 0, 0, 0))
    for layer in layers:
        im = Image.fromarray(layer).convert("RGBA").resize(base.size)
        base = Image.alpha_composite(base, im)
    return np.asarray(base)


@user_errors("Reading the drawing")
def on_playground_draw(sketch, beta, codebook_size, epochs, seed, progress=gr.Progress()):
    drawn = drawing.to_digit(sketch_canvas(sketch))  # a bad drawing is refused before training
    models = _train_all(_configs(beta, codebook_size, epochs, seed), progress_adapter(progress))
    places = {model: drawing.place(t, drawn.pixels) for model, t in models.items()}
    scatters, decodes = [], []
    for model, trained in models.items():
        z, y = figs.latents(trained)
        marks = pg.codebook(trained) if model == "vq" else None
        title = f"{TITLES[model]}: your drawing (★) among 1,797 digits"
        scatters.append(plots.latent_scatter(z, y, title, marks, star=places[model].z))
        decodes.append(figs.tile_images(places[model].decoded[None], cols=1, scale=16))
    seen = figs.tile_images(drawn.pixels[None], cols=1, scale=16)
    note = drawing_note(places, pg.classify(drawn.pixels[None])[0], drawn.thickened)
    return (seen, *scatters, *decodes, note)
