"""The semantic atlas tab: one image set in VAE / CLIP / DINOv2 space, side by side."""

from __future__ import annotations

import gradio as gr

from .. import atlas, cache, datasets, files, imaging, metrics, projection, public, registry
from ..errors import ExplorerError
from ..gpu import ATLAS, QUERY, gpu
from .atlas_payload import payload, payload_empty
from .atlas_text import status_markdown, text_search_note, verdict_markdown
from .common import (
    STATIC,
    SafeImage,
    check_space_refs,
    file_url,
    plotly_js,
    progress_adapter,
    space_refs,
    user_errors,
)

ATLAS_INTRO = """
Drop in a set of labelled images and see, side by side, how they arrange themselves in **VAE-latent
space**, **CLIP** space and **DINOv2** space. Points are coloured by label; hover for the image,
click to find its neighbours in every space. The table says, in numbers, which space groups the
images by meaning — answering "why does `vae.encode` make a poor similarity search?"
"""


TEACHING_NOTE = (
    "The **teaching set**: 16 freely licensed photos, each recoloured into 7 palettes — colour "
    "and meaning are crossed on purpose, so a space that follows colour and one that follows "
    "meaning disagree. Colour the points by *meaning*, *appearance* or *source photo*: a tight "
    "cluster of 7 is usually one photo in its 7 palettes, which is why the numbers leave a photo's "
    "own variants out when they score meaning."
)
PRESETS_NOTE = (
    "Stream a real labelled set from the Hugging Face Hub: 20 images of each of mini-ImageNet's "
    '100 classes (the question that started this project: "I used `vae.encode` for '
    'semantically similar image lookup on mini-ImageNet and the results seem quite random"), '
    "or 30 of each CIFAR-10 class. Offline, you get a sentence saying so."
)

FAMILY_CHOICES = {"VAE": "vae", "CLIP": "clip", "DINOv2": "dino", "ViT": "vit"}
SLOTS = atlas.MAX_SPACES
GALLERY_SIDE = 6


def _spaces(checked, vae_model, clip_model, dino_model, vit_model) -> list[str]:
    chosen = {"vae": vae_model, "clip": clip_model, "dino": dino_model, "vit": vit_model}
    return space_refs(checked, FAMILY_CHOICES, chosen)


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
        items += [(a.thumbs[i], f"#{i} {a.labels[i]} · {sim:.2f}") for i, sim in results[s.key]]
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


def _missing_families(a: atlas.Atlas) -> list[str]:
    """The families that were asked for but could not be opened (e.g. CLIP offline)."""
    opened = {s.family for s in a.spaces}
    asked = [ref.split(":", 1)[0] for ref in a.failures]
    return [f for f in dict.fromkeys(asked) if f not in opened]


def _atlas_outputs(a: atlas.Atlas, method: str, extra_note: str = ""):
    shown, note = _shown_method(method)
    table = atlas.metrics_table(a, shown)
    v = atlas.verdict(table, a.labels)
    titles = {s.key: s.title.split(" · ")[0] for s in a.spaces}
    if v is not None and v.single_label:  # numbers that mean nothing: the sentence says why
        table = table.iloc[0:0]
    names = a.images.labeling_names
    return (
        a.id,
        shown,
        payload(a, shown, file_url),
        status_markdown(a, shown, note, extra_note),
        table,
        verdict_markdown(v, titles, _missing_families(a)),
        gr.update(value=atlas.overlap_table(a), visible=len(a.spaces) > 1),
        gr.update(
            choices=names,
            value=a.color_by or names[0],
            interactive=len(names) > 1,
            visible=True,
        ),
        *_empty_galleries(),
    )


