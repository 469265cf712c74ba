"""The Perturbations tab's handlers: measure a photo's ladders in the chosen spaces; show a ladder."""

from __future__ import annotations

import gradio as gr

from explorer.core.errors import ExplorerError
from explorer.images import io as imaging
from explorer.perturb import ladder as perturb
from explorer.perturb import measure as perturb_lab
from explorer.spaces import baselines, cache
from explorer.ui.components import (
    check_space_refs,
    progress_adapter,
    space_refs,
    user_errors,
)
from explorer.ui.perturb.views import FAMILY_CHOICES, _figure, _strip, _strip_label, what_to_notice
from explorer.ui.pricing import perturb_price, priced


def _spaces(checked, vae_model, clip_model, dino_model) -> list[str]:
    chosen = {"vae": vae_model, "clip": clip_model, "dino": dino_model, **baselines.MODELS}
    return space_refs(checked, FAMILY_CHOICES, chosen)


def _load(image) -> object:
    if image is None:
        raise ExplorerError("Add an image first (or click the astronaut example).")
    return imaging.load_image(image)


@priced(perturb_price)
@user_errors("Measuring the perturbations")
def on_perturb(
    image, checked, vae_model, clip_model, dino_model, folder, which, progress=gr.Progress()
):
    spaces = _spaces(checked, vae_model, clip_model, dino_model)
    if not spaces:
        raise ExplorerError("Tick at least one space (VAE, CLIP, DINOv2 or a control).")
    folder = check_space_refs(spaces, folder)
    photo = _load(image)
    measured = perturb_lab.measure(
        photo, spaces, folder, cache.shared(), progress_adapter(progress)
    )
    table = measured.table.assign(distance=measured.table.distance.round(4))
    which = which if which in measured.ladders else "flip"
    strip = _strip(measured.ladders[which])
    return (
        _figure(measured.table),
        what_to_notice(measured, spaces),
        gr.update(value=strip, label=_strip_label(which, measured.ladders[which])),
        table,
    )


@user_errors("Showing the perturbed images")
def on_perturb_strip(image, which):
    photo = _load(image)
    if which == perturb.SAME_MEANING:
        refs = perturb_lab.references(photo)
        if not refs.same_meaning:
            raise ExplorerError(
                "This photo is not one of the teaching set's, so it has no same-meaning photos."
            )
        ladder = perturb.ladder(photo, which, perturb_lab.SIZE, same_meaning=refs.same_meaning)
    else:
        ladder = perturb.ladder(photo, which, perturb_lab.SIZE)
    return gr.update(value=_strip(ladder), label=_strip_label(which, ladder))
