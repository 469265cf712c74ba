"""What a visitor names (files, classes, dataset ids, sentences) is shown, exported
and logged as text, never as markup, formulas, reversed lines or megabytes; the exports folder
holds its cap at every write; a NaN slider is refused naming the control."""

from __future__ import annotations

import csv
import json
import logging
import math
import re

import numpy as np
import pytest
from PIL import Image

from explorer import atlas, datasets
from explorer.core import files
from explorer.core.safe_text import BIDI
from explorer.datasets import Skip
from explorer.ui.atlas import views
from explorer.ui.atlas.payload import payload
from tests.helpers import atlas_of

HOSTILE = '<form action="https://evil.example"><img src="https://evil.example/a.png">[x](https://evil.example)'
FORMULAS = ['=HYPERLINK("https://evil.example","x")', "+1+cmd|' /C calc'!A0", "@SUM(A1:A2)", "-2+3"]
LONG = "\u202e" + "gnol " * 2000  # 10,000 characters behind a right-to-left override


def _atlas(labels: list[str], paths: list[str] | None = None, skipped=()) -> atlas.Atlas:
    n = len(labels)
    rng = np.random.default_rng(0)
    a = atlas.from_arrays(
        {"vae": rng.normal(size=(n, 4)).astype(np.float32)},
        labels,
        [Image.new("RGB", (8, 8), (i * 20 % 255, 0, 0)) for i in range(n)],
        coords={"vae": rng.normal(size=(n, 2)).astype(np.float32)},
    )
    a.images.paths[:] = paths or [f"{i}.png" for i in range(n)]
    a.images.skipped[:] = list(skipped)
    return a


def _no_markup(text: str) -> None:
    assert "<form" not in text and "<img" not in text and "](" not in text, text


def test_file_and_class_names_in_the_status_line_are_text():
    a = _atlas([HOSTILE] * 3 + ["dog"] * 3, skipped=[Skip(HOSTILE + ".txt", "not an image")])
    line = views.status_markdown(a, "pca")
    _no_markup(line)  # main: the form, the image and the link rendered
    assert "&#60;form" in line


def test_the_text_search_note_quotes_the_sentence_as_text():
    a = _atlas([HOSTILE] * 3 + ["dog"] * 3)
    note = views.text_search_note(a, HOSTILE, [(0, 0.5)])
    _no_markup(note)
    assert "&#60;form" in note


def test_an_error_shown_in_place_is_text(monkeypatch):
    from explorer.core.errors import ExplorerError
    from explorer.ui.components import in_place, user_error

    def fails():
        raise ExplorerError(f"No readable images were found in '{HOSTILE}.zip'.")

    shown = in_place(fails, 1, 0)()[0]
    _no_markup(shown)
    err = user_error(ExplorerError(HOSTILE))
    assert "<form" not in err.message and err.print_exception is False