def _check_spaces(checked, vae_model, clip_model, dino_model, vit_model, folder) -> str | None:
    """Public mode's rules for an atlas request (before any image is read); returns the folder."""
    refs = _spaces(checked, vae_model, clip_model, dino_model, vit_model)
    folder = check_space_refs([], folder)  # the folder first, as before
    if not refs:
        raise ExplorerError("Tick at least one space (VAE, CLIP, DINOv2 or ViT) first.")
    check_space_refs(refs, folder)
    return folder


def _open(
    image_set, checked, vae_model, clip_model, dino_model, vit_model, method, folder, progress
):
    spaces = _spaces(checked, vae_model, clip_model, dino_model, vit_model)
    a = atlas.build(
        image_set,
        spaces,
        projection.best_available(method),
        folder or None,
        cache.shared(),
        progress_adapter(progress),
    )
    atlas.STORE.put(a)
    return _atlas_outputs(a, method)


@gpu(ATLAS)
@user_errors("Opening the teaching set")
def on_atlas_bundled(
    checked, vae_model, clip_model, dino_model, vit_model, method, folder, progress=gr.Progress()
):
    folder = _check_spaces(checked, vae_model, clip_model, dino_model, vit_model, folder)
    progress(0, desc="building the teaching set")
    return _open(
        datasets.teaching_set(),
        checked,
        vae_model,
        clip_model,
        dino_model,
        vit_model,
        method,
        folder,
        progress,
    )


@gpu(ATLAS)
@user_errors("Opening the uploaded images")
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
    folder = _check_spaces(checked, vae_model, clip_model, dino_model, vit_model, folder)
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


@gpu(ATLAS)
@user_errors("Loading the Hugging Face dataset")
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
    return _open_hub(
        dataset_id,
        per_class,
        checked,
        vae_model,
        clip_model,
        dino_model,
        vit_model,
        method,
        folder,
        progress,
    )


def _open_hub(
    dataset_id,
    per_class,
    checked,
    vae_model,
    clip_model,
    dino_model,
    vit_model,
    method,
    folder,
    progress,
):
    """The Hub opener's work, shared with the presets (so that a preset, itself a GPU handler,
    does not call another GPU handler)."""
    folder = _check_spaces(checked, vae_model, clip_model, dino_model, vit_model, folder)
    image_set = datasets.from_hub(
        (dataset_id or "").strip(), per_class=int(per_class), progress=progress_adapter(progress)
    )
    return _open(
        image_set, checked, vae_model, clip_model, dino_model, vit_model, method, folder, progress
    )


@user_errors("Opening the saved atlas")
def on_atlas_saved(folder_path, method):
    public.check_folder(folder_path)
    if not (folder_path or "").strip():
        raise ExplorerError("Type the folder that `python -m explorer atlas` wrote first.")
    a, saved_method = atlas.load_saved((folder_path or "").strip())
    atlas.STORE.put(a)
    return _atlas_outputs(a, saved_method, "(reopened from disk)")


PRESETS = {
    "forum": ("timm/mini-imagenet", 20),
    "cifar": ("uoft-cs/cifar10", 30),
}
"""The online presets: (Hugging Face dataset id, images per class). ``forum`` replicates the
question that started the project ("vae.encode for similarity search on mini-ImageNet")."""


@gpu(ATLAS)
@user_errors("Loading the preset")
def on_atlas_preset(
    preset,
    checked,
    vae_model,
    clip_model,
    dino_model,
    vit_model,
    method,
    folder,
    progress=gr.Progress(),
):
    if preset not in PRESETS:
        raise ExplorerError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    dataset_id, per_class = PRESETS[preset]
    return _open_hub(
        dataset_id,
        per_class,
        checked,
        vae_model,
        clip_model,
        dino_model,
        vit_model,
        method,
        folder,
        progress,
    )


@user_errors("Colouring the panels")
def on_atlas_color(atlas_id, shown, labeling):
    a = atlas.STORE.get(atlas_id)
    names = a.images.labeling_names
    if labeling not in names:
        raise ExplorerError(f"This set has no labelling {labeling!r}; choose {', '.join(names)}.")
    a.color_by = labeling
    return payload(a, shown, file_url)


