"""The Perturbations tab's layout and wiring: what moves each embedding space (blur, flip, hue,
...), and how far."""

from __future__ import annotations

import gradio as gr

from explorer.core import public
from explorer.images import io as imaging
from explorer.models import registry
from explorer.perturb import ladder as perturb
from explorer.ui import availability
from explorer.ui.components import ImageOut, SafeImage, listen
from explorer.ui.context import TabContext
from explorer.ui.perturb.handlers import on_perturb, on_perturb_strip
from explorer.ui.perturb.views import DEFAULT_TICKS, FAMILY_CHOICES, INTRO


def build(ctx: TabContext) -> None:
    """The Perturbations tab's layout and wiring (after the lab's, whose models folder it uses)."""
    names, default, folder = ctx.names, ctx.default, ctx.folder
    astronaut = imaging.example_images().get("astronaut")
    with gr.Tab("Perturbations", id="perturb"):
        ctx.notices.append(availability.panel("perturb", ctx.folder0 or None))
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
                    list(FAMILY_CHOICES),
                    value=DEFAULT_TICKS,
                    label="Spaces",
                    info="The controls need no model: what pixels, palette or edges alone give.",
                )
                vae_space = gr.Dropdown(
                    names, value=default, label="VAE", allow_custom_value=not public.public_mode()
                )
                ctx.vae_lists.append(vae_space)
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

        listen(
            run_btn.click,
            ctx.api,
            on_perturb,
            [image, families, vae_space, clip_space, dino_space, folder, which],
            [plot, notice, strip, table],
            api_name="perturb",
            slot=1,
        )
        listen(
            which.change,
            ctx.api,
            on_perturb_strip,
            [image, which],
            [strip],
            api_name="perturb_strip",
            slot=None,
            status=notice,
        )
