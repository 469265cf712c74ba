"""Links that open the app where a class left off: ``?tab=atlas&set=bundled&colour=source&
point=12`` (a tab, an atlas state: set, colouring, selected point), ``?step=3`` (a lesson step),
``?present=1&step=3`` (the presenter view at that step).

:func:`parse` reads the query into a :class:`Link` (bad values are dropped, never guessed);
:func:`url` writes one. :func:`wire_atlas` adds the page-load hook that opens the linked atlas
state through the atlas tab's own handlers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from urllib.parse import urlencode

import gradio as gr

TABS = ("lesson", "lab", "autoencoders", "perturb", "atlas")
SETS = ("bundled",)  # sets a link can open: the teaching set, which needs no download
MAX_POINT = 10_000_000
STEPS = range(1, 9)


@dataclass(frozen=True)
class Link:
    tab: str | None = None
    step: int | None = None
    present: bool = False
    set: str | None = None
    colour: str | None = None
    point: int | None = None
    unknown_set: str | None = None  # a set= value no link opens (said so in the atlas status)


def _int(value, ok) -> int | None:
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return n if ok(n) else None


def parse(params: Mapping[str, str]) -> Link:
    """A page's query parameters -> the :class:`Link` they name (unknown or bad values left
    out). ``colour`` (or ``color``) is a labelling name, checked against the set once open."""
    tab = str(params.get("tab", "")).strip().lower() or None
    s = str(params.get("set", "")).strip().lower() or None
    colour = str(params.get("colour") or params.get("color") or "").strip()[:64] or None
    return Link(
        tab=tab if tab in TABS else None,
        step=_int(params.get("step"), lambda n: n in STEPS),
        present=str(params.get("present", "")).strip().lower() in ("1", "true", "yes", "on"),
        set=s if s in SETS else None,
        colour=colour,
        point=_int(params.get("point"), lambda n: 0 <= n < MAX_POINT),
        unknown_set=s if s and s not in SETS else None,
    )


def url(base: str = "", **parts) -> str:
    """``base`` + the query of ``parts`` (None values left out), e.g. ``url(tab="atlas",
    set="bundled", point=12)`` -> ``?tab=atlas&set=bundled&point=12``."""
    query = {k: v for k, v in parts.items() if v is not None}
    return f"{base}?{urlencode(query)}" if query else base


def from_request(request: gr.Request | None) -> Link:
    """The :class:`Link` of the page a request came from."""
    return parse(getattr(request, "query_params", None) or {})


def wire_atlas(demo: gr.Blocks, atlas: SimpleNamespace) -> None:
    """On page load, a link's atlas state: its set opened with the tab's default spaces (as
    *Open the teaching set* does), then its colouring, then its selected point, each through
    the atlas tab's own handlers; a failure is shown in the atlas status line."""
    from explorer.ui.atlas import handlers as ah
    from explorer.ui.components import error_markdown, user_error

    n_out = len(atlas.outputs)
    n_sel = len(atlas.select_outputs)
    status = atlas.outputs[3]
    link_state = gr.State(None)

    def read(request: gr.Request):
        return from_request(request)

    def open_set(link, *inputs):
        if link is not None and link.unknown_set:
            out = [gr.skip()] * n_out
            out[3] = error_markdown(
                f"This link names the set {link.unknown_set[:40]!r}; a link opens the teaching "
                "set only (set=bundled). Open other sets with the buttons above."
            )
            return tuple(out)
        if link is None or link.set != "bundled":
            return (gr.skip(),) * n_out
        try:
            return ah.on_atlas_bundled(*inputs)
        except Exception as exc:
            out = [None] * n_out
            out[3] = error_markdown(user_error(exc).message)
            return tuple(out)

    def opened(link, atlas_id):
        if link is None or link.set is None:
            return (gr.skip(),) * len(atlas.after_open)
        return ah.on_atlas_opened(atlas_id)

    def colour(link, atlas_id, shown):
        if link is None or link.set is None or link.colour is None or atlas_id is None:
            return gr.skip(), gr.skip(), gr.skip()
        try:
            view = ah.on_atlas_color(atlas_id, shown, link.colour)
        except Exception as exc:
            return gr.skip(), gr.skip(), error_markdown(user_error(exc).message)
        return gr.update(value=link.colour), view, gr.skip()

    def point(link, atlas_id, shown, own_group):
        if link is None or link.set is None or link.point is None or atlas_id is None:
            return (gr.skip(),) * (n_sel + 1)
        try:
            return (*ah.on_atlas_select(atlas_id, shown, link.point, own_group), gr.skip())
        except Exception as exc:
            return (*(gr.skip(),) * n_sel, error_markdown(user_error(exc).message))

    hidden = {"api_name": False, "show_progress": "hidden"}
    demo.load(read, None, [link_state], **hidden).then(
        open_set, [link_state, *atlas.open_inputs], atlas.outputs, api_name=False
    ).then(opened, [link_state, atlas.atlas_id], atlas.after_open, **hidden).then(
        colour,
        [link_state, atlas.atlas_id, atlas.shown_method],
        [atlas.color_by, atlas.view, status],
        **hidden,
    ).then(
        point,
        [link_state, atlas.atlas_id, atlas.shown_method, atlas.own_group],
        [*atlas.select_outputs, status],
        **hidden,
    )