N_OUTPUTS = 8 + SLOTS  # what every opener returns (see _atlas_outputs)


@user_errors("Changing the projection")
def on_atlas_method(atlas_id, method, progress=gr.Progress()):
    if not atlas_id:
        return (gr.skip(),) * N_OUTPUTS
    a = atlas.STORE.get(atlas_id)
    progress(0.2, desc=f"projecting ({method})")
    return _atlas_outputs(a, method)


def on_atlas_tick(atlas_id, method, shown):
    """While UMAP warms up the panels show PCA; switch once it is ready."""
    if not atlas_id or shown == method or projection.best_available(method) != method:
        return (gr.skip(),) * N_OUTPUTS
    return on_atlas_method(atlas_id, method)


@user_errors("Finding neighbours")
def on_atlas_select(atlas_id, shown, index):
    a = atlas.STORE.get(atlas_id)
    if index is None:
        raise ExplorerError("Click a point, or type the number of an image, first.")
    index = int(index)
    res = atlas.neighbours(a, index, GALLERY_SIDE)
    nb = {k: [i for i, _ in v] for k, v in res.items()}
    return (
        index,
        payload(a, shown, file_url, selected=index, neighbors=nb),
        *_galleries(a, res, index),
    )


def on_atlas_click(atlas_id, shown, evt: gr.EventData):
    data = evt._data or {}
    return on_atlas_select(atlas_id, shown, data.get("index"))


@gpu(QUERY)
@user_errors("Searching with an image")
def on_atlas_query_image(atlas_id, image, folder):
    folder = public.check_folder(folder, str(registry.models_dir() or ""))
    a = atlas.STORE.get(atlas_id)
    if image is None:
        raise ExplorerError("Upload a query image first.")
    res = atlas.query_image(
        a, imaging.load_image(image), GALLERY_SIDE, folder or None, cache.shared()
    )
    return _galleries(a, res, None)


@gpu(QUERY)
@user_errors("Text search")
def on_atlas_text(atlas_id, shown, text):
    a = atlas.STORE.get(atlas_id)
    top, _scores = atlas.text_query(a, text, 8)
    items = [(a.thumbs[i], f"#{i} {a.labels[i]} · {sim:.3f}") for i, sim in top]
    note = text_search_note(a, text, top)
    return items, note, payload(a, shown, file_url, highlight=[i for i, _ in top])


@user_errors("Export")
def on_atlas_export(atlas_id, shown):
    a = atlas.STORE.get(atlas_id)
    written = atlas.save(a, files.tmp_path("atlas", area="exports"), shown)
    return [str(written[k]) for k in ("points", "metrics", "overlap", "html")]


METRICS_MD = "\n".join(f"- **{k}** — {v}" for k, v in metrics.METRIC_HELP.items())


