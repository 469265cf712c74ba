"""The VAE lab tab's layout and wiring: one image through a VAE (latent maps, round trips,
interpolation, edits); the handlers are in :mod:`.handlers`, the words in :mod:`.views`."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from explorer.core import public
from explorer.lab import actions as lab
from explorer.ui import availability
from explorer.ui.components import ImageOut, SafeImage, listen
from explorer.ui.context import TabContext
from explorer.ui.lab import views
from explorer.ui.lab.handlers import (
    arrival_cleared,
    on_compare,
    on_edit,
    on_encode,
    on_generations,
    on_image_arrival,
    on_interpolate,
    on_roundtrip,
    on_scan,
)
from explorer.ui.lab.views import RT_HEADERS


def build(ctx: TabContext) -> SimpleNamespace:
    """The lab tab's layout and wiring (inside an open gr.Blocks); sets ``ctx.folder`` and
    ``ctx.local`` (the models-folder box and its accordion) and returns its components."""
    names, default, examples, folder0 = ctx.names, ctx.default, ctx.examples, ctx.folder0
    with gr.Tab("VAE lab", id="lab"):
        notice = availability.panel("lab", folder0 or None)
        ctx.notices.append(notice)
        api = gr.Button(visible=False)  # the API endpoints' trigger (see common.listen)
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                image = SafeImage(
                    label="Image A",
                    elem_id="image-a",
                    type="filepath",
                    image_mode=None,
                    sources=["upload", "clipboard", "webcam"],
                    height=320,
                )
                if examples:
                    gr.Examples(examples, inputs=[image], label="Examples (public domain)")
                model = gr.Dropdown(
                    names,
                    value=default,
                    label="VAE",
                    allow_custom_value=not public.public_mode(),
                    info="Registry name, Hub id, or a local checkpoint path.",
                )
                with gr.Row():
                    resolution = gr.Dropdown(
                        [r for r in lab.RESOLUTIONS if r <= public.max_resolution()],
                        value=512,
                        label="Resolution",
                        scale=1,
                    )
                    mode = gr.Radio(
                        list(lab.CROP_MODES),
                        value="square",
                        label="Crop",
                        scale=1,
                        info="square: centre crop; fit: keep aspect",
                    )
                with gr.Accordion(
                    "Local checkpoints (TAESD family)",
                    open=bool(folder0),
                    visible=not public.public_mode(),
                    elem_id=availability.LOCAL_ID,
                ) as local:
                    folder = gr.Textbox(
                        # public: empty (the handlers use the operator's folder), never shown in /config
                        "" if public.public_mode() else folder0,
                        label="Models folder",
                        elem_id=availability.FOLDER_ID,
                        placeholder="/path/to/vae_approx",
                        info="Folder with NAME_encoder.pth / NAME_decoder.pth pairs "
                        "(taesd, taesdxl, taesd3, taef1, taef2).",
                    )
                    scan = gr.Button("Scan folder", size="sm")
                    scan_msg = gr.Markdown()
            with gr.Column(scale=3), gr.Tabs():
                with gr.Tab("Latent maps", id="maps"):
                    with gr.Row():
                        encode_btn = gr.Button("Encode", variant="primary")
                        scale = gr.Radio(
                            ["shared", "per-channel"],
                            value="shared",
                            label="Colour scale",
                            scale=2,
                        )
                    summary = gr.Markdown(elem_id="summary")
                    grid = gr.Plot(label="Per-channel latent maps")
                    with gr.Row():
                        preview = ImageOut(
                            label="Latent → RGB (first 3 principal components)",
                            height=300,
                            interactive=False,
                        )
                        std_plot = gr.Plot(label=views.STD_LABEL)
                    with gr.Row():
                        hist = gr.Plot(label=views.HIST_LABEL)
                        code_usage = gr.Plot(label="Codebook usage (VQ models)", visible=False)
                    stats = gr.Dataframe(
                        headers=["channel", "mean", "std", "min", "max"],
                        label="Per-channel statistics (scaled latent)",
                        interactive=False,
                        max_height=320,
                    )
                with gr.Tab("Round trip", id="roundtrip"):
                    with gr.Row():
                        source = gr.Radio(
                            ["mean", "sample"],
                            value="mean",
                            label="Decode from the posterior (a KL VAE's mean or a sample)",
                        )
                        seed = gr.Number(0, label="Sample seed", precision=0)
                        rt_btn = gr.Button("Round trip", variant="primary")
                    with gr.Row():
                        rt_orig = ImageOut(label="Original", interactive=False)
                        rt_recon = ImageOut(label="Reconstruction", interactive=False)
                        rt_err = ImageOut(label="Absolute error (inferno)", interactive=False)
                    rt_md = gr.Markdown()
                    rt_table = gr.Dataframe(headers=RT_HEADERS, interactive=False, label="Numbers")
                    gr.Markdown(
                        "### Repeated round trips\nFeed each reconstruction "
                        "back in: what is lost once is lost for good."
                    )
                    with gr.Row():
                        gens_n = gr.Slider(1, 20, value=5, step=1, label="Generations")
                        gens_btn = gr.Button("Run generations")
                    with gr.Row():
                        gens_plot = gr.Plot(label="PSNR per generation")
                        gens_last = ImageOut(label="Last generation", interactive=False, height=340)
                    gens_md = gr.Markdown()
                    gens_table = gr.Dataframe(
                        headers=["generation", "PSNR (dB)", "SSIM"],
                        interactive=False,
                        label="Per generation",
                        max_height=260,
                    )
                    gr.Markdown("### Two VAEs side by side")
                    with gr.Row():
                        model_b = gr.Dropdown(
                            names,
                            value=availability.second_vae(names, default, folder0 or None),
                            label="Second VAE",
                            allow_custom_value=not public.public_mode(),
                        )
                        cmp_btn = gr.Button("Compare")
                    cmp_md = gr.Markdown()
                    with gr.Row():
                        cmp_a = ImageOut(label="First VAE", interactive=False)
                        cmp_b = ImageOut(label="Second VAE", interactive=False)
                    with gr.Row():
                        cmp_ea = ImageOut(label="Error, first", interactive=False)
                        cmp_eb = ImageOut(label="Error, second", interactive=False)
                    cmp_table = gr.Dataframe(
                        headers=RT_HEADERS, interactive=False, label="Comparison"
                    )
                with gr.Tab("Interpolate", id="interp"):
                    with gr.Row():
                        with gr.Column(scale=1):
                            image_b = SafeImage(
                                label="Image B",
                                elem_id="image-b",
                                type="filepath",
                                image_mode=None,
                                height=240,
                                sources=["upload", "clipboard", "webcam"],
                            )
                            if examples:
                                gr.Examples(examples, inputs=[image_b], label="Examples for B")
                        with gr.Column(scale=2):
                            steps = gr.Slider(2, 24, value=8, step=1, label="Steps")
                            method = gr.Radio(["slerp", "lerp"], value="slerp", label="Method")
                            interp_res = gr.Dropdown(
                                [64, 128, 256, 384, 512],
                                value=256,
                                label="Resolution (square)",
                            )
                            interp_btn = gr.Button("Interpolate A → B", variant="primary")
                    interp_md = gr.Markdown()
                    interp_strip = ImageOut(
                        label="Latent interpolation (decoded frames)", interactive=False
                    )
                    fade_strip = ImageOut(label="Pixel crossfade (same steps)", interactive=False)
                    with gr.Row():
                        interp_gif = ImageOut(
                            label="Latent interpolation (GIF)",
                            type="filepath",
                            interactive=False,
                            height=256,
                        )
                        fade_gif = ImageOut(
                            label="Crossfade (GIF)",
                            type="filepath",
                            interactive=False,
                            height=256,
                        )
                        gif_file = gr.File(label="Download the GIF")
                with gr.Tab("Edit channels", id="edit"):
                    with gr.Row():
                        channel = gr.Number(0, label="Channel", precision=0, minimum=0)
                        op = gr.Radio(
                            ["scale", "zero", "shift", "noise"],
                            value="scale",
                            label="Edit",
                        )
                        amount = gr.Slider(
                            -4,
                            4,
                            value=2.0,
                            step=0.1,
                            label="Amount (factor, offset or noise std)",
                        )
                        edit_seed = gr.Number(0, label="Noise seed", precision=0)
                        edit_btn = gr.Button("Apply edit", variant="primary")
                    edit_md = gr.Markdown()
                    with gr.Row():
                        ed_base = ImageOut(label="Unedited decode", interactive=False)
                        ed_new = ImageOut(label="Edited decode", interactive=False)
                        ed_diff = ImageOut(label="Difference", interactive=False)
                    ed_fig = gr.Plot(label="The channel before and after")
    common = [image, model, resolution, mode, folder]
    encode_outputs = [summary, grid, preview, std_plot, hist, stats, code_usage]
    encode_in = [*common, scale]
    # Every failure is shown in place (a sentence where the result would be, the rest cleared);
    # the API endpoints, on the hidden button, raise, so that API clients get an error.
    listen(encode_btn.click, api, on_encode, encode_in, encode_outputs, api_name="encode", slot=0)
    listen(scale.change, None, on_encode, encode_in, encode_outputs, slot=0)
    listen(
        image.change,
        None,
        on_image_arrival,
        encode_in,
        [*encode_outputs, image],
        slot=0,
        cleared=arrival_cleared,
    )
    rt_outputs = [rt_orig, rt_recon, rt_err, rt_md, rt_table]
    listen(
        rt_btn.click,
        api,
        on_roundtrip,
        [*common, source, seed],
        rt_outputs,
        api_name="roundtrip",
        slot=3,
    )
    listen(
        gens_btn.click,
        api,
        on_generations,
        [*common, gens_n],
        [gens_plot, gens_last, gens_table],
        api_name="generations",
        slot=None,
        status=gens_md,
    )
    listen(
        cmp_btn.click,
        api,
        on_compare,
        [image, model, model_b, resolution, mode, folder],
        [cmp_a, cmp_b, cmp_ea, cmp_eb, cmp_table, cmp_md],
        api_name="compare",
        slot=5,
    )
    listen(
        interp_btn.click,
        api,
        on_interpolate,
        [image, image_b, model, steps, method, interp_res, folder],
        [interp_strip, interp_gif, gif_file, fade_strip, fade_gif, interp_md],
        api_name="interpolate",
        slot=5,
    )
    listen(
        edit_btn.click,
        api,
        on_edit,
        [*common, channel, op, amount, edit_seed],
        [ed_base, ed_new, ed_diff, ed_fig, edit_md],
        api_name="edit",
        slot=4,
    )
    scanned = listen(
        scan.click,
        api,
        on_scan,
        [folder, model],
        [model, model_b, scan_msg],
        api_name="scan_models",
        slot=2,
        cleared=(gr.skip(), gr.skip(), None),
    )
    ctx.folder, ctx.local, ctx.api = folder, local, api
    return SimpleNamespace(
        image=image, model=model, folder=folder, local=local, notice=notice, scanned=scanned
    )