def test_every_csv_cell_that_a_spreadsheet_would_run_is_neutralised(tmp_path):
    labels = [*FORMULAS, "dog", "dog", "-3.5"]
    a = _atlas(labels, paths=[f"{lab}.png" for lab in labels])
    atlas.save(a, tmp_path / "out", "pca")
    with open(tmp_path / "out" / "points.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    label, x = header.index("label"), header.index("x_vae")
    for row in body:
        assert not row[label].startswith(("=", "+", "@")) and not row[label].startswith("-2")
        float(row[x])  # numbers stay numbers
    assert [r[label] for r in body[:4]] == ["'" + f for f in FORMULAS]  # main: written as-is
    raw = (tmp_path / "out" / "points.csv").read_text()
    assert re.search(r'^0,"\'=HYPERLINK', raw, re.M) and ',"-3.5",' in raw  # text, quoted
    reopened, _ = atlas.load_saved(tmp_path / "out")
    assert reopened.labels == labels and reopened.images.paths == [f"{x}.png" for x in labels]


def test_the_perturbation_csv_is_neutralised_too(tmp_path):
    import pandas as pd

    from explorer.perturb import ladder

    df = pd.DataFrame(
        [{c: 0.5 for c in ladder.COLUMNS} | {"space": "=cmd()", "perturbation": "@x"}]
    )
    text = ladder.write_csv(df, tmp_path / "perturb.csv").read_text()
    assert '"\'=cmd()"' in text and '"\'@x"' in text


def test_the_exported_page_shows_labels_as_text_not_links_or_styles():
    labels = ['<a href="https://evil.example">click</a>'] * 3 + ["<b>bold</b> %{x}"] * 3
    a = _atlas(labels, paths=[f"<i>{i}</i>.png" for i in range(6)])
    a.source = "<script>alert(1)</script>"
    page = atlas.figure_html(a, "pca")
    data = page[page.index("Plotly.newPlot") :]
    assert "<a href" not in data and "<b>bold" not in data and "<i>0" not in data
    assert "%{x}" not in data.replace('"%{text}', "")  # no template the label could inject
    assert "&#60;a href" in data and "<script>alert" not in page


def test_long_and_right_to_left_labels_are_shortened_and_cleaned_for_display():
    a = _atlas([LONG] * 3 + [LONG + "x"] * 3)
    data = atlas_of(payload(a, "pca"))
    for name in (*data["labels"], *data["classes"]):
        assert len(name) <= 84 and not set(name) & BIDI  # main: 10,000 characters, reversed
    assert len(set(data["classes"])) == 2  # two labels, still two classes
    page = atlas.figure_html(a, "pca")
    data = page[page.index("Plotly.newPlot") :]  # the figure (plotly.js itself names U+202E)
    assert "\u202e" not in data and "\\u202e" not in data
    assert max(len(m) for m in re.findall(r'"name":"([^"]*)"', data)) < 200


def test_a_huge_dataset_id_is_not_echoed_or_logged_whole(caplog):
    from explorer.ui.components import user_error

    huge = "x" * 20_000_000
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(datasets.DatasetError) as info:
            datasets.from_hub(huge)
        err = user_error(info.value)
    assert len(str(info.value)) < 300 and len(err.message) < 300  # main: 20 MB, twice
    assert all(len(r.getMessage()) < 300 for r in caplog.records)


def test_a_fault_is_logged_with_its_text_clipped(caplog):
    from explorer.ui.components import user_error

    with caplog.at_level(logging.ERROR):
        user_error(ValueError("y" * 5_000_000), "Opening")
    assert caplog.records and all(len(r.getMessage()) < 40_000 for r in caplog.records)
    assert all(len(line) <= 400 for r in caplog.records for line in r.getMessage().split("\n"))


def test_exports_never_pass_their_cap_even_inside_one_prune_window(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_TMP_MAX_MB", "12")
    monkeypatch.setattr(files, "_last_prune", {})
    a = atlas.build(datasets.teaching_set(size=32), ["vae:test-tiny"], "pca")
    base = files.tmp_root() / "exports"
    for _ in range(5):  # ~4.8 MB each (plotly.js is inlined): more than the cap holds
        out = files.tmp_path("atlas", area="exports")
        atlas.save(a, out, "pca", room=lambda n, out=out: files.room(base, n, keep=out.parent))
        assert files.folder_bytes(base) <= 12 * 2**20  # main: 24 MB after five
        assert (out / "atlas.html").exists()
    with (
        pytest.raises(files.NoRoomError, match="more than the 1 MB"),
        files.room(base, 2 * 2**20, max_bytes=2**20),
    ):
        pass


@pytest.mark.app
def test_a_nan_slider_value_is_refused_naming_the_control(app_url, astronaut):
    import httpx

    base = app_url.rstrip("/")
    with open(astronaut, "rb") as fh:
        up = httpx.post(f"{base}/gradio_api/upload", files={"files": ("a.jpg", fh)}, timeout=60)
    image = {"path": up.json()[0], "meta": {"_type": "gradio.FileData"}}
    body = {"data": [image, image, "test-tiny", math.nan, "slerp", 64, ""]}
    r = httpx.post(  # NaN as JSON allows it (json.dumps writes it; a browser cannot send it)
        f"{base}/gradio_api/call/interpolate",
        content=json.dumps(body),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    event_id = r.json()["event_id"]
    with httpx.stream("GET", f"{base}/gradio_api/call/interpolate/{event_id}", timeout=120) as s:
        text = "".join(s.iter_text())
    assert "event: error" in text
    assert "Steps must be a number between 2 and 24" in text  # main: "... (ValueError) ..."


def test_safe_downloads_serve_html_as_an_attachment_with_nosniff(tmp_path):
    """The app's middleware on Gradio's own file route (the exports folder is a static path)."""
    import gradio as gr
    import httpx
    from conftest import free_port

    from explorer.ui.components import ExplorerBlocks

    page = tmp_path / "atlas.html"
    page.write_text("<html><script>alert(document.domain)</script></html>")
    thumb = tmp_path / "t.jpg"
    Image.new("RGB", (4, 4)).save(thumb)
    gr.set_static_paths([str(tmp_path)])
    with ExplorerBlocks() as demo:
        gr.Markdown("x")
    demo.queue()
    demo.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True
    )
    try:
        r = httpx.get(f"{demo.local_url}gradio_api/file={page}", timeout=30)
        assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["content-disposition"].startswith("attachment")  # main: inline
        r = httpx.get(f"{demo.local_url}gradio_api/file={thumb}", timeout=30)
        assert r.headers["x-content-type-options"] == "nosniff"
        assert not r.headers.get("content-disposition", "").startswith("attachment")
    finally:
        demo.close()
