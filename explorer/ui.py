"""The Gradio app: layout and wiring only (the one module that imports gradio)."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path

import gradio as gr
import pandas as pd
import plotly

from . import atlas, datasets, imaging, metrics, models, pipeline, plots, projection
from .errors import ExplorerError

log = logging.getLogger("explorer")

INTRO = """
# Latent Space Explorer
A Stable Diffusion VAE is a **perceptual compressor**: it squeezes an image ~48× into a small
latent grid that keeps colour, texture and layout — and is pushed towards a plain N(0, 1) by its
KL term. That makes it great for diffusion and poor for *meaning*. Encode your own pictures and see
what the latent holds, how well it comes back, and what happens in between.
"""

CSS = """
.gradio-container {max-width: 1500px !important}
#summary table {font-size: 0.9em}
"""


RT_HEADERS = [
    "model",
    "decoded from",
    "PSNR (dB)",
    "SSIM",
    "compression",
    "encode (ms)",
    "decode (ms)",
]


class SafeImage(gr.Image):
    """gr.Image whose upload is handed to our own loader untouched.

    Gradio's own preprocessing opens the file with Pillow before our code runs, so a corrupt or
    non-image upload would surface as a bare error; here every file reaches ``imaging.load_image``,
    which refuses it with a sentence that says what to do.
    """

    def get_block_name(self) -> str:
        return "image"

    def preprocess(self, payload):
        if (
            payload is not None
            and getattr(payload, "path", None)
            and not (payload.url and payload.url.startswith("data:"))
        ):
            return str(payload.path)
        try:
            return super().preprocess(payload)
        except Exception as exc:  # data: URLs from paste/webcam that Pillow cannot read
            raise gr.Error(
                f"That image could not be read ({exc}). Try a PNG or JPEG file."
            ) from exc


def _user_errors(action: str) -> Callable:
    """Decorator: ExplorerError -> gr.Error with its sentence; anything else -> a logged, short gr.Error."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except gr.Error:
                raise
            except ExplorerError as exc:
                raise gr.Error(str(exc)) from exc
            except Exception as exc:
                log.exception("%s failed", action)
                raise gr.Error(
                    f"{action} failed: {type(exc).__name__}: {exc}. Try another image, a smaller "
                    "resolution or another model."
                ) from exc

        return inner

    return wrap


def _progress(progress: gr.Progress) -> pipeline.Progress:
    return lambda f, desc: progress(f, desc=desc)


# --------------------------------------------------------------------------- handlers


@_user_errors("Encoding")
def on_encode(image, model, resolution, mode, folder, scale):
    enc = pipeline.encode(image, model, int(resolution), mode, folder)
    view = pipeline.encode_view(enc, shared_scale=scale == "shared")
    return (
        view["summary"],
        view["grid"],
        view["preview"],
        view["std"],
        view["histogram"],
        view["stats"],
    )


def on_image_change(image, model, resolution, mode, folder, scale):
    """Encode as soon as an image arrives; clearing the image leaves the views as they are."""
    if image is None:
        return (gr.skip(),) * 6
    return on_encode(image, model, resolution, mode, folder, scale)


@_user_errors("Round trip")
def on_roundtrip(image, model, resolution, mode, folder, source, seed):
    rt = pipeline.roundtrip(image, model, int(resolution), mode, source, int(seed), folder)
    return (
        rt.original,
        rt.reconstruction,
        rt.error,
        pipeline.roundtrip_summary(rt),
        pd.DataFrame([rt.row()]),
    )


@_user_errors("Repeated round trips")
def on_generations(image, model, resolution, mode, folder, n, progress=gr.Progress()):
    images, psnrs, ssims = pipeline.generations(
        image, model, int(n), int(resolution), mode, folder, _progress(progress)
    )
    fig = plots.generations_plot(psnrs, ssims)
    table = pd.DataFrame(
        {"generation": range(1, len(psnrs) + 1), "PSNR (dB)": psnrs, "SSIM": ssims}
    ).round(4)
    return fig, images[-1], table