def build(names: list[str], default: str, folder: gr.Textbox) -> None:
    """The atlas tab's layout and wiring (inside an open gr.Blocks); ``folder``: the models folder box."""
    with gr.Tab("Semantic atlas", id="atlas"):
        gr.Markdown(ATLAS_INTRO)
        atlas_id = gr.State(None)
        shown_method = gr.State("pca")
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                bundled_btn = gr.Button("Open the teaching set", variant="primary")
                gr.Markdown(TEACHING_NOTE, elem_id="teaching-note")
                with gr.Accordion("How the teaching set was built", open=False):
                    gr.Markdown(datasets.describe_teaching_set())
                with gr.Accordion("The real thing (needs internet)", open=False):
                    gr.Markdown(PRESETS_NOTE)
                    preset = gr.Radio(
                        [
                            ("Replicate the forum experiment (mini-ImageNet)", "forum"),
                            ("Natural photos (CIFAR-10)", "cifar"),
                        ],
                        value="forum",
                        label="Preset",
                    )
                    preset_btn = gr.Button("Stream the preset")
                with gr.Accordion("Your images", open=False):
                    uploads = gr.File(
                        label="A .zip of class folders, or several images",
                        file_count="multiple",
                        file_types=[".zip", "image"],
                    )
                    upload_btn = gr.Button("Open the upload")
                with gr.Accordion("A Hugging Face dataset (needs internet)", open=False):
                    hub_id = gr.Textbox(label="Dataset id", placeholder="owner/name")
                    per_class = gr.Slider(2, 100, value=10, step=1, label="Images per class")
                    hub_btn = gr.Button("Stream it")
                with gr.Accordion(
                    "A saved atlas folder", open=False, visible=not public.public_mode()
                ):
                    saved_dir = gr.Textbox(label="Folder written by `python -m explorer atlas`")
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
                    color_by = gr.Dropdown(
                        ["label"],
                        value="label",
                        label="Colour the points by",
                        visible=False,
                        elem_id="atlas-color-by",
                    )
                with gr.Row():
                    vae_space = gr.Dropdown(
                        names,
                        value=default,
                        label="VAE",
                        allow_custom_value=not public.public_mode(),
                    )
                    clip_space = gr.Dropdown(
                        registry.available_embedders("clip"),
                        value=registry.default_embedder("clip"),
                        label="CLIP",
                        allow_custom_value=not public.public_mode(),
                    )
                    dino_space = gr.Dropdown(
                        registry.available_embedders("dino"),
                        value=registry.default_embedder("dino"),
                        label="DINOv2",
                        allow_custom_value=not public.public_mode(),
                    )
                    vit_space = gr.Dropdown(
                        registry.available_embedders("vit"),
                        value=registry.default_embedder("vit"),
                        label="ViT",
                        allow_custom_value=not public.public_mode(),
                    )
        atlas_status = gr.Markdown(elem_id="atlas-status")
        atlas_view = gr.HTML(
            payload_empty(),
            html_template='<div class="atlas-root"></div>',
            css_template=(STATIC / "atlas.css").read_text(),
            js_on_load=(STATIC / "atlas.js").read_text(),
            head=f'<script src="{file_url(str(plotly_js()))}"></script>',
            elem_id="atlas-view",
            padding=False,
        )
        verdict = gr.Markdown(elem_id="atlas-verdict")
        metrics_df = gr.Dataframe(
            headers=list(atlas.METRICS_COLUMNS),
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
            visible=False,
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
            text = gr.Textbox(
                label="A sentence",
                placeholder="a photo of a cat",
                scale=3,
                max_length=atlas.MAX_QUERY_CHARS,
            )
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
    space_inputs = [families, vae_space, clip_space, dino_space, vit_space, proj_method, folder]
    atlas_outputs = [
        atlas_id,
        shown_method,
        atlas_view,
        atlas_status,
        metrics_df,
        verdict,
        overlap_df,
        color_by,
        *galleries,
    ]
    bundled_btn.click(on_atlas_bundled, space_inputs, atlas_outputs, api_name="atlas_bundled")
    preset_btn.click(
        on_atlas_preset, [preset, *space_inputs], atlas_outputs, api_name="atlas_preset"
    )
    color_by.input(
        on_atlas_color, [atlas_id, shown_method, color_by], [atlas_view], api_name="atlas_color"
    )
    upload_btn.click(
        on_atlas_upload, [uploads, *space_inputs], atlas_outputs, api_name="atlas_upload"
    )
    hub_btn.click(
        on_atlas_hub, [hub_id, per_class, *space_inputs], atlas_outputs, api_name="atlas_hub"
    )
    saved_btn.click(on_atlas_saved, [saved_dir, proj_method], atlas_outputs, api_name="atlas_saved")
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
    atlas_view.point_click(on_atlas_click, [atlas_id, shown_method], select_outputs, api_name=False)
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
