"""One translation of failures into sentences (ui.components.user_error), on every path a request
takes: a handler's @user_errors, the in-place display of the UI, and ExplorerBlocks itself for a
handler without the decorator. An ExplorerError shows its sentence; any other exception is logged
and its text (paths, values) never reaches the visitor."""

from __future__ import annotations

import logging

import gradio as gr
import pytest
from gradio_client import Client

from explorer.core.errors import ExplorerError
from explorer.ui.components import (
    ExplorerBlocks,
    error_markdown,
    in_place,
    listen,
    user_error,
    user_errors,
)
from tests.helpers import free_port

SECRET = "/root/.cache/secret-path token=abc123"


def _boom(kind: str):
    if kind == "explorer":
        raise ExplorerError("Add an image first.")
    raise ValueError(SECRET)


def test_user_error_keeps_sentences_and_hides_exception_text(caplog):
    assert user_error(ExplorerError("Add an image first.")).message == "Add an image first."
    already = gr.Error("Kept as it is.")
    assert user_error(already) is already
    with caplog.at_level(logging.ERROR, logger="explorer"):
        msg = user_error(ValueError(SECRET), "Encoding").message
    assert msg.startswith("Encoding failed (ValueError)")
    assert SECRET not in msg and "abc123" not in msg
    assert SECRET in caplog.text  # the operator's log has it


def test_decorated_and_in_place_handlers_share_the_translation():
    decorated = user_errors("Encoding")(_boom)
    with pytest.raises(gr.Error) as raised:
        decorated("other")
    assert SECRET not in raised.value.message and "Encoding failed" in raised.value.message

    shown = in_place(_boom, 2, 0)("other")  # no decorator: in_place translates
    assert shown[1] is None and SECRET not in shown[0] and shown[0].startswith("> **⚠ Not done.**")
    assert in_place(_boom, 1, None)("explorer") == (None, error_markdown("Add an image first."))


@pytest.fixture(scope="module")
def small_app():
    with ExplorerBlocks() as demo:
        api = gr.Button(visible=False)
        kind = gr.Textbox(label="kind")
        out = gr.Markdown()
        btn = gr.Button()
        listen(btn.click, api, _boom, [kind], [out], api_name="listened", slot=0)
        plain = gr.Button()
        plain.click(_boom, [kind], [out], api_name="plain")  # no decorator, no listen
    demo.queue()
    demo.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True
    )
    yield Client(demo.local_url, verbose=False)
    demo.close()


@pytest.mark.app
@pytest.mark.parametrize("endpoint", ["/listened", "/plain"])
def test_api_clients_get_the_sentence_or_a_text_free_refusal(small_app, endpoint):
    with pytest.raises(Exception) as raised:
        small_app.predict("explorer", api_name=endpoint)
    assert "Add an image first." in str(raised.value)
    with pytest.raises(Exception) as raised:
        small_app.predict("other", api_name=endpoint)
    text = str(raised.value)
    assert "could not be answered (ValueError)" in text
    assert SECRET not in text and "abc123" not in text
