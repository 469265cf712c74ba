"""What the atlas sends to the browser for a big set: at most EXPLORER_DISPLAY_MAX_POINTS points,
a seeded class-stratified sample, a note that says so; the metrics and neighbours on every point."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
from PIL import Image

from explorer import atlas
from explorer.analysis import metrics
from explorer.datasets import ImageSet
from explorer.ui.atlas.payload import display_indices, payload
from tests.helpers import atlas_of


def _atlas(n: int, classes: int = 7, spaces=("vae", "clip"), seed: int = 0) -> atlas.Atlas:
    """n points in unequal classes, (n, 8) clustered embeddings and their first two coordinates
    as the 'pca' map; one shared tiny image (no thumbnails written: paths stand in)."""
    rng = np.random.default_rng(seed)
    codes = rng.choice(classes, n, p=np.arange(1, classes + 1) / sum(range(1, classes + 1)))
    labels = [f"c{c}" for c in codes]
    im = Image.new("RGB", (4, 4))
    embs = {
        k: (rng.normal(0, 1, (classes, 8))[codes] + rng.normal(0, 0.8, (n, 8))).astype(np.float32)
        for k in spaces
    }
    a = atlas.Atlas(
        uuid.uuid4().hex,
        ImageSet("big", [im] * n, labels, [f"p{i}" for i in range(n)]),
        [atlas.Space(k, f"{k}:x", k, "x") for k in spaces],
        embs,
        {"pca": {k: e[:, :2].copy() for k, e in embs.items()}},
        thumbs=[f"/tmp/thumbs/{i:06d}.jpg" for i in range(n)],
    )
    return a


def test_display_indices_keep_every_class_share_and_are_seeded():
    labels = np.repeat(["a", "b", "c", "d"], [30_000, 15_000, 4_990, 10])
    ids = display_indices(labels, 2_000)
    assert ids.size == 2_000 and np.all(np.diff(ids) > 0)  # sorted, no repeats
    counts = {c: int((labels[ids] == c).sum()) for c in "abcd"}
    # exact shares 1200 / 600 / 199.6 / 0.4: d keeps one point, which leaves c its 199
    assert counts == {"a": 1200, "b": 600, "c": 199, "d": 1}
    assert np.array_equal(ids, display_indices(labels, 2_000))
    assert not np.array_equal(ids, display_indices(labels, 2_000, seed=1))
    assert np.array_equal(display_indices(labels[:500], 2_000), np.arange(500))


def test_payload_for_50k_points_sends_at_most_the_cap(monkeypatch):
    monkeypatch.setenv("EXPLORER_DISPLAY_MAX_POINTS", "5000")
    a = _atlas(50_000)
    data = atlas_of(payload(a, "pca", lambda p: "/gradio_api/file=" + p))
    ids = np.array(data["ids"])
    assert ids.size == 5_000 and len(set(ids.tolist())) == 5_000 and data["n"] == 50_000
    assert len(data["labels"]) == len(data["thumbs"]) == 5_000
    for panel in data["panels"]:
        xy = a.coords["pca"][panel["key"]]
        assert len(panel["x"]) == len(panel["y"]) == 5_000
        assert np.allclose(panel["x"], xy[ids, 0], atol=1e-5)
        assert np.allclose(panel["y"], xy[ids, 1], atol=1e-5)
        assert panel["count"] == "showing 5,000 of 50,000 points (sampled)"
    assert data["labels"] == [a.labels[i] for i in ids]
    assert data["thumbs"][7] == "/gradio_api/file=" + a.thumbs[ids[7]]
    assert "5,000 of the 50,000" in data["note"] and "use all 50,000" in data["note"]
    # every class of the set is drawn
    assert set(data["labels"]) == set(a.labels) == set(data["classes"])


def test_small_set_is_sent_whole_without_a_note():
    a = _atlas(300)
    data = atlas_of(payload(a, "pca", str, cap=1_000))
    assert data["ids"] is None and data["note"] == "" and len(data["labels"]) == 300
    assert data["panels"][0]["count"] == "300 points"


def test_click_update_carries_the_neighbours_the_sample_leaves_out():
    a = _atlas(20_000)
    ids = set(display_indices(a.labels, 1_000).tolist())
    outside = next(i for i in range(20_000) if i not in ids)
    nb = {k: [j for j, _ in v] for k, v in atlas.neighbours(a, outside, 6).items()}
    full = json.loads(payload(a, "pca", str, cap=1_000))
    upd = json.loads(payload(a, "pca", str, selected=outside, neighbors=nb, update=True, cap=1_000))
    assert upd["update"] and upd["base"] == full["base"] and "panels" not in upd
    assert upd["selected"] == outside and upd["neighbors"] == nb
    marked = {outside} | {j for v in nb.values() for j in v}
    assert {int(k) for k in upd["extra"]} == marked - ids  # coordinates of what is not drawn
    for k in ("vae", "clip"):
        assert np.allclose(upd["extra"][str(outside)][k], a.coords["pca"][k][outside], atol=1e-5)


def test_metrics_table_is_computed_on_every_point_not_the_sample(monkeypatch):
    monkeypatch.setenv("EXPLORER_DISPLAY_MAX_POINTS", "300")
    from explorer.ui.atlas import handlers as atlas_tab

    a = _atlas(1_500)
    out = atlas_tab._atlas_outputs(a, "pca")
    data, table = atlas_of(out[2]), out[4]
    assert len(data["labels"]) == 300 and "300 of the 1,500" in data["note"]
    for key in ("vae", "clip"):
        full = metrics.space_metrics(a.embeddings[key], a.coords["pca"][key], a.labels)
        row = table[table["space"] == key].iloc[0]
        for col in ("knn5", "silhouette", "trustworthiness"):
            assert row[col] == pytest.approx(round(full[col], 4), abs=1e-9)


def test_small_columns_travel_inline_and_big_ones_as_a_file_with_the_same_values(monkeypatch):
    from explorer.ui.atlas import payload as P

    a = _atlas(3000)
    small = json.loads(payload(a, "pca", str))
    assert "inline" in small["columns"] and "url" not in small["columns"]
    monkeypatch.setattr(P, "INLINE_COLUMNS_BYTES", 1000)
    big = json.loads(payload(a, "pca", str))
    assert "url" in big["columns"] and "inline" not in big["columns"]
    assert big["columns"]["key"] == small["columns"]["key"]  # the same bytes, named alike
    one, two = P.read_columns(small), P.read_columns(big)
    assert one["labels"] == two["labels"] == list(a.labels)
    for p, q, s in zip(one["panels"], two["panels"], a.spaces, strict=True):
        np.testing.assert_array_equal(p["x"], a.coords["pca"][s.key][:, 0])
        np.testing.assert_array_equal(p["y"], q["y"])
