"""The semantic atlas tab's layout and wiring: the controls, panels, tables and galleries, each
event bound to its handler in :mod:`.handlers`."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from explorer import atlas, classpack, datasets
from explorer.analysis import metrics, projection
from explorer.core import public
from explorer.models import registry
from explorer.spaces import unet
from explorer.ui import availability
from explorer.ui.atlas import evidence_layout
from explorer.ui.atlas import sweep as sweep_panel
from explorer.ui.atlas.evidence import PROBE_HELP
from explorer.ui.atlas.handlers import (
    GALLERY_SIDE,
    SLOTS,
    about_from_atlas,
    atlas_cleared,
    on_atlas_bundled,
    on_atlas_click,
    on_atlas_color,
    on_atlas_export,
    on_atlas_hub,
    on_atlas_method,
    on_atlas_opened,
    on_atlas_own_group,
    on_atlas_pack,
    on_atlas_preset,
    on_atlas_query_image,
    on_atlas_saved,
    on_atlas_select,
    on_atlas_text,
    on_atlas_tick,
    on_atlas_upload,
    on_pack_set_change,
    pack_space_choices,
    pack_spaces_for,
)
from explorer.ui.atlas.payload import payload_empty
from explorer.ui.atlas.request import CONTROL_CHOICES, FAMILY_CHOICES
from explorer.ui.components import STATIC, SafeImage, file_url, listen, scatter_js
from explorer.ui.context import TabContext

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

OWN_GROUP_LABEL = "Show each image's own recolourings among its neighbours"
OWN_GROUP_INFO = (
    "Off, as in the metrics: the other versions of a clicked image's photo are left out, so the "
    "list shows which *other* photos the space puts near it. On: they come back, fill the list "
    "by layout alone and inflate the share-its-label count (the table's 'same photo counted' "
    "row)."
)

PACK_NOTE = (
    "This app runs on a **class pack**: its models and these sets' embeddings were prepared "
    "beforehand (`python -m explorer classpack`), so a set opens without the internet and "
    "without running a model in the spaces it was packed in."
)

METRICS_MD = "\n".join(f"- **{k}** — {v}" for k, v in {**metrics.METRIC_HELP, **PROBE_HELP}.items())
SPACES_INFO = (
    "The controls need no model: what pixels, the palette or edges alone give, to compare the "
    "other spaces with."
)


def default_ticks() -> list[str]:
    """The spaces ticked at start: the VAE, CLIP and DINOv2 where they load without a download,
    and the three controls (offline: the VAE and the controls, four panels)."""
    usable = {
        family: any(registry.is_usable(n) for n in registry.available_embedders(family))
        for family in ("clip", "dino")
    }
    models = ["VAE"] + [label for label, f in FAMILY_CHOICES.items() if usable.get(f)]
    return models + list(CONTROL_CHOICES)


def build(ctx: TabContext) -> SimpleNamespace:
    """The atlas tab's layout and wiring (inside an open gr.Blocks), after the lab's: the models
    notice at its top opens the lab's *Local checkpoints*. Returns what a link's page-load hook
    drives (:func:`explorer.ui.links.wire_atlas`): the teaching set's open inputs and outputs,
    the colouring, the selection."""
    names, default, folder = ctx.names, ctx.default, ctx.folder
    with gr.Tab("Semantic atlas", id="atlas"):
        ctx.notices.append(availability.panel("atlas", ctx.folder0 or None))
        api = gr.Button(visible=False)  # the API endpoints' trigger (see common.listen)
        gr.Markdown(ATLAS_INTRO)
        atlas_id = gr.State(None)
        shown_method = gr.State("pca")
        unets = [n for n in registry.available_unets() if registry.is_usable(n)]
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
                pack_sets = classpack.pack_set_names()
                first = pack_spaces_for(pack_sets[0]) if pack_sets else []
                packed = pack_space_choices()
                with gr.Accordion(
                    "The class pack", open=True, visible=bool(pack_sets), elem_id="atlas-pack"
                ):
                    gr.Markdown(PACK_NOTE)
                    pack_set = gr.Dropdown(
                        pack_sets, value=next(iter(pack_sets), None), label="Set in the pack"
                    )
                    pack_spaces = gr.CheckboxGroup(
                        packed,
                        value=first[: atlas.MAX_SPACES],
                        label=f"Packed spaces (up to {atlas.MAX_SPACES} panels)",
                    )
                    pack_btn = gr.Button("Open it from the pack", variant="primary")
            with gr.Column(scale=2):
                with gr.Row():
                    families = gr.CheckboxGroup(
                        [c for c, f in FAMILY_CHOICES.items() if f != "unet" or unets],
                        value=default_ticks(),
                        label="Spaces (one panel each)",
                        info=SPACES_INFO,
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
                    ctx.vae_lists.append(vae_space)
                    clip_space, dino_space, vit_space = (
                        gr.Dropdown(
                            registry.available_embedders(family),
                            value=registry.default_embedder(family),
                            label=label,
                            allow_custom_value=not public.public_mode(),
                        )
                        for family, label in (("clip", "CLIP"), ("dino", "DINOv2"), ("vit", "ViT"))
                    )
                with gr.Row(visible=bool(unets)):  # only where a UNet space is usable
                    unet_space = gr.Dropdown(unets, value=next(iter(unets), None), label="UNet")
                    unet_t = gr.Dropdown(
                        list(unet.TIMESTEPS),
                        value=unet.DEFAULT_TIMESTEP,
                        label="UNet noise timestep (of 1000)",
                    )
        atlas_status = gr.Markdown(elem_id="atlas-status")
        atlas_view = gr.HTML(
            payload_empty(),
            html_template='<div class="atlas-root"></div>',
            css_template=(STATIC / "atlas.css").read_text(),
            js_on_load=(STATIC / "atlas.js").read_text(),
            head=f'<script src="{file_url(str(scatter_js()))}"></script>',
            elem_id="atlas-view",
            padding=False,
        )
        evidence = evidence_layout.build()
        evidence.selection()
        verdict = gr.Markdown(elem_id="atlas-verdict")
        metrics_df = gr.Dataframe(
            headers=list(atlas.METRICS_COLUMNS),
            label="How well each space groups the set by its labels",
            interactive=False,
            elem_id="atlas-metrics",
        )
        with gr.Accordion("What the columns mean", open=False):
            gr.Markdown(METRICS_MD)
        overlap_df = evidence.comparison()  # the similarity table the openers fill
        gr.Markdown(
            "### Neighbours\nClick a point in any panel (or type its number): it is "
            "starred in every panel, and its nearest neighbours in each space appear below."
        )
        own_group = gr.Checkbox(
            False,
            label=OWN_GROUP_LABEL,
            info=OWN_GROUP_INFO,
            visible=False,  # shown for a set whose images come in versions of one photo
            elem_id="atlas-own-group",
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
        clip_now = any(registry.is_usable(n) for n in registry.available_embedders("clip"))
        text_title = gr.Markdown("### Text search (CLIP)", visible=clip_now)
        with gr.Row(visible=clip_now) as text_row:
            text = gr.Textbox(
                label="A sentence",
                placeholder="a photo of a cat",
                scale=3,
                max_length=atlas.MAX_QUERY_CHARS,
            )
            text_btn = gr.Button("Search", scale=1)
        text_note = gr.Markdown(visible=clip_now)
        text_results = gr.Gallery(
            visible=clip_now,
            label="Best CLIP matches",
            columns=8,
            height=190,
            object_fit="cover",
            allow_preview=False,
        )
        with gr.Row():
            export_btn = gr.Button("Download coordinates, metrics and figures")
            export_files = gr.File(label="Atlas files", file_count="multiple")
        sweep_ui = sweep_panel.panel(bool(unets))  # the UNet sweep, at the end of the tab
    space_inputs = [
        *(families, vae_space, clip_space, dino_space, vit_space, proj_method, folder),
        *(unet_space, unet_t),
    ]
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
    opens = {  # a failure is shown in the status line; the API endpoints raise
        "atlas_bundled": (bundled_btn, on_atlas_bundled, space_inputs),
        "atlas_preset": (preset_btn, on_atlas_preset, [preset, *space_inputs]),
        "atlas_upload": (upload_btn, on_atlas_upload, [uploads, *space_inputs]),
        "atlas_hub": (hub_btn, on_atlas_hub, [hub_id, per_class, *space_inputs]),
        "atlas_saved": (saved_btn, on_atlas_saved, [saved_dir, proj_method]),
        "atlas_pack": (pack_btn, on_atlas_pack, [pack_set, pack_spaces, proj_method]),
    }
    # after an open: the toggle where the set has groups, text search where it has CLIP
    after_open = [own_group, text_title, text_row, text_note, text_results]
    for name, (btn, fn, inputs) in opens.items():
        listen(
            btn.click, api, fn, inputs, atlas_outputs, api_name=name, slot=3, cleared=atlas_cleared
        ).then(
            on_atlas_opened, [atlas_id], after_open, api_name=False, show_progress="hidden"
        ).then(about_from_atlas, [atlas_id], [ctx.about], api_name=False, show_progress="hidden")
    evidence.wire(api, atlas_id, shown_method, atlas_view)
    pack_set.change(on_pack_set_change, [pack_set], [pack_spaces], api_name=False)
    color_by.input(
        on_atlas_color, [atlas_id, shown_method, color_by], [atlas_view], api_name="atlas_color"
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
        [atlas_id, shown_method, selected, own_group],
        select_outputs,
        api_name="atlas_select",
    )
    atlas_view.point_click(
        on_atlas_click, [atlas_id, shown_method, own_group], select_outputs, api_name=False
    )
    own_group.input(
        on_atlas_own_group,
        [atlas_id, shown_method, selected, own_group],
        select_outputs,
        api_name=False,
    )
    query_btn.click(
        on_atlas_query_image,
        [atlas_id, query_img, folder, own_group],
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
    sweep_panel.wire(
        sweep_ui,
        api=api,
        atlas_id=atlas_id,
        unet_model=unet_space,
        method=proj_method,
        folder=folder,
        atlas_outputs=atlas_outputs,
    )
    return SimpleNamespace(
        open_inputs=space_inputs,
        outputs=atlas_outputs,
        after_open=after_open,
        atlas_id=atlas_id,
        shown_method=shown_method,
        color_by=color_by,
        view=atlas_view,
        own_group=own_group,
        select_outputs=select_outputs,
    )
