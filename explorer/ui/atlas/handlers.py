"""The semantic atlas tab's handlers: a set opened in VAE / CLIP / DINOv2 / UNet space, and its
queries (the layout and wiring are in :mod:`.layout`; what an opener is asked, in :mod:`.request`)."""

from __future__ import annotations

import gradio as gr

from explorer import atlas, classpack, datasets
from explorer.analysis import projection
from explorer.core import files, public
from explorer.core.errors import ExplorerError
from explorer.core.safe_text import display_name, escape_markdown
from explorer.images import io as imaging
from explorer.models import registry
from explorer.spaces import cache, unet
from explorer.ui.atlas.evidence import evidence_markdown
from explorer.ui.atlas.payload import colour_note, payload, payload_empty
from explorer.ui.atlas.request import OpenRequest, opener
from explorer.ui.atlas.views import (
    export_verdict,
    group_noun,
    neighbour_caption,
    reopened_note,
    status_markdown,
    text_search_note,
    verdict_markdown,
)
from explorer.ui.components import file_url, progress_adapter, user_errors
from explorer.ui.lesson.steps import about_measured
from explorer.ui.pricing import charge_atlas, priced, query_price, upload_price

SLOTS = atlas.MAX_SPACES
GALLERY_SIDE = 6


def _shown_method(method: str, a: atlas.Atlas | None = None) -> tuple[str, str]:
    # a map the atlas holds already (a saved one's) is shown at once, UMAP warm or not
    shown = method if a is not None and method in a.coords else projection.best_available(method)
    note = ""
    if shown != method:
        note = (
            f"UMAP is warming up (numba compiles its functions once, about a minute on a small "
            f"CPU); showing {shown.upper()} meanwhile — the panels switch by themselves."
        )
    return shown, note


def _empty_galleries() -> list:
    return [gr.update(value=None, visible=False) for _ in range(SLOTS)]


def _galleries(
    a: atlas.Atlas,
    results: dict[str, list[tuple[int, float]]],
    query: int | None,
    *,
    own_group: bool = False,
    query_group: str | None = None,
):
    """One gallery per space: the selected image (a click) and its neighbours, each captioned
    with what the list is (which images were left out) and how many share the selection's
    label, counted from ``results``."""
    groups = a.images.groups
    labels = a.images.labels  # (Atlas.labels copies the list: a million names at 1M points)
    group = groups[query] if query is not None and groups is not None else query_group
    label_name = a.images.labeling_names[0]
    out = []
    for s in a.spaces:
        items = []
        if query is not None:
            items.append((a.thumbs[query], f"#{query} {display_name(labels[query])} (selected)"))
        items += [
            (a.thumbs[i], f"#{i} {display_name(labels[i])} · {sim:.2f}")
            for i, sim in results[s.key]
        ]
        hits = [i for i, _ in results[s.key]]
        caption = neighbour_caption(
            s.title,
            k=len(hits),
            same=None if query is None else sum(labels[i] == labels[query] for i in hits),
            label_name=display_name(label_name),
            group_size=None if group is None else sum(g == group for g in groups),
            own=None if group is None else sum(groups[i] == group for i in hits),
            own_group=own_group,
            clicked=query is not None,
            noun=group_noun(a.images.name),
        )
        out.append(gr.update(value=items, label=caption, visible=True))
    return out + [gr.update(value=None, visible=False) for _ in range(SLOTS - len(a.spaces))]


def _missing_families(a: atlas.Atlas) -> list[str]:
    """The families that were asked for but could not be opened (e.g. CLIP offline)."""
    opened = {s.family for s in a.spaces}
    asked = [ref.split(":", 1)[0] for ref in a.failures]
    return [f for f in dict.fromkeys(asked) if f not in opened]


def atlas_cleared(_error: Exception) -> tuple:
    """The atlas outputs emptied (a failed open leaves no earlier atlas beside its sentence)."""
    hidden = gr.update(value=None, visible=False)
    return (
        None,
        gr.skip(),
        payload_empty(),
        "",
        None,
        "",
        hidden,
        gr.update(visible=False),
        *_empty_galleries(),
    )


def _atlas_outputs(a: atlas.Atlas, method: str, extra_note: str = ""):
    shown, note = _shown_method(method, a)
    table = atlas.metrics_table(a, shown)
    v = atlas.verdict(table, a.labels)
    titles = {s.key: s.title.split(" · ")[0] for s in a.spaces}
    if v is not None and v.single_label:  # numbers that mean nothing: the sentence says why
        table = table.iloc[0:0]
    names = a.images.labeling_names
    similar = atlas.evidence.similarity_table(a)  # first: a large set's lists carry their recall
    return (
        a.id,
        shown,
        payload(a, shown, file_url),
        status_markdown(a, shown, note, extra_note),
        table,
        verdict_markdown(v, titles, _missing_families(a), group_noun(a.images.name))
        + evidence_markdown(a, table, titles, v),
        gr.update(value=similar, visible=len(a.spaces) > 1),
        gr.update(
            choices=names,
            value=a.color_by or names[0],
            interactive=len(names) > 1,
            visible=True,
        ),
        *_empty_galleries(),
    )


