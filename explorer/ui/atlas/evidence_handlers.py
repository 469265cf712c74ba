"""The atlas's evidence handlers: the selection shared by every panel (a lasso or box in the
browser, or a list of indices over the API), the per-point neighbour overlap of two spaces as
the panels' colouring, and the similarity matrix after each open (layout in
:mod:`.evidence_layout`, words in :mod:`.evidence`)."""

from __future__ import annotations

import gradio as gr

from explorer import atlas
from explorer.atlas import evidence as ev
from explorer.core import settings
from explorer.core.errors import ExplorerError
from explorer.images import matrices
from explorer.ui.atlas.evidence import overlap_markdown, selection_markdown
from explorer.ui.atlas.payload import payload, selection_update
from explorer.ui.components import error_markdown, file_url, user_errors

__all__ = [
    "SELECTION_GALLERY",
    "default_pair",
    "on_atlas_lasso",
    "on_atlas_overlap",
    "on_atlas_overlap_clear",
    "on_atlas_selection",
    "on_evidence_opened",
]

SELECTION_GALLERY = 48
"""At most this many of a selection's images are shown (the sentence counts them all)."""
MEANING = ("clip", "dino", "vit")


def _titles(a: atlas.Atlas) -> dict[str, str]:
    short = {s.key: s.title.split(" · ")[0] for s in a.spaces}
    seen: dict[str, int] = {}
    for t in short.values():
        seen[t] = seen.get(t, 0) + 1
    return {k: (t if seen[t] == 1 else f"{t} ({k})") for k, t in short.items()}


def _label(a: atlas.Atlas, i: int) -> str:
    return a.images.labels[i]


def _selection_outputs(a: atlas.Atlas, shown: str, sel: list[int], source: str | None):
    a.selection = sel
    summary = ev.summarise_selection(a, sel, source)
    items = [(a.thumbs[i], f"#{i} {_label(a, i)}") for i in sel[:SELECTION_GALLERY]]
    gallery = gr.update(
        value=items or None,
        visible=bool(items),
        label=f"Selected images ({len(items):,} of {len(sel):,})" if items else "Selected images",
    )
    words = selection_markdown(summary, _titles(a), shown=len(items))
    return selection_update(a, shown), words, gallery


@user_errors("Selecting images")
def on_atlas_selection(atlas_id, shown, indices):
    """A list of image numbers -> the same images selected in every panel, their gallery and what
    they share under each labelling. [] (or null) clears the selection; more than the display
    cap (EXPLORER_DISPLAY_MAX_POINTS) is refused with a sentence."""
    a = atlas.STORE.get(atlas_id)
    sel = ev.check_selection(indices, len(a.images), settings.get().display_max_points)
    return _selection_outputs(a, shown, sel, None)


def on_atlas_lasso(atlas_id, shown, evt: gr.EventData):
    """The browser's lasso or box selection ({indices, space}) -> as :func:`on_atlas_selection`;
    a refused selection puts the panels back to the atlas's selection, with the sentence."""
    data = evt._data or {}
    try:
        a = atlas.STORE.get(atlas_id)
    except ExplorerError as exc:
        return gr.skip(), error_markdown(str(exc)), gr.skip()
    try:
        cap = settings.get().display_max_points
        sel = ev.check_selection(data.get("indices"), len(a.images), cap)
    except ExplorerError as exc:
        return selection_update(a, shown), error_markdown(str(exc)), gr.skip()
    return _selection_outputs(a, shown, sel, data.get("space"))


def default_pair(a: atlas.Atlas) -> tuple[str | None, str | None]:
    """The two spaces the overlap view compares first: the first model space and a
    meaning-trained one (CLIP, DINOv2, ViT) where there is one, else the next space."""
    keys = [s.key for s in a.spaces]
    if len(keys) < 2:
        return (keys[0] if keys else None), None
    models = [s.key for s in a.spaces if not s.control] or keys
    first = models[0]
    meaning = [s.key for s in a.spaces if s.family in MEANING and s.key != first]
    second = meaning[0] if meaning else next(k for k in keys if k != first)
    return first, second


def _changes_gallery(a: atlas.Atlas, changed: list[tuple[int, float]]):
    k = min(ev.K, len(a.images) - 1)
    items = [
        (a.thumbs[i], f"#{i} {_label(a, i)} · {round(v * k)} of {k} shared") for i, v in changed
    ]
    return gr.update(
        value=items or None,
        visible=bool(items),
        label="The images whose neighbours change most (least shared first)",
    )


@user_errors("Comparing neighbours")
def on_atlas_overlap(atlas_id, shown, space_a, space_b):
    """Two space keys -> the panels coloured by each image's neighbour overlap between them, the
    sentence, and the images that change most (fewest neighbours shared first)."""
    a = atlas.STORE.get(atlas_id)
    if not space_a or not space_b:
        raise ExplorerError("Choose two spaces to compare (the atlas needs at least two).")
    values = ev.point_overlap(a, space_a, space_b)  # checks the keys
    changed = ev.changes(a, space_a, space_b)
    a.overlap_pair = (space_a, space_b)
    return (
        payload(a, shown, file_url),
        overlap_markdown(a, space_a, space_b, values, changed),
        _changes_gallery(a, changed),
    )


@user_errors("Colouring the panels")
def on_atlas_overlap_clear(atlas_id, shown):
    """Back to the labelling's colours."""
    a = atlas.STORE.get(atlas_id)
    a.overlap_pair = None
    return payload(a, shown, file_url), "", gr.update(value=None, visible=False)


def on_evidence_opened(atlas_id):
    """After an open (or a failed one): the similarity matrix, the two spaces to compare, the
    selection the atlas carries (a saved one), the overlap view emptied (eight updates)."""
    hidden = gr.update(value=None, visible=False)
    try:
        a = atlas.STORE.get(atlas_id)
    except ExplorerError:
        return (hidden, gr.update(visible=False), gr.update(), gr.update(), "", hidden, "", hidden)
    titles = _titles(a)
    several = len(a.spaces) > 1
    keys, cka, mutual = ev.similarity_matrices(a)
    note = " (own group left out)" if ev.lists_leave_groups_out(a) else ""
    figure = matrices.similarity_matrices([titles[k] for k in keys], cka, mutual, ev.K, note)
    choices = [(titles[s.key], s.key) for s in a.spaces]
    first, second = default_pair(a)
    summary = ev.summarise_selection(a, a.selection)
    items = [(a.thumbs[i], f"#{i} {_label(a, i)}") for i in a.selection[:SELECTION_GALLERY]]
    return (
        gr.update(value=figure, visible=several),
        gr.update(visible=several),
        gr.update(choices=choices, value=first),
        gr.update(choices=choices, value=second),
        selection_markdown(summary, titles, shown=len(items)) if a.selection else "",
        gr.update(value=items or None, visible=bool(items)),
        "",
        hidden,
    )
