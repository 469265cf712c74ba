"""The few Gradio internals the app relies on, checked for shape. Gradio is pinned to one minor
version (requirements.txt and pyproject.toml); when an upgrade changes one of these, this test
fails with a sentence naming what changed and where the app uses it."""

from __future__ import annotations

import inspect

import gradio as gr
import numpy as np
import pytest
from gradio import processing_utils


def _params(fn) -> list[str]:
    return list(inspect.signature(fn).parameters)


def test_blocks_preprocess_data_keeps_its_parameters():
    got = _params(gr.Blocks.preprocess_data)
    assert got[:5] == ["self", "block_fn", "inputs", "state", "explicit_call"], (
        f"gr.Blocks.preprocess_data now takes {got}: ui.components.ExplorerBlocks.preprocess_data "
        "overrides it and passes (block_fn, inputs, state, explicit_call) on; adapt the override."
    )


def test_blocks_call_function_is_still_the_coroutine_handlers_run_in():
    assert inspect.iscoroutinefunction(gr.Blocks.call_function), (
        "gr.Blocks.call_function is no longer a coroutine: ui.components.ExplorerBlocks awaits "
        "it to translate handler failures into sentences; adapt the override."
    )
    assert "block_fn" in _params(gr.Blocks.call_function), (
        "gr.Blocks.call_function lost its block_fn parameter (ExplorerBlocks passes *args on)."
    )


def test_processing_utils_convert_still_converts_to_uint8():
    assert hasattr(processing_utils, "_convert"), (
        "gradio.processing_utils._convert is gone: ui.components.cache_image_atomically uses it "
        "to turn float arrays into uint8 the way Gradio's own image output does."
    )
    out = processing_utils._convert(np.array([[0.0, 0.5, 1.0]]), np.uint8, force_copy=False)
    assert out.dtype == np.uint8 and out.tolist() == [[0, 128, 255]], (
        f"gradio.processing_utils._convert(float -> uint8) now gives {out.tolist()}."
    )


def test_event_data_keeps_the_raw_payload_in__data():
    evt = gr.EventData(None, {"index": 3})
    assert getattr(evt, "_data", None) == {"index": 3}, (
        "gr.EventData no longer keeps the event's payload in ._data: the atlas's point_click "
        "handler (ui.atlas.handlers.on_atlas_click) reads the clicked index from it."
    )


def test_gradio_is_the_pinned_minor_version():
    from pathlib import Path

    pinned = next(
        line.split("==")[1].split()[0]
        for line in (Path(__file__).parents[1] / "requirements.txt").read_text().splitlines()
        if line.startswith("gradio==")
    )
    if gr.__version__.rsplit(".", 1)[0] != pinned.rsplit(".", 1)[0]:
        pytest.fail(
            f"Gradio {gr.__version__} is installed, the app is pinned to {pinned}: the internals "
            "above were checked against the pinned minor version."
        )


def test_the_queue_internals_the_fair_queue_uses_are_there():
    """explorer.ui.fairness.FairQueue overrides Queue.get_events and reads the waiting events;
    the gate drops unheard ones with clean_events(event_id=...). tests/test_fairshare_server.py
    runs them; this names what changed if an upgrade moves them."""
    from gradio import queueing

    assert _params(queueing.Queue.get_events) == ["self"], (
        "Queue.get_events changed its parameters: ui.fairness.FairQueue overrides it."
    )
    assert "event_id" in _params(queueing.Queue.clean_events), (
        "Queue.clean_events lost event_id: the visitor gate drops waiting events with it."
    )
    source = inspect.getsource(queueing.Event.__init__)
    for name in ("self._id", "self.session_hash", "self.enqueue_time"):
        assert name in source, f"queueing.Event no longer sets {name} (ui.fairness reads it)."
    init = inspect.getsource(queueing.Queue.__init__)
    for name in ("event_queue_per_concurrency_id", "event_ids_to_events"):
        assert name in init, f"queueing.Queue no longer has {name} (ui.fairness reads it)."


def _postprocessed(blocks_class, predictions):
    """What ``blocks_class.postprocess_data`` makes of ``predictions`` for the four outputs
    (markdown, gallery, dropdown, state) of one event, and which of the first three the session
    holds a rebuilt component for."""
    import asyncio
    import copy

    from gradio.state_holder import SessionState

    with blocks_class() as demo:
        md, gal, dd, st = gr.Markdown(), gr.Gallery(), gr.Dropdown(choices=["a", "b"]), gr.State()
        btn = gr.Button()
        btn.click(lambda: None, None, [md, gal, dd, st])
    block_fn = demo.fns[0]
    state = SessionState(demo)
    # (Gradio pops an update's value: each run gets its own copy)
    out = asyncio.run(demo.postprocess_data(block_fn, copy.deepcopy(list(predictions)), state))
    return out, [state.blocks_config.blocks[b._id] is not b for b in (md, gal, dd)]


@pytest.mark.parametrize(
    "predictions",
    [
        [gr.skip(), gr.skip(), gr.update(choices=["c"], value="c"), gr.skip()],
        ["**hi**", gr.skip(), gr.skip(), 7],
        [gr.skip(), gr.skip(), gr.skip(), gr.skip()],
        ["x", gr.update(visible=False), gr.update(value="b"), gr.skip()],
    ],
)
def test_explorer_blocks_answers_skips_as_gradio_does_without_rebuilding_them(predictions):
    from explorer.ui.components import ExplorerBlocks

    ours, ours_state = _postprocessed(ExplorerBlocks, predictions)
    theirs, theirs_state = _postprocessed(gr.Blocks, predictions)
    assert ours == theirs, "ExplorerBlocks.postprocess_data no longer answers as Gradio does"
    # Gradio rebuilds every component it is handed an update for, a skip included
    assert theirs_state == [isinstance(p, dict) for p in predictions[:3]]
    assert ours_state == [isinstance(p, dict) and p != gr.skip() for p in predictions[:3]]