@_user_errors("Comparison")
def on_compare(image, model_a, model_b, resolution, mode, folder):
    a, b = pipeline.compare(image, model_a, model_b, int(resolution), mode, folder)
    return a.reconstruction, b.reconstruction, a.error, b.error, pd.DataFrame([a.row(), b.row()])


@_user_errors("Interpolation")
def on_interpolate(
    image_a, image_b, model, steps, method, resolution, folder, progress=gr.Progress()
):
    it = pipeline.interpolate(
        image_a, image_b, model, int(steps), method, int(resolution), folder, _progress(progress)
    )
    note = (
        f"{len(it.frames)} frames, {method}. Endpoints decode at {it.endpoint_psnr[0]:.1f} dB and "
        f"{it.endpoint_psnr[1]:.1f} dB PSNR vs A and B. The latent path morphs colour and layout; "
        "the crossfade only superimposes — neither moves *through meaning*."
    )
    return it.strip, str(it.gif), str(it.gif), it.crossfade_strip, str(it.crossfade_gif), note


@_user_errors("Latent edit")
def on_edit(image, model, resolution, mode, folder, channel, op, amount, seed):
    ed = pipeline.edit(
        image, model, int(channel), op, float(amount), int(seed), int(resolution), mode, folder
    )
    import numpy as np

    fig = plots.channel_grid(
        np.stack([ed.channel_before, ed.channel_after]),
        shared_scale=True,
        title=f"channel {int(channel)}: before | after ({op})",
    )
    fig.layout.annotations[0].text, fig.layout.annotations[1].text = "before", "after"
    note = (
        f"Edited decode vs unedited decode: **{pipeline._fmt(ed.psnr_vs_baseline)} dB PSNR**, mean "
        f"absolute change {ed.mean_abs_change:.4f} (pixels in [0, 1]). The difference map (scaled to "
        "its own 99th percentile) shows where this channel's change lands in pixels."
    )
    return ed.baseline, ed.edited, ed.difference, fig, note


@_user_errors("Scanning the models folder")
def on_scan(folder, current):
    found = models.local_models(folder or None)
    if folder and not os.path.isdir(os.path.expanduser(folder)):
        raise ExplorerError(
            f"No folder at {folder!r}. Type the path of a folder holding "
            "*_encoder.pth / *_decoder.pth pairs (for example a ComfyUI vae_approx folder)."
        )
    names = models.available_models(folder or None)
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
    return update, gr.update(choices=names), msg


# --------------------------------------------------------------------------- atlas handlers

STATIC = Path(__file__).parent / "static"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
FAMILY_CHOICES = {"VAE": "vae", "CLIP": "clip", "DINOv2": "dino", "ViT": "vit"}
SLOTS = atlas.MAX_SPACES
GALLERY_SIDE = 6


def _file_url(path: str) -> str:
    return f"/gradio_api/file={path}"


def _spaces(checked, vae_model, clip_model, dino_model, vit_model) -> list[str]:
    chosen = {"vae": vae_model, "clip": clip_model, "dino": dino_model, "vit": vit_model}
    return [
        f"{FAMILY_CHOICES[c]}:{chosen[FAMILY_CHOICES[c]]}"
        for c in FAMILY_CHOICES
        if c in (checked or [])
    ]


def _shown_method(method: str) -> tuple[str, str]:
    shown = projection.best_available(method)
    note = ""
    if shown != method:
        note = (
            f"UMAP is warming up (numba compiles its functions once, about a minute on a small "
            f"CPU); showing {shown.upper()} meanwhile — the panels switch by themselves."
        )
    return shown, note


def _empty_galleries() -> list:
    return [gr.update(value=None, visible=False) for _ in range(SLOTS)]


def _galleries(a: atlas.Atlas, results: dict[str, list[tuple[int, float]]], query: int | None):
    out = []
    for s in a.spaces:
        items = []
        if query is not None:
            items.append((a.thumbs[query], f"#{query} {a.labels[query]} (selected)"))
        items += [(a.thumbs[i], f"#{i} {a.labels[i]} · {sim:.3f}") for i, sim in results[s.key]]
        same = (
            sum(a.labels[i] == a.labels[query] for i, _ in results[s.key])
            if query is not None
            else None
        )
        label = s.title + (
            f" — {same}/{len(results[s.key])} share its label" if same is not None else ""
        )
        out.append(gr.update(value=items, label=label, visible=True))
    return out + [gr.update(value=None, visible=False) for _ in range(SLOTS - len(a.spaces))]


