"""Links that open the app where a class left off: a tab, a lesson step, the presenter view,
and an atlas state (set, colouring, selected point) opened by the page-load hook through the
atlas tab's own handlers."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from explorer.ui import links
from explorer.ui.lesson import handlers
from explorer.ui.lesson import views as lt
from tests.helpers import atlas_of


def test_parse_keeps_good_values_and_drops_bad_ones():
    link = links.parse({"tab": "Atlas", "set": "bundled", "colour": "source", "point": "12"})
    assert (link.tab, link.set, link.colour, link.point) == ("atlas", "bundled", "source", 12)
    assert links.parse({"color": "meaning"}).colour == "meaning"
    bad = links.parse({"tab": "x", "step": "9", "point": "-1", "set": "../etc", "present": "0"})
    assert bad == links.Link(unknown_set="../etc")
    assert links.parse({"present": "1", "step": "4"}) == links.Link(step=4, present=True)


def test_url_writes_what_parse_reads():
    u = links.url(tab="atlas", set="bundled", colour="source", point=12, step=None)
    assert u == "?tab=atlas&set=bundled&colour=source&point=12"
    assert links.parse(dict(p.split("=") for p in u[1:].split("&"))).point == 12


@pytest.mark.parametrize(
    ("query", "tab", "step"),
    [
        ({"tab": "atlas"}, "atlas", None),
        ({"set": "bundled", "point": "3"}, "atlas", None),
        ({"step": "3"}, handlers.TAB_ID, 3),
        ({"tab": "lab", "step": "2"}, "lab", 2),
        ({}, None, None),
    ],
)
def test_page_load_selects_the_tab_and_opens_the_step(query, tab, step):
    sel, *steps = handlers.on_load(SimpleNamespace(query_params=query))
    assert sel.get("selected") == tab
    if step is None:
        assert all("open" not in s for s in steps)
    else:
        assert [s["open"] for s in steps] == [n == step for n in lt.STEPS]


def _load_chain(demo):
    """The atlas link hook's functions, by name, from the demo's page-load chain."""
    return {
        d.fn.__name__: d
        for d in demo.fns.values()
        if getattr(d.fn, "__module__", None) == links.__name__
    }


def test_an_atlas_link_opens_the_set_colours_it_and_selects_the_point():
    from explorer.ui.app import build_demo

    demo = build_demo()
    chain = _load_chain(demo)
    assert {"read", "open_set", "opened", "colour", "point"} <= set(chain)
    link = chain["read"].fn(SimpleNamespace(query_params={"set": "bundled", "colour": "appearance",
                                                         "point": "12"}))  # fmt: skip
    opener = chain["open_set"]
    defaults = [b.value for b in opener.inputs[1:]]
    out = opener.fn(link, *defaults)
    atlas_id, shown = out[0], out[1]
    assert atlas_id and "⚠" not in str(out[3])
    data = atlas_of(out[2])
    assert len(data["labels"]) == 112  # the teaching set
    dropdown, view, _ = chain["colour"].fn(link, atlas_id, shown)
    assert dropdown["value"] == "appearance" and json.loads(view)["color_by"] == "appearance"
    selected, view, *_ = chain["point"].fn(link, atlas_id, shown, False)
    assert selected == 12 and json.loads(view)["selected"] == 12
    # a bad point or colouring is said in the status line, the rest left as it is
    wrong = links.parse({"set": "bundled", "colour": "nope", "point": "100000"})
    assert "nope" in chain["colour"].fn(wrong, atlas_id, shown)[2]
    assert "⚠" in chain["point"].fn(wrong, atlas_id, shown, False)[-1]
    # a set no link opens: a sentence, nothing opened
    other = links.parse({"set": "cifar"})
    out = opener.fn(other, *defaults)
    assert "teaching set only" in out[3] and out[0] == {"__type__": "update"}
    assert all(v == {"__type__": "update"} for v in chain["point"].fn(links.Link(), 1, "pca", 0))
