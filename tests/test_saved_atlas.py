"""A saved atlas reopens with what it carries: the metrics, overlap table and neighbour lists read
back, the thumbnails served as saved; what a folder no longer vouches for (its manifest of
content hashes) is recomputed or checked, and says so."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from explorer import atlas
from explorer.analysis import metrics, similarity
from explorer.atlas import report
from explorer.ui.atlas import handlers, views

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from synthetic_atlas import synthetic_atlas

N = 240


@pytest.fixture(scope="module")
def built():
    return synthetic_atlas(N, classes=6)


@pytest.fixture
def saved(built, tmp_path):
    out = tmp_path / "saved"
    atlas.save(built, out, "pca")
    return out


def _no_metrics(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("computed a metric that the folder holds")

    for name in ("space_metrics", "neighbour_overlap", "nearest", "neighbour_lists"):
        monkeypatch.setattr(metrics, name, refuse)
    monkeypatch.setattr(similarity, "similarity_matrix", refuse)


def test_a_reopened_atlas_serves_what_it_saved_without_recomputing(built, saved, monkeypatch):
    want_table = atlas.metrics_table(built, "pca")
    want_overlap = atlas.overlap_table(built)
    want_similarity = atlas.evidence.similarity_table(built)
    _no_metrics(monkeypatch)
    a, method = atlas.load_saved(saved)
    assert method == "pca"
    assert a.reopened.manifest and a.reopened.changed == [] and a.reopened.recomputed == []
    assert a.reopened.thumbs_checked == 0
    pd.testing.assert_frame_equal(atlas.metrics_table(a, method), want_table)
    pd.testing.assert_frame_equal(atlas.overlap_table(a), want_overlap)
    pd.testing.assert_frame_equal(atlas.evidence.similarity_table(a), want_similarity)
    for i in (0, 17, N - 1):
        got = atlas.neighbours(a, i, 6)
        for s in a.spaces:
            idx, sim = np.array([j for j, _ in got[s.key]]), np.array([v for _, v in got[s.key]])
            monkeypatch.undo()
            ref_idx, ref_sim = metrics.nearest(built.embeddings[s.key], i, 6)
            _no_metrics(monkeypatch)
            np.testing.assert_array_equal(idx, ref_idx)
            np.testing.assert_allclose(sim, ref_sim, atol=1e-6)
    # the thumbnails are the saved files' bytes (not decoded and re-encoded)
    meta = json.loads((saved / "atlas.json").read_text())
    for i in (0, 5, N - 1):
        assert Path(a.thumbs[i]).read_bytes() == (saved / meta["thumbs"][i]).read_bytes()
    # and the pixels are decoded only when asked for
    assert isinstance(a.images.images, atlas.LazyImages)
    assert a.images.images[3].size == (24, 24)


def test_the_panels_open_from_the_folder_alone(saved, monkeypatch):
    _no_metrics(monkeypatch)
    a, method = atlas.load_saved(saved)
    out = handlers._atlas_outputs(a, method, views.reopened_note(a.reopened))
    assert out[1] == method
    assert json.loads(out[2])["n"] == N
    assert "as saved, checked by content hash" in out[3]


def test_an_edited_metrics_file_is_recomputed(built, saved):
    table = (saved / "metrics.csv").read_text()
    (saved / "metrics.csv").write_text(table.replace("0.", "0.9", 1))
    a, method = atlas.load_saved(saved)
    assert a.reopened.recomputed == ["metrics.csv"] and a.reopened.changed == []
    pd.testing.assert_frame_equal(atlas.metrics_table(a, method), report._metrics_table(a, method))
    assert "metrics.csv did not match" in views.reopened_note(a.reopened)


def test_an_edited_similarity_file_is_recomputed(built, saved):
    table = pd.read_csv(saved / "similarity.csv")
    table.loc[1, "cka"] = 0.5  # a number the spaces do not give
    table.to_csv(saved / "similarity.csv", index=False)
    a, _ = atlas.load_saved(saved)
    assert a.reopened.recomputed == ["similarity.csv"]
    pd.testing.assert_frame_equal(
        atlas.evidence.similarity_table(a), atlas.evidence.similarity_table(built)
    )


def test_edited_points_make_every_derived_file_recomputed(saved):
    points = pd.read_csv(saved / "points.csv")
    points.loc[: N // 2, "label"] = "class 00"  # relabelled: the saved scores no longer hold
    points.to_csv(saved / "points.csv", index=False)
    a, method = atlas.load_saved(saved)
    assert a.reopened.changed == ["points.csv"]
    assert a.reopened.recomputed == [
        "metrics.csv",
        "overlap.csv",
        "similarity.csv",
        "neighbours.npz",
    ]
    assert a.metrics == {} and a.overlaps == {} and a.neighbour_lists == {}
    got = atlas.metrics_table(a, method)
    assert got["chance"].iloc[0] == pytest.approx(metrics.chance_level(a.labels), abs=1e-4)
    assert "points.csv changed since it was saved" in views.reopened_note(a.reopened)


def test_edited_thumbnails_are_checked_and_served_safely(saved):
    meta = json.loads((saved / "atlas.json").read_text())
    as_png = io.BytesIO()
    Image.new("RGB", (200, 120), (250, 0, 250)).save(as_png, "PNG")
    (saved / meta["thumbs"][0]).write_bytes(as_png.getvalue())  # another format, too big
    (saved / meta["thumbs"][1]).write_bytes(b"<html>not an image</html>")
    small = io.BytesIO()
    Image.new("RGB", (20, 20), (0, 250, 0)).save(small, "JPEG")
    (saved / meta["thumbs"][2]).write_bytes(small.getvalue())  # a valid small JPEG
    a, _ = atlas.load_saved(saved)
    assert a.reopened.thumbs_checked == 3 and a.reopened.recomputed == []
    first = Image.open(a.thumbs[0])
    assert first.format == "JPEG" and max(first.size) <= atlas.THUMB_SIDE  # re-encoded
    grey = np.asarray(Image.open(a.thumbs[1]))
    assert grey.std() < 2  # an unreadable file becomes a grey square
    assert Path(a.thumbs[2]).read_bytes() == small.getvalue()  # checked, then served as it is
    assert "3 thumbnails did not match" in views.reopened_note(a.reopened)


def test_a_symbolic_link_among_the_thumbnails_is_not_followed(saved, tmp_path):
    meta = json.loads((saved / "atlas.json").read_text())
    secret = tmp_path / "secret.jpg"
    Image.new("RGB", (20, 20), (255, 0, 255)).save(secret)
    target = saved / meta["thumbs"][4]
    target.unlink()
    target.symlink_to(secret)
    a, _ = atlas.load_saved(saved)
    assert a.reopened.thumbs_checked == 1
    assert Path(a.thumbs[4]).read_bytes() != secret.read_bytes()


def test_a_folder_without_a_manifest_recomputes_and_checks_everything(built, saved):
    (saved / "manifest.json").unlink()
    a, method = atlas.load_saved(saved)
    assert not a.reopened.manifest
    assert a.reopened.recomputed == [
        "metrics.csv",
        "overlap.csv",
        "similarity.csv",
        "neighbours.npz",
    ]
    assert a.reopened.thumbs_checked == N
    pd.testing.assert_frame_equal(atlas.metrics_table(a, method), atlas.metrics_table(built, "pca"))
    assert "no manifest" in views.reopened_note(a.reopened)


def test_a_saved_map_is_shown_while_umap_warms_up(saved, monkeypatch):
    a, _ = atlas.load_saved(saved)
    a.coords["umap"] = a.coords["pca"]
    monkeypatch.setattr(handlers.projection, "best_available", lambda method: "pca")
    assert handlers._shown_method("umap", a)[0] == "umap"  # the atlas holds that map
    assert handlers._shown_method("umap")[0] == "pca"


def test_a_reopened_atlas_holds_no_pixels(saved):
    a, _ = atlas.load_saved(saved)
    vectors = sum(e.nbytes for e in a.embeddings.values())
    coords = sum(xy.nbytes for per in a.coords.values() for xy in per.values())
    lists = sum(i.nbytes + v.nbytes for i, v in a.neighbour_lists.values())
    assert lists == 3 * N * 10 * 8
    # the thumbnails stay on disk: past the arrays only names are held (labels, paths, files),
    # well under a kilobyte an image, where one decoded thumbnail alone is tens of kilobytes
    held = atlas.atlas_nbytes(a) - (vectors + coords + lists)
    assert 0 < held < N * 1024


def test_thumbnails_are_linked_after_the_open_and_reading_them_waits(saved):
    a, _ = atlas.load_saved(saved)
    meta = json.loads((saved / "atlas.json").read_text())
    planned = a.thumbs.planned  # at once, whether or not the files are there yet
    assert planned == list(a.thumbs) and len(planned) == N  # reading the list waits for them
    for i in (0, N // 2, N - 1):
        assert Path(planned[i]).read_bytes() == (saved / meta["thumbs"][i]).read_bytes()
    assert a.images.images[3].size == Image.open(saved / meta["thumbs"][3]).size


def test_a_thumbnail_replaced_between_its_check_and_its_link_is_served_as_checked(tmp_path):
    from explorer.atlas import manifest
    from explorer.atlas.store import Serving

    src = tmp_path / "src"
    src.mkdir()
    checked = b"\xff\xd8\xff the bytes that were checked"
    (src / "t.jpg").write_bytes(checked)
    fd = os.open(src, os.O_RDONLY)
    stack = contextlib.ExitStack()
    stack.callback(os.close, fd)
    with Serving() as serving:
        path = serving.defer(0, checked, "t.jpg", fd, manifest.digest(checked))
        (src / "other.jpg").write_bytes(b"\xff\xd8\xff something else")
        os.replace(src / "other.jpg", src / "t.jpg")  # after the check, before the link
        paths = serving.start([path], stack)
    assert Path(paths[0]).read_bytes() == checked