def _open(image_set, req: OpenRequest, progress):
    charge_atlas(image_set, req.spaces(), req.folder or None, cache.shared())  # before embedding
    a = atlas.build(
        image_set,
        req.spaces(),
        projection.best_available(req.method),
        req.folder or None,
        cache.shared(),
        progress_adapter(progress),
    )
    atlas.STORE.put(a)
    notes = [
        unet.cpu_estimate_note(s.model, len(image_set)) for s in a.spaces if s.family == "unet"
    ]
    return _atlas_outputs(a, req.method, " ".join(n for n in notes if n))


@user_errors("Opening the teaching set")
@opener()
def on_atlas_bundled(req: OpenRequest, progress=gr.Progress()):
    req = req.checked_for_public()
    progress(0, desc="building the teaching set")
    return _open(datasets.teaching_set(), req, progress)


@priced(upload_price)  # the decode, from the files' headers
@user_errors("Opening the uploaded images")
@opener("files")
def on_atlas_upload(files, req: OpenRequest, progress=gr.Progress()):
    req = req.checked_for_public()
    paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]
    if not paths:
        raise ExplorerError("Upload a .zip of class folders, or several images, first.")
    zips = [p for p in paths if p.lower().endswith(".zip")]
    if zips and len(paths) > 1:
        raise ExplorerError("Upload either one .zip or several images, not both.")
    image_set = datasets.from_zip(zips[0]) if zips else datasets.from_files(paths)
    return _open(image_set, req, progress)


@user_errors("Loading the Hugging Face dataset")
@opener("dataset_id", "per_class")
def on_atlas_hub(dataset_id, per_class, req: OpenRequest, progress=gr.Progress()):
    return _open_hub(dataset_id, per_class, req, progress)


def _open_hub(dataset_id, per_class, req: OpenRequest, progress):
    """The Hub opener's work, shared with the presets (so that a preset, itself a GPU handler,
    does not call another GPU handler)."""
    req = req.checked_for_public()
    image_set = datasets.from_hub(
        (dataset_id or "").strip(), per_class=int(per_class), progress=progress_adapter(progress)
    )
    return _open(image_set, req, progress)


@user_errors("Opening the saved atlas")
def on_atlas_saved(folder_path, method):
    public.check_folder(folder_path)
    if not (folder_path or "").strip():
        raise ExplorerError("Type the folder that `python -m explorer atlas` wrote first.")
    a, saved_method = atlas.load_saved((folder_path or "").strip())
    atlas.STORE.put(a)
    return _atlas_outputs(a, saved_method, reopened_note(a.reopened))


def pack_spaces_for(set_name) -> list[str]:
    """The spaces the open class pack embedded ``set_name`` in ([] for no such set)."""
    try:
        return classpack.open_pack_set_spaces(set_name)
    except ExplorerError:
        return []


def pack_space_choices() -> list[str]:
    """Every space any of the open pack's sets was embedded in, in the manifest's order (the
    checkbox's choices, which Gradio checks a request against)."""
    return list(dict.fromkeys(s for n in classpack.pack_set_names() for s in pack_spaces_for(n)))


def on_pack_set_change(set_name):
    """A pack set picked: the first :data:`atlas.MAX_SPACES` of its packed spaces ticked."""
    return gr.update(value=pack_spaces_for(set_name)[: atlas.MAX_SPACES])


def _shown(value: object) -> str:
    """A value a request sent, as one clean line of Markdown that shows exactly it."""
    return escape_markdown(display_name(value))


@user_errors("Opening the class pack's set")
def on_atlas_pack(set_name, spaces, method, progress=gr.Progress()):
    """One of the class pack's sets, in the packed spaces ticked (at most four; none ticked: the
    first four), from the pack's embeddings: no model runs for a packed space."""
    names = classpack.pack_set_names()
    if set_name not in names:
        raise ExplorerError(
            f"The class pack holds no set called “{_shown(set_name)}”; it holds: "
            f"{', '.join(names) or 'none (no class pack is open)'}."
        )
    image_set, packed = classpack.open_pack_set(set_name)
    chosen = list(dict.fromkeys(spaces or packed[: atlas.MAX_SPACES]))
    foreign = [s for s in chosen if s not in packed]
    if foreign:
        raise ExplorerError(
            f"The class pack did not embed {set_name} in {', '.join(map(_shown, foreign))}; "
            f"choose among {', '.join(packed)}."
        )
    if len(chosen) > atlas.MAX_SPACES:
        raise ExplorerError(
            f"Tick at most {atlas.MAX_SPACES} spaces (the atlas has {atlas.MAX_SPACES} panels); "
            f"{len(chosen)} are ticked."
        )
    progress(0, desc=f"opening {set_name} from the class pack")
    a = atlas.build(
        image_set,
        chosen,
        projection.best_available(method),
        None,
        cache.shared(),
        progress_adapter(progress),
    )
    atlas.STORE.put(a)
    rest = [s for s in packed if s not in chosen]
    note = (
        f"The class pack also holds this set in {', '.join(rest)}: tick them (up to "
        f"{atlas.MAX_SPACES} at once) and open it again."
        if rest
        else ""
    )
    return _atlas_outputs(a, method, note)