def _atlas_outputs(a: atlas.Atlas, method: str, extra_note: str = ""):
    shown, note = _shown_method(method)
    table = atlas.metrics_table(a, shown)
    failures = "".join(f"\n- **{ref}** left out: {msg}" for ref, msg in a.failures.items())
    status = (
        f"**{a.images.summary()}** Spaces: {', '.join(s.title for s in a.spaces)}; "
        f"map: {shown.upper()}. {note} {extra_note}{failures}"
    )
    return (
        a.id,
        shown,
        atlas.payload(a, shown, _file_url),
        status,
        table,
        atlas.verdict(table),
        atlas.overlap_table(a),
        *_empty_galleries(),
    )


def _open(
    image_set, checked, vae_model, clip_model, dino_model, vit_model, method, folder, progress
):
    spaces = _spaces(checked, vae_model, clip_model, dino_model, vit_model)
    a = atlas.build(
        image_set,
        spaces,
        projection.best_available(method),
        folder or None,
        _cache(),
        _progress(progress),
    )
    atlas.STORE.put(a)
    return _atlas_outputs(a, method)


_CACHE = None


def _cache():
    global _CACHE
    if _CACHE is None:
        from .cache import EmbeddingCache

        _CACHE = EmbeddingCache()
    return _CACHE


@_user_errors("Opening the bundled set")
def on_atlas_bundled(
    checked, vae_model, clip_model, dino_model, vit_model, method, folder, progress=gr.Progress()
):
    progress(0, desc="building the bundled set")
    return _open(
        datasets.bundled_set(),
        checked,
        vae_model,
        clip_model,
        dino_model,
        vit_model,
        method,
        folder,
        progress,
    )


@_user_errors("Opening the uploaded images")
def on_atlas_upload(
    files,
    checked,
    vae_model,
    clip_model,
    dino_model,
    vit_model,
    method,
    folder,
    progress=gr.Progress(),
):
    paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]
    if not paths:
        raise ExplorerError("Upload a .zip of class folders, or several images, first.")
    zips = [p for p in paths if p.lower().endswith(".zip")]
    if zips and len(paths) > 1:
        raise ExplorerError("Upload either one .zip or several images, not both.")
    image_set = datasets.from_zip(zips[0]) if zips else datasets.from_files(paths)
    return _open(
        image_set, checked, vae_model, clip_model, dino_model, vit_model, method, folder, progress
    )


@_user_errors("Loading the Hugging Face dataset")
def on_atlas_hub(
    dataset_id,
    per_class,
    checked,
    vae_model,
    clip_model,
    dino_model,
    vit_model,
    method,
    folder,
    progress=gr.Progress(),
):
    image_set = datasets.from_hub(
        (dataset_id or "").strip(), per_class=int(per_class), progress=_progress(progress)
    )
    return _open(
        image_set, checked, vae_model, clip_model, dino_model, vit_model, method, folder, progress
    )


@_user_errors("Opening the saved atlas")
def on_atlas_saved(folder_path, method):
    a, saved_method = atlas.load_saved((folder_path or "").strip())
    atlas.STORE.put(a)
    return _atlas_outputs(a, saved_method, "(reopened from disk)")


@_user_errors("Changing the projection")
def on_atlas_method(atlas_id, method, progress=gr.Progress()):
    if not atlas_id:
        return (gr.skip(),) * (7 + SLOTS)
    a = atlas.STORE.get(atlas_id)
    progress(0.2, desc=f"projecting ({method})")
    return _atlas_outputs(a, method)


def on_atlas_tick(atlas_id, method, shown):
    """While UMAP warms up the panels show PCA; switch once it is ready."""
    if not atlas_id or shown == method or projection.best_available(method) != method:
        return (gr.skip(),) * (7 + SLOTS)
    return on_atlas_method(atlas_id, method)


