"""The Autoencoders tab's layout and wiring (the playground): AE vs VAE vs VQ-VAE on the 8x8
digits, side by side."""

from __future__ import annotations

import gradio as gr

from explorer.playground import digits as pg
from explorer.ui.components import ImageOut, listen
from explorer.ui.context import TabContext
from explorer.ui.playground.handlers import on_playground, on_playground_interp, on_playground_plane
from explorer.ui.playground.views import COLUMNS, INTRO, TITLES


def _picture(caption: str) -> ImageOut:
    """A caption line above an output picture (a label badge would hide its top row)."""
    gr.Markdown(caption, elem_classes=["playground-caption"])
    return ImageOut(label=caption, show_label=False, interactive=False, format="png")


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
