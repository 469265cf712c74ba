"""The Autoencoders tab's layout and wiring (the playground): AE vs VAE vs VQ-VAE on the 8x8
digits, side by side."""

from __future__ import annotations

import gradio as gr

from explorer.playground import digits as pg
from explorer.ui.components import ImageOut, SafeSketchpad, listen
from explorer.ui.context import TabContext
from explorer.ui.playground.handlers import (
    on_playground,
    on_playground_draw,
    on_playground_interp,
    on_playground_plane,
)
from explorer.ui.playground.views import COLUMNS, DRAW_INTRO, INTRO, TITLES

CANVAS = 320  # the sketchpad's side, px (the brush is about a pen's width of a digit this tall)


def _picture(caption: str, **kwargs) -> ImageOut:
    """A caption line above an output picture (a label badge would hide its top row)."""
    gr.Markdown(caption, elem_classes=["playground-caption"])
    return ImageOut(label=caption, show_label=False, interactive=False, format="png", **kwargs)


def build(ctx: TabContext) -> None:
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
                label="Wider plane: the square each model's own latents span, instead of "
                "[-3, 3]² (where N(0, I) draws fall)",
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
        outputs = [*scatters, *grids, *samples, *interps, usage, table, note]
        listen(
            train_btn.click,
            ctx.api,
            on_playground,
            [*settings, wide, digit_a, digit_b],
            outputs,
            api_name="playground",
            slot=len(outputs) - 1,
        )
        listen(
            wide.change,
            ctx.api,
            on_playground_plane,
            [*settings, wide],
            grids,
            api_name="playground_plane",
            slot=None,
            status=note,
        )
        for box in (digit_a, digit_b):
            listen(
                box.change,
                None,
                on_playground_interp,
                [*settings, digit_a, digit_b],
                interps,
                slot=None,
                status=note,
            )
        _drawing(ctx, settings)


def _drawing(ctx: TabContext, settings: list) -> None:
    """The last section: draw a digit, see it as 8x8, as a star on each latent scatter, decoded."""
    gr.Markdown("### Draw a digit", elem_id="playground-draw")
    gr.Markdown(DRAW_INTRO)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=CANVAS + 60):
            sketch = SafeSketchpad(
                label="Draw a digit (0-9), as tall as most of the box",
                type="numpy",
                image_mode="RGBA",
                canvas_size=(CANVAS, CANVAS),
                fixed_canvas=True,
                layers=False,
                transforms=(),
                format="png",
                brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=12),
                height=CANVAS + 90,
                elem_id="playground-sketch",
            )
        with gr.Column(scale=2, min_width=260):
            seen = _picture("As the models see it: 8×8, ink 0..16", height=180, width=180)
            draw_btn = gr.Button(
                "Where does it land?", variant="primary", elem_id="playground-draw-btn"
            )
            draw_note = gr.Markdown(elem_id="playground-draw-note")
    stars, decodes = [], []
    with gr.Row(elem_id="playground-draw-stars"):
        for model in pg.MODELS:
            with gr.Column(min_width=280):
                gr.Markdown(f"**{TITLES[model]}**")
                stars.append(gr.Plot(label=f"{TITLES[model]}: your drawing", show_label=False))
                decodes.append(_picture(f"{TITLES[model]} decodes it as", height=180, width=180))
    outputs = [seen, *stars, *decodes, draw_note]
    listen(
        draw_btn.click,
        ctx.api,
        on_playground_draw,
        [sketch, *settings],
        outputs,
        api_name="playground_draw",
        slot=len(outputs) - 1,
    )