@_user_errors("Finding neighbours")
def on_atlas_select(atlas_id, shown, index):
    a = atlas.STORE.get(atlas_id)
    if index is None:
        raise ExplorerError("Click a point, or type the number of an image, first.")
    index = int(index)
    res = atlas.neighbours(a, index, GALLERY_SIDE)
    nb = {k: [i for i, _ in v] for k, v in res.items()}
    return (
        index,
        atlas.payload(a, shown, _file_url, selected=index, neighbors=nb),
        *_galleries(a, res, index),
    )


def on_atlas_click(atlas_id, shown, evt: gr.EventData):
    data = evt._data or {}
    return on_atlas_select(atlas_id, shown, data.get("index"))


@_user_errors("Searching with an image")
def on_atlas_query_image(atlas_id, image, folder):
    a = atlas.STORE.get(atlas_id)
    if image is None:
        raise ExplorerError("Upload a query image first.")
    res = atlas.query_image(a, imaging.load_image(image), GALLERY_SIDE, folder or None, _cache())
    return _galleries(a, res, None)


@_user_errors("Text search")
def on_atlas_text(atlas_id, shown, text):
    a = atlas.STORE.get(atlas_id)
    top, _scores = atlas.text_query(a, text, 8)
    items = [(a.thumbs[i], f"#{i} {a.labels[i]} · {sim:.3f}") for i, sim in top]
    note = (
        f"CLIP similarity to “{text.strip()}”: best #{top[0][0]} ({a.labels[top[0][0]]}, "
        f"{top[0][1]:.3f}). Matches are circled in every panel."
    )
    return items, note, atlas.payload(a, shown, _file_url, highlight=[i for i, _ in top])


@_user_errors("Export")
def on_atlas_export(atlas_id, shown):
    a = atlas.STORE.get(atlas_id)
    files = atlas.save(a, pipeline.tmp_path("atlas"), shown)
    return [str(files[k]) for k in ("points", "metrics", "overlap", "html")]


METRICS_MD = "\n".join(f"- **{k}** — {v}" for k, v in metrics.METRIC_HELP.items())


# --------------------------------------------------------------------------- layout


