"""The Perturbations tab: what moves each embedding space (blur, flip, hue, ...), and how far."""

from __future__ import annotations

import gradio as gr

from .. import cache, imaging, perturb, perturb_lab, pictures, plots, public, registry
from ..errors import ExplorerError
from ..gpu import ATLAS, gpu
from .common import ImageOut, SafeImage, check_space_refs, progress_adapter, space_refs, user_errors

INTRO = """
Perturb one photo step by step — hue, brightness, blur, JPEG, a few pixels of shift, a small
rotation, a mirror image — and measure how far each space moves, **as a fraction of the distance
between two unrelated photos** (100 % = "as far as a different picture"; the teaching set's photos
are the unrelated ones). A space that follows *meaning* should shrug off a mirror image; a VAE's
latent, a re-coded picture, should not. Open one of the teaching set's photos (the astronaut, the
cat, the coffee, the rocket) and the last plot shows how far *another photo of the same meaning*
is.
"""

FAMILY_CHOICES = {"VAE": "vae", "CLIP": "clip", "DINOv2": "dino"}
TITLES = {"vae": "VAE latent", "clip": "CLIP", "dino": "DINOv2"}
EXPECTED = {
    "clip": "CLIP would be expected to barely move for a mirror image, a little blur or JPEG, "
    "and to put another photo of the same meaning well under 100 %",
    "dino": "DINOv2 would be expected to shrug off a mirror image and small shifts, and to move "
    "more than CLIP for strong colour changes while still keeping the same meaning close",
}
UNITS = {p.name: p.unit for p in perturb.PERTURBATIONS}


def _spaces(checked, vae_model, clip_model, dino_model) -> list[str]:
    chosen = {"vae": vae_model, "clip": clip_model, "dino": dino_model}
    return space_refs(checked, FAMILY_CHOICES, chosen)


def _load(image) -> object:
    if image is None:
        raise ExplorerError("Add an image first (or click the astronaut example).")
    return imaging.load_image(image)


def _title(space: str) -> str:
    family, model = space.split(":", 1)
    return f"{TITLES.get(family, family)} ({model})"


def _at(table, name: str, strength: float, space: str) -> float | None:
    hit = table[
        (table.perturbation == name) & (table.strength == strength) & (table.space == space)
    ]
    return float(hit.distance.iloc[0]) if len(hit) else None


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def what_to_notice(measured: perturb_lab.Measured, asked: list[str]) -> str:
    """The distances -> a few sentences quoting them; what a missing space would show."""
    table = measured.table
    lines = []
    for space in dict.fromkeys(table.space):
        flip, blur = _at(table, "flip", 1.0, space), _at(table, "blur", 1.0, space)
        rows = table[(table.space == space) & (table.perturbation != perturb.SAME_MEANING)]
        top = rows.loc[rows.distance.idxmax()]
        s = f"**{_title(space)}**: a flip moves it **{_pct(flip)}** of the way to an unrelated photo"
        s += f"; blur at 1 px moves it {_pct(blur)}" if blur is not None else ""
        s += (
            f"; the biggest move is {top.perturbation.replace('_', ' ')} at {top.strength:g} "
            f"({UNITS[top.perturbation]}): **{_pct(top.distance)}**"
        )
        same = table[
            (table.space == space)
            & (table.perturbation == perturb.SAME_MEANING)
            & (table.strength > 0)
        ]
        if len(same):
            s += (
                f"; another photo of the same meaning ({measured.refs.meaning}) is at "
                f"**{_pct(float(same.distance.mean()))}**"
            )
        lines.append(s + ".")
    for space, why in measured.failures.items():
        family = space.split(":", 1)[0]
        reason = why.split(". ")[0].rstrip(".")
        lines.append(
            f"**{_title(space)}** is not available here ({reason}). "
            f"{EXPECTED.get(family, 'It would show how a learned space moves')}; get it with "
            "`python -m explorer download` (needs internet once), then run again."
        )
    if not measured.refs.same_meaning:
        lines.append(
            "This photo is not one of the teaching set's, so there is no same-meaning row: open "
            "the astronaut, the cat, the coffee or the rocket to see it."
        )
    missing = [f for f in ("clip", "dino") if not any(s.startswith(f + ":") for s in asked)]
    if missing and "vae" in {s.split(":", 1)[0] for s in asked}:
        lines.append(
            "Tick "
            + " and ".join("CLIP" if f == "clip" else "DINOv2" for f in missing)
            + " to compare with a space trained on meaning."
        )
    return "**What to notice.** " + "\n\n".join(lines)


def _figure(table):
    present = [n for n in perturb.NAMES if n in set(table.perturbation)]
    lines = []
    for name in present:
        for space in dict.fromkeys(table.space):
            rows = table[(table.perturbation == name) & (table.space == space)]
            lines.append((name, space, rows.strength.to_numpy(), rows.distance.to_numpy()))
    return plots.perturbation_plot([(n, UNITS[n]) for n in present], lines)


def _strip(ladder: perturb.Ladder):
    side = 128
    return pictures.hstack([im.resize((side, side)) for _, im in ladder], gap=4)


def _strip_label(name: str, ladder: perturb.Ladder) -> str:
    steps = ", ".join(f"{s:g}" for s, _ in ladder)
    return f"{name.replace('_', ' ')}: strength {steps} ({UNITS[name]})"


@gpu(ATLAS)
@user_errors("Measuring the perturbations")
def on_perturb(
    image, checked, vae_model, clip_model, dino_model, folder, which, progress=gr.Progress()
):
    spaces = _spaces(checked, vae_model, clip_model, dino_model)
    if not spaces:
        raise ExplorerError("Tick at least one space (VAE, CLIP or DINOv2).")
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


def build(names: list[str], default: str, folder: gr.Textbox) -> None:
    """The Perturbations tab's layout and wiring; ``folder``: the lab's models folder box."""
    astronaut = imaging.example_images().get("astronaut")
    with gr.Tab("Perturbations", id="perturb"):
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                image = SafeImage(
                    value=str(astronaut) if astronaut else None,
                    label="Photo",
                    type="filepath",
                    height=260,
                    elem_id="perturb-image",
                )
                families = gr.CheckboxGroup(
                    list(FAMILY_CHOICES), value=list(FAMILY_CHOICES), label="Spaces"
                )
                vae_space = gr.Dropdown(
                    names, value=default, label="VAE", allow_custom_value=not public.public_mode()
                )
                clip_space = gr.Dropdown(
                    registry.available_embedders("clip"),
                    value=registry.default_embedder("clip"),
                    label="CLIP",
                    elem_id="perturb-clip",
                )
                dino_space = gr.Dropdown(
                    registry.available_embedders("dino"),
                    value=registry.default_embedder("dino"),
                    label="DINOv2",
                    elem_id="perturb-dino",
                )
                run_btn = gr.Button("Run", variant="primary")
            with gr.Column(scale=3):
                notice = gr.Markdown(elem_id="perturb-notice")
                plot = gr.Plot(show_label=False)
        with gr.Row(equal_height=True):
            which = gr.Dropdown(
                list(perturb.NAMES), value="flip", label="Show the images of", scale=1
            )
            strip = ImageOut(label="Perturbed images", interactive=False, scale=5, format="png")
        with gr.Accordion("The numbers", open=False):
            table = gr.Dataframe(headers=list(perturb.COLUMNS), interactive=False)

    run_btn.click(
        on_perturb,
        [image, families, vae_space, clip_space, dino_space, folder, which],
        [plot, notice, strip, table],
        api_name="perturb",
    )
    which.change(on_perturb_strip, [image, which], [strip], api_name="perturb_strip")
