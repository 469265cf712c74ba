"""The VAE lab tab's handlers: encode, round trip, generations, compare, interpolate, edit, and
scanning a models folder; each returns the tab's outputs, made by :mod:`.views`."""

from __future__ import annotations

import os

import gradio as gr
import pandas as pd

from explorer.core import public
from explorer.core.errors import BadImageError, ExplorerError
from explorer.lab import actions as lab
from explorer.models import registry
from explorer.ui import availability
from explorer.ui.components import progress_adapter, user_errors
from explorer.ui.lab import views
from explorer.ui.pricing import lab_price, priced


def checked(folder, resolution, *model_refs) -> str | None:
    """Enforce public mode's rules on what a request asks for; returns the folder to use."""
    allowed = str(registry.models_dir() or "")
    folder = public.check_folder(folder, allowed)
    if resolution is not None:
        public.check_resolution(int(resolution))
    known = registry.available_models(allowed or None)
    for ref in model_refs:
        public.check_model(ref, known)
    return folder


@priced(lab_price("encode"))
@user_errors("Encoding")
def on_encode(image, model, resolution, mode, folder, scale):
    folder = checked(folder, resolution, model)
    enc = lab.encode(image, model, int(resolution), mode, folder)
    view = views.encode_view(enc, shared_scale=scale == "shared")
    usage = view["usage"]  # VQ models only: the std and histogram plots change label too
    return (
        view["summary"],
        view["grid"],
        view["preview"],
        gr.Plot(view["std"], label=view["std_label"]),
        gr.Plot(view["histogram"], label=view["hist_label"]),
        view["stats"],
        gr.Plot(usage, visible=True) if usage is not None else gr.Plot(None, visible=False),
    )


def on_image_change(image, model, resolution, mode, folder, scale):
    """Encode as soon as an image arrives; clearing the image leaves the views as they are."""
    if image is None:
        return (gr.skip(),) * 7
    return on_encode(image, model, resolution, mode, folder, scale)


def on_image_arrival(image, model, resolution, mode, folder, scale):
    """The UI's encode-on-arrival, with the image input as a eighth output (left as it is)."""
    return (*on_image_change(image, model, resolution, mode, folder, scale), gr.skip())


def arrival_cleared(error: gr.Error) -> tuple:
    """What a failed arrival clears: the views, and the input too when the file is no image
    (no broken preview left behind); an image that is fine stays for the next try."""
    no_image = isinstance(error.__cause__, BadImageError)
    return (None,) * 7 + (None if no_image else gr.skip(),)


@priced(lab_price("roundtrip"))
@user_errors("Round trip")
def on_roundtrip(image, model, resolution, mode, folder, source, seed):
    folder = checked(folder, resolution, model)
    rt = lab.roundtrip(image, model, int(resolution), mode, source, int(seed), folder)
    return (
        rt.original,
        rt.reconstruction,
        views.error_picture(rt.error, rt.error_vmax),
        views.roundtrip_summary(rt, source),
        pd.DataFrame([views.roundtrip_row(rt)]),
    )


@priced(lab_price("generations"))
@user_errors("Repeated round trips")
def on_generations(image, model, resolution, mode, folder, n, progress=gr.Progress()):
    folder = checked(folder, resolution, model)
    g = lab.generations(
        image, model, int(n), int(resolution), mode, folder, progress_adapter(progress)
    )
    return views.generations_figure(g), g.images[-1], views.generations_table(g)


@priced(lab_price("compare"))
@user_errors("Comparison")
def on_compare(image, model_a, model_b, resolution, mode, folder):
    folder = checked(folder, resolution, model_a, model_b)
    c = lab.compare(image, model_a, model_b, int(resolution), mode, folder)
    table = pd.DataFrame([views.roundtrip_row(c.a), views.roundtrip_row(c.b)])
    note = views.compare_note(c, usable=availability.usable_vaes(folder))
    return (
        c.a.reconstruction,
        c.b.reconstruction,
        views.error_picture(c.a.error, c.a.error_vmax),
        views.error_picture(c.b.error, c.b.error_vmax),
        table,
        note,
    )


@priced(lab_price("interpolate"))
@user_errors("Interpolation")
def on_interpolate(
    image_a, image_b, model, steps, method, resolution, folder, progress=gr.Progress()
):
    folder = checked(folder, resolution, model)
    it = lab.interpolate(
        image_a,
        image_b,
        model,
        int(steps),
        method,
        int(resolution),
        folder,
        progress_adapter(progress),
    )
    gif, fade_gif = views.interpolation_gifs(it)
    note = views.interpolation_note(it)
    return it.strip, str(gif), str(gif), it.crossfade_strip, str(fade_gif), note


@priced(lab_price("edit"))
@user_errors("Latent edit")
def on_edit(image, model, resolution, mode, folder, channel, op, amount, seed):
    folder = checked(folder, resolution, model)
    ed = lab.edit(
        image, model, int(channel), op, float(amount), int(seed), int(resolution), mode, folder
    )
    fig = views.edit_figure(ed, int(channel), op)
    diff = views.error_picture(ed.difference, ed.difference_vmax, "change")
    return ed.baseline, ed.edited, diff, fig, views.edit_note(ed)


@user_errors("Scanning the models folder")
def on_scan(folder, current):
    if public.public_mode():
        raise public.PublicModeError(
            "This public app does not read folders on its server: it lists its own models only."
        )
    found = registry.local_models(folder or None)
    if folder and not os.path.isdir(os.path.expanduser(folder)):
        raise ExplorerError(
            f"No folder at {folder!r}. Type the path of a folder holding "
            "*_encoder.pth / *_decoder.pth pairs (for example a ComfyUI vae_approx folder)."
        )
    names = registry.available_models(folder or None)
    if found:
        lines = "\n".join(
            f"- `{n}` — {s.encoder_path.name} + {s.decoder_path.name}" for n, s in found.items()
        )
        msg = f"Found {len(found)} checkpoint pair(s):\n{lines}"
        value = next(iter(found))
    else:
        msg = "No `*_encoder` / `*_decoder` checkpoint pairs found there."
        value = current
    update = gr.update(choices=names, value=value)
    second = availability.second_vae(names, value, folder or None)
    return update, gr.update(choices=names, value=second), msg