def build_demo() -> gr.Blocks:
    """The whole app as a gr.Blocks (not launched)."""
    folder0 = str(models.models_dir() or "")
    names = models.available_models(folder0 or None)
    default = models.default_vae(folder0 or None)
    if default not in names:
        names = [default, *names]
    examples = [[str(p)] for p in imaging.example_images().values()]

    gr.set_static_paths([str(PLOTLY_JS.parent), str(atlas.thumb_dir())])
    with gr.Blocks(title="Latent Space Explorer") as demo:
        gr.Markdown(INTRO)
        with gr.Tabs():
            with gr.Tab("VAE lab", id="lab"), gr.Row():
                with gr.Column(scale=1, min_width=320):
                    image = SafeImage(
                        label="Image A",
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
                        allow_custom_value=True,
                        info="Registry name, Hub id, or a local checkpoint path.",
                    )
                    with gr.Row():
                        resolution = gr.Dropdown(
                            list(pipeline.RESOLUTIONS), value=512, label="Resolution", scale=1
                        )
                        mode = gr.Radio(
                            list(pipeline.CROP_MODES),
                            value="square",
                            label="Crop",
                            scale=1,
                            info="square: centre crop; fit: keep aspect",
                        )
                    with gr.Accordion(
                        "Local checkpoints (TAESD family)", open=not names or bool(folder0)
                    ):
                        folder = gr.Textbox(
                            folder0,
                            label="Models folder",
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
                            preview = gr.Image(
                                label="Latent → RGB (first 3 principal components)",
                                height=300,
                                interactive=False,
                            )
                            std_plot = gr.Plot(label="Posterior std")
                        hist = gr.Plot(label="Histogram vs N(0,1)")
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
                                label="Decode from the posterior",
                            )
                            seed = gr.Number(0, label="Sample seed", precision=0)
                            rt_btn = gr.Button("Round trip", variant="primary")
                        with gr.Row():
                            rt_orig = gr.Image(label="Original", interactive=False)
                            rt_recon = gr.Image(label="Reconstruction", interactive=False)
                            rt_err = gr.Image(label="Absolute error (inferno)", interactive=False)
                        rt_md = gr.Markdown()
                        rt_table = gr.Dataframe(
                            headers=RT_HEADERS, interactive=False, label="Numbers"
                        )
                        gr.Markdown(
                            "### Repeated round trips\nFeed each reconstruction "
                            "back in: what is lost once is lost for good."
                        )
                        with gr.Row():
                            gens_n = gr.Slider(1, 20, value=5, step=1, label="Generations")
                            gens_btn = gr.Button("Run generations")
                        with gr.Row():
                            gens_plot = gr.Plot(label="PSNR per generation")
                            gens_last = gr.Image(
                                label="Last generation", interactive=False, height=340
                            )
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
                                value=names[-1] if names else None,
                                label="Second VAE",
                                allow_custom_value=True,
                            )
                            cmp_btn = gr.Button("Compare")
                        with gr.Row():
                            cmp_a = gr.Image(label="First VAE", interactive=False)
                            cmp_b = gr.Image(label="Second VAE", interactive=False)
                        with gr.Row():
                            cmp_ea = gr.Image(label="Error, first", interactive=False)
                            cmp_eb = gr.Image(label="Error, second", interactive=False)
                        cmp_table = gr.Dataframe(
                            headers=RT_HEADERS, interactive=False, label="Comparison"
                        )
                    with gr.Tab("Interpolate", id="interp"):
                        with gr.Row():
                            with gr.Column(scale=1):
                                image_b = SafeImage(
                                    label="Image B",
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
                        interp_strip = gr.Image(
                            label="Latent interpolation (decoded frames)", interactive=False
                        )
                        fade_strip = gr.Image(
                            label="Pixel crossfade (same steps)", interactive=False
                        )
                        with gr.Row():
                            interp_gif = gr.Image(
                                label="Latent interpolation (GIF)",
                                type="filepath",
                                interactive=False,
                                height=256,
                            )
                            fade_gif = gr.Image(
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
                            ed_base = gr.Image(label="Unedited decode", interactive=False)
                            ed_new = gr.Image(label="Edited decode", interactive=False)
                            ed_diff = gr.Image(label="Difference", interactive=False)
                        ed_fig = gr.Plot(label="The channel before and after")
            with gr.Tab("Semantic atlas", id="atlas"):
                gr.Markdown(ATLAS_INTRO)
                atlas_id = gr.State(None)
                shown_method = gr.State("pca")
                with gr.Row():
                    with gr.Column(scale=1, min_width=300):
                        bundled_btn = gr.Button("Open the bundled set", variant="primary")
                        with gr.Accordion("Your images", open=False):
                            uploads = gr.File(
                                label="A .zip of class folders, or several images",
                                file_count="multiple",
                                file_types=[".zip", "image"],
                            )
                            upload_btn = gr.Button("Open the upload")
                        with gr.Accordion("A Hugging Face dataset (needs internet)", open=False):
                            hub_id = gr.Textbox(label="Dataset id", placeholder="owner/name")
                            per_class = gr.Slider(
                                2, 100, value=10, step=1, label="Images per class"
                            )
                            hub_btn = gr.Button("Stream it")
                        with gr.Accordion("A saved atlas folder", open=False):
                            saved_dir = gr.Textbox(
                                label="Folder written by `python -m explorer atlas`"
                            )
                            saved_btn = gr.Button("Open the folder")
                    with gr.Column(scale=2):
                        with gr.Row():
                            families = gr.CheckboxGroup(
                                list(FAMILY_CHOICES),
                                value=["VAE", "CLIP", "DINOv2"],
                                label="Spaces (up to four panels)",
                            )
                            proj_method = gr.Radio(
                                list(projection.METHODS), value="umap", label="2-D projection"
                            )
                        with gr.Row():
                            vae_space = gr.Dropdown(
                                names, value=default, label="VAE", allow_custom_value=True
                            )
                            clip_space = gr.Dropdown(
                                models.available_embedders("clip"),
                                value=models.default_embedder("clip"),
                                label="CLIP",
                                allow_custom_value=True,
                            )
                            dino_space = gr.Dropdown(
                                models.available_embedders("dino"),
                                value=models.default_embedder("dino"),
                                label="DINOv2",
                                allow_custom_value=True,
                            )
                            vit_space = gr.Dropdown(
                                models.available_embedders("vit"),
                                value=models.default_embedder("vit"),
                                label="ViT",
                                allow_custom_value=True,
                            )
                atlas_status = gr.Markdown(elem_id="atlas-status")
                atlas_view = gr.HTML(
                    atlas.payload_empty(),
                    html_template='<div class="atlas-root"></div>',
                    css_template=(STATIC / "atlas.css").read_text(),
                    js_on_load=(STATIC / "atlas.js").read_text(),
                    head=f'<script src="{_file_url(str(PLOTLY_JS))}"></script>',
                    elem_id="atlas-view",
                    padding=False,
                )
                verdict = gr.Markdown(elem_id="atlas-verdict")
                metrics_df = gr.Dataframe(
                    headers=[
                        "space",
                        "model",
                        "knn5",
                        "knn10",
                        "chance",
                        "silhouette",
                        "trustworthiness",
                    ],
                    label="How well each space groups the set by its labels",
                    interactive=False,
                    elem_id="atlas-metrics",
                )
                with gr.Accordion("What the columns mean", open=False):
                    gr.Markdown(METRICS_MD)
                overlap_df = gr.Dataframe(
                    label="Neighbour overlap between spaces (share of the 10 "
                    "nearest neighbours two spaces agree on)",
                    interactive=False,
                )
                gr.Markdown(
                    "### Neighbours\nClick a point in any panel (or type its number): it is "
                    "starred in every panel, and its nearest neighbours in each space appear below."
                )
                with gr.Row():
                    selected = gr.Number(label="Image #", precision=0, minimum=0)
                    select_btn = gr.Button("Show neighbours")
                    query_img = SafeImage(
                        label="…or search with an outside image",
                        type="filepath",
                        image_mode=None,
                        height=160,
                    )
                    query_btn = gr.Button("Search with this image")
                galleries = [
                    gr.Gallery(
                        visible=False,
                        columns=GALLERY_SIDE + 1,
                        height=190,
                        object_fit="cover",
                        allow_preview=False,
                        elem_classes=["atlas-gallery"],
                    )
                    for _ in range(SLOTS)
                ]
                gr.Markdown("### Text search (CLIP)")
                with gr.Row():
                    text = gr.Textbox(label="A sentence", placeholder="a photo of a cat", scale=3)
                    text_btn = gr.Button("Search", scale=1)
                text_note = gr.Markdown()
                text_results = gr.Gallery(
                    label="Best CLIP matches",
                    columns=8,
                    height=190,
                    object_fit="cover",
                    allow_preview=False,
                )
                with gr.Row():
                    export_btn = gr.Button("Download coordinates, metrics and figures")
                    export_files = gr.File(label="Atlas files", file_count="multiple")
            with gr.Tab("About", id="about"):
                gr.Markdown(ABOUT)

        common = [image, model, resolution, mode, folder]
        encode_outputs = [summary, grid, preview, std_plot, hist, stats]
        encode_btn.click(on_encode, [*common, scale], encode_outputs, api_name="encode")
        scale.change(on_encode, [*common, scale], encode_outputs, api_name=False)
        image.change(on_image_change, [*common, scale], encode_outputs, api_name=False)
        rt_btn.click(
            on_roundtrip,
            [*common, source, seed],
            [rt_orig, rt_recon, rt_err, rt_md, rt_table],
            api_name="roundtrip",
        )
        gens_btn.click(
            on_generations,
            [*common, gens_n],
            [gens_plot, gens_last, gens_table],
            api_name="generations",
        )
        cmp_btn.click(
            on_compare,
            [image, model, model_b, resolution, mode, folder],
            [cmp_a, cmp_b, cmp_ea, cmp_eb, cmp_table],
            api_name="compare",
        )
        interp_btn.click(
            on_interpolate,
            [image, image_b, model, steps, method, interp_res, folder],
            [interp_strip, interp_gif, gif_file, fade_strip, fade_gif, interp_md],
            api_name="interpolate",
        )
        edit_btn.click(
            on_edit,
            [*common, channel, op, amount, edit_seed],
            [ed_base, ed_new, ed_diff, ed_fig, edit_md],
            api_name="edit",
        )
        scan.click(on_scan, [folder, model], [model, model_b, scan_msg], api_name="scan_models")

        space_inputs = [families, vae_space, clip_space, dino_space, vit_space, proj_method, folder]
        atlas_outputs = [
            atlas_id,
            shown_method,
            atlas_view,
            atlas_status,
            metrics_df,
            verdict,
            overlap_df,
            *galleries,
        ]
        bundled_btn.click(on_atlas_bundled, space_inputs, atlas_outputs, api_name="atlas_bundled")
        upload_btn.click(
            on_atlas_upload, [uploads, *space_inputs], atlas_outputs, api_name="atlas_upload"
        )
        hub_btn.click(
            on_atlas_hub, [hub_id, per_class, *space_inputs], atlas_outputs, api_name="atlas_hub"
        )
        saved_btn.click(
            on_atlas_saved, [saved_dir, proj_method], atlas_outputs, api_name="atlas_saved"
        )
        proj_method.change(
            on_atlas_method, [atlas_id, proj_method], atlas_outputs, api_name="atlas_method"
        )
        gr.Timer(3.0).tick(
            on_atlas_tick,
            [atlas_id, proj_method, shown_method],
            atlas_outputs,
            api_name=False,
            show_progress="hidden",
        )
        select_outputs = [selected, atlas_view, *galleries]
        select_btn.click(
            on_atlas_select,
            [atlas_id, shown_method, selected],
            select_outputs,
            api_name="atlas_select",
        )
        atlas_view.point_click(
            on_atlas_click, [atlas_id, shown_method], select_outputs, api_name=False
        )
        query_btn.click(
            on_atlas_query_image,
            [atlas_id, query_img, folder],
            galleries,
            api_name="atlas_query_image",
        )
        text_inputs = [atlas_id, shown_method, text]
        text_outputs = [text_results, text_note, atlas_view]
        text_btn.click(on_atlas_text, text_inputs, text_outputs, api_name="atlas_text")
        text.submit(on_atlas_text, text_inputs, text_outputs, api_name=False)
        export_btn.click(
            on_atlas_export, [atlas_id, shown_method], export_files, api_name="atlas_export"
        )
    demo.queue(default_concurrency_limit=2, max_size=64)
    return demo


ATLAS_INTRO = """
Drop in a set of labelled images and see, side by side, how they arrange themselves in **VAE-latent
space**, **CLIP** space and **DINOv2** space. Points are coloured by label; hover for the image,
click to find its neighbours in every space. The table says, in numbers, which space groups the
images by meaning — answering "why does `vae.encode` make a poor similarity search?"
"""

ABOUT = """
## What you are looking at
* **Latent maps** — the encoder's output, channel by channel. For a KL VAE it is the posterior
  *mean*, multiplied by the model's scaling factor (and shifted, for SD3/FLUX) so that diffusion sees
  roughly unit variance. Look for edges, colour blobs and layout: the channels are a re-coded,
  8× smaller picture, not a list of concepts.
* **Histogram vs N(0,1)** — the KL term pulls latents towards a standard normal. How close they get
  (mean, std, KL to N(0,1)) is printed beside the plot.
* **Round trip** — PSNR/SSIM of decode(encode(x)) against x, and where the error lands.
* **Interpolate** — straight (lerp) and spherical (slerp) paths between two latents, decoded, next to
  a plain pixel crossfade.
* **Edit channels** — change one channel and decode: a channel carries colour or texture, not an
  object.

## Why VAE latents are a poor basis for similarity search
Distances between VAE latents compare *pixels in disguise*: two photos of the same dog on different
backgrounds are far apart; a red car and a red apple on white are close. CLIP and DINOv2 were trained
so that distances track meaning.
"""


def launch(demo: gr.Blocks | None = None, **kwargs) -> None:
    """Launch with the standard GRADIO_SERVER_NAME / GRADIO_SERVER_PORT variables honoured."""
    demo = demo or build_demo()
    demo.launch(css=CSS, **kwargs)