PRESETS = {
    "forum": ("timm/mini-imagenet", 20),
    "cifar": ("uoft-cs/cifar10", 30),
}
"""The online presets: (Hugging Face dataset id, images per class). ``forum`` replicates the
question that started the project ("vae.encode for similarity search on mini-ImageNet")."""


@user_errors("Loading the preset")
@opener("preset")
def on_atlas_preset(preset, req: OpenRequest, progress=gr.Progress()):
    if preset not in PRESETS:
        raise ExplorerError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    dataset_id, per_class = PRESETS[preset]
    return _open_hub(dataset_id, per_class, req, progress)


@user_errors("Colouring the panels")
def on_atlas_color(atlas_id, shown, labeling):
    a = atlas.STORE.get(atlas_id)
    names = a.images.labeling_names
    if labeling not in names:
        raise ExplorerError(f"This set has no labelling {labeling!r}; choose {', '.join(names)}.")
    a.color_by = labeling
    a.overlap_pair = None  # the labels' colours again
    return payload(a, shown, file_url)


def on_atlas_opened(atlas_id):
    """After an open: the *own recolourings* toggle shown where the set groups its images, the
    text search where the atlas has a CLIP space (five updates)."""
    try:
        a = atlas.STORE.get(atlas_id)
    except ExplorerError:  # the open failed: its sentence is shown, the rest stays as it was
        return (gr.skip(),) * 5
    grouped, clip = a.images.groups is not None, a.clip_space() is not None
    return (gr.update(visible=grouped), *(gr.update(visible=clip) for _ in range(4)))


def about_from_atlas(atlas_id):
    """After an open: the About section's measured paragraph, when the set is the teaching set
    (grouped, with a VAE space); else left as it is."""
    try:
        a = atlas.STORE.get(atlas_id)
    except ExplorerError:
        return gr.skip()
    vae = next((s for s in a.spaces if s.family == "vae"), None)
    if a.images.groups is None or vae is None:
        return gr.skip()
    table = atlas.metrics_table(a, projection.best_available("pca"))
    return about_measured(table[table.space == vae.key].assign(space="vae"), vae.model)


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
def on_atlas_select(atlas_id, shown, index, own_group=False):
    a = atlas.STORE.get(atlas_id)
    if index is None:
        raise ExplorerError("Click a point, or type the number of an image, first.")
    index = int(index)
    res = atlas.neighbours(a, index, GALLERY_SIDE, own_group=bool(own_group))
    nb = {k: [i for i, _ in v] for k, v in res.items()}
    return (
        index,
        payload(a, shown, file_url, selected=index, neighbors=nb, update=True),
        *_galleries(a, res, index, own_group=bool(own_group)),
    )


def on_atlas_click(atlas_id, shown, evt: gr.EventData, own_group=False):
    data = evt._data or {}
    return on_atlas_select(atlas_id, shown, data.get("index"), own_group)


def on_atlas_own_group(atlas_id, shown, index, own_group):
    """The *show its own recolourings* toggle: the selection's neighbours again, under the new
    rule (nothing when no image is selected)."""
    if not atlas_id or index is None:
        return (gr.skip(),) * (2 + SLOTS)
    return on_atlas_select(atlas_id, shown, index, own_group)


@priced(query_price)
@user_errors("Searching with an image")
def on_atlas_query_image(atlas_id, image, folder, own_group=False):
    folder = public.check_folder(folder, str(registry.models_dir() or ""))
    a = atlas.STORE.get(atlas_id)
    if image is None:
        raise ExplorerError("Upload a query image first.")
    photo = imaging.load_image(image)
    res = atlas.query_image(
        a, photo, GALLERY_SIDE, folder or None, cache.shared(), own_group=bool(own_group)
    )
    return _galleries(
        a, res, None, own_group=bool(own_group), query_group=atlas.query_group(a, photo)
    )


@user_errors("Text search")
def on_atlas_text(atlas_id, shown, text):
    a = atlas.STORE.get(atlas_id)
    top, _scores = atlas.text_query(a, text, 8)
    labels = a.images.labels
    items = [(a.thumbs[i], f"#{i} {display_name(labels[i])} · {sim:.3f}") for i, sim in top]
    note = text_search_note(a, text, top)
    return items, note, payload(a, shown, file_url, highlight=[i for i, _ in top], update=True)


@user_errors("Export")
def on_atlas_export(atlas_id, shown):
    a = atlas.STORE.get(atlas_id)
    out = files.tmp_path("atlas", area="exports")
    # the exports folder's cap is checked as the files are written (oldest exports go first)
    written = atlas.save(
        a,
        out,
        shown,
        verdict_html=export_verdict(a, shown),
        note=colour_note(a),
        room=lambda n: files.room("exports", n, keep=out.parent),
    )
    return [
        str(written[k])
        for k in ("points", "metrics", "similarity", "overlap", "point_overlap", "html")
    ]
