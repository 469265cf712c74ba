"""explorer.analysis.ann: the approximate neighbour lists of a large set (pynndescent) reach
recall@10 ≥ 0.95 on clustered data and keep the exact path's layout; the recall measure is 1 for
exact lists and falls with corrupted ones; the switch at the threshold; the metrics' stratified
sample keeps every class's share, and the table, the saved files and the status line say what
was sampled or approximated. One index build per file (numba compiles once)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from explorer import atlas
from explorer.analysis import ann, knn, metrics
from explorer.atlas import evidence, report
from explorer.ui.atlas import views

N, D, K = 30_000, 32, 10


def clustered(n: int, d: int, seed: int = 0, classes: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, d)).astype(np.float32)
    x = centres[rng.integers(0, classes, n)] + 0.45 * rng.normal(size=(n, d)).astype(np.float32)
    return metrics.unit_rows(x)


@pytest.fixture(scope="module")
def data():
    xn = clustered(N, D)
    idx, sim, found = ann.knn_lists(xn, K, above=20_000)  # past the threshold: approximate
    exact_idx, exact_sim = knn.cosine_knn(xn, K)
    return xn, idx, sim, found, exact_idx, exact_sim


def test_approximate_recall_at_10_is_at_least_095(data):
    _, idx, _, found, exact_idx, _ = data
    assert found is not None and found.checked == ann.RECALL_ROWS
    assert found.recall >= 0.95
    direct = (idx[:, :, None] == exact_idx[:, None, :]).any(axis=2).mean()  # against every row
    assert direct >= 0.95
    assert abs(found.recall - direct) < 0.01  # the 20,000-row estimate reads the same


def test_recall_is_one_for_exact_lists_and_falls_for_corrupted_ones(data):
    xn, _, _, _, exact_idx, _ = data
    assert ann.recall(xn, exact_idx, K) == (1.0, ann.RECALL_ROWS)
    rng = np.random.default_rng(1)
    bad = exact_idx.copy()
    bad[:, 5:] = rng.integers(0, N, (N, 5))  # half of every list random: recall about 0.5
    got, _ = ann.recall(xn, bad, K, rows=3000)  # (no list to bound the search: fewer rows)
    assert 0.47 < got < 0.54
    same = np.repeat(exact_idx[:, :1], K, axis=1)  # one true neighbour repeated counts once
    assert ann.recall(xn, same, K, rows=2000)[0] == pytest.approx(0.1)
    selfish = exact_idx.copy()
    selfish[:, 0] = np.arange(N)  # the point itself is never a hit
    assert ann.recall(xn, selfish, K, rows=2000)[0] == pytest.approx(0.9)


def test_the_layout_is_the_exact_paths(data):
    xn, idx, sim, found, exact_idx, exact_sim = data
    assert idx.shape == exact_idx.shape == (N, K) and idx.dtype == exact_idx.dtype == np.int64
    assert sim.shape == (N, K) and sim.dtype == exact_sim.dtype == np.float32
    assert not (idx == np.arange(N)[:, None]).any()  # self excluded
    assert (np.diff(np.sort(idx, axis=1), axis=1) != 0).all()  # distinct
    assert (np.diff(sim, axis=1) <= 0).all()  # best first
    cos = np.einsum("nd,nkd->nk", xn, xn[idx])
    np.testing.assert_allclose(sim, cos, atol=1e-6)  # true cosines, not the index's distances
    rows = np.flatnonzero((np.sort(idx, axis=1) == np.sort(exact_idx, axis=1)).all(axis=1))
    assert rows.size > N // 2
    same_order = (idx[rows] == exact_idx[rows]).all(axis=1)
    assert same_order.mean() > 0.999  # same set: same order (but float32 near-ties)
    assert found.idx.shape[1] >= ann.ANN_K and found.idx.dtype == np.int32


def test_exact_rows_with_a_hint_are_the_full_selection(data):
    xn, idx, _, _, exact_idx, _ = data
    rows = ann.sample_rows(N, 3000, seed=2)
    hinted = ann.exact_rows(xn, rows, K, idx[rows])
    plain = ann.exact_rows(xn, rows, K)
    np.testing.assert_array_equal(hinted[0], plain[0])
    np.testing.assert_array_equal(hinted[1], plain[1])
    assert (hinted[0] == exact_idx[rows]).mean() > 0.999  # only float32 near-ties may differ


def test_the_threshold_switches_paths(data):
    small = clustered(2_000, D, seed=3)
    idx, sim, found = ann.knn_lists(small, K)  # below ANN_ABOVE: the exact pass, bit for bit
    want_i, want_s = knn.cosine_knn(small, K)
    assert found is None
    np.testing.assert_array_equal(idx, want_i)
    np.testing.assert_array_equal(sim, want_s)
    lists = metrics.neighbour_lists(small, K)
    np.testing.assert_array_equal(lists[0], want_i.astype(np.int32))
    assert data[3] is not None  # the same call past its threshold gave approximate lists
    assert ann.knn_lists(data[0], K, above=20_000)[2] is data[3]  # remembered, not rebuilt


def test_the_stratified_sample_keeps_class_shares():
    rng = np.random.default_rng(4)
    labels = rng.choice(["a", "b", "c", "d"], 100_000, p=[0.7, 0.2, 0.0999, 0.0001]).astype("<U4")
    labels[:2] = "rare"  # two points of 100,000: a share below one row
    rows = metrics.stratified_sample(labels, 20_000, seed=0)
    assert rows.size == 20_000 and (np.diff(rows) > 0).all()
    names, full = np.unique(labels, return_counts=True)
    got = np.array([(labels[rows] == c).sum() for c in names])
    share = full * 20_000 / labels.size
    assert (np.abs(got - share) <= 1).all()  # every class its share, to within one row
    assert got[names == "rare"][0] == 1  # and never left out
    np.testing.assert_array_equal(rows, metrics.stratified_sample(labels, 20_000, seed=0))
    assert not np.array_equal(rows, metrics.stratified_sample(labels, 20_000, seed=1))
    np.testing.assert_array_equal(metrics.stratified_sample(labels[:50], 100), np.arange(50))


def small_atlas(n: int = 600):
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 4, n)
    codes[:4] = np.arange(4)
    embs = {}
    for key in ("clip", "dino"):
        centres = rng.normal(size=(4, 16))
        embs[key] = (centres[codes] + 0.6 * rng.normal(size=(n, 16))).astype(np.float32)
    tiles = [Image.new("RGB", (8, 8), (60 * c, 40, 200 - 40 * c)) for c in range(4)]
    coords = {k: v[:, :2].copy() for k, v in embs.items()}
    return atlas.from_arrays(
        embs, [f"c{c}" for c in codes], [tiles[c] for c in codes], coords, "pca"
    )


def test_a_large_sets_metrics_are_a_stratified_samples_and_say_so(monkeypatch, tmp_path):
    monkeypatch.setattr(metrics, "METRICS_FULL_MAX", 500)
    monkeypatch.setattr(metrics, "METRICS_SAMPLE", 300)
    a = small_atlas()
    table = atlas.metrics_table(a, "pca")
    assert set(table["sample"]) == {"computed on a stratified sample of 300 of 600"}
    rows = report.metric_rows(a)
    x, xy = a.embeddings["clip"][rows], a.coords["pca"]["clip"][rows]
    want = metrics.space_metrics(x, xy, [a.labels[i] for i in rows])
    got = table[table["space"] == "clip"].iloc[0]
    for col in ("knn5", "knn10", "silhouette", "trustworthiness"):
        assert got[col] == round(want[col], 4)
    atlas.save(a, tmp_path, "pca")
    saved = pd.read_csv(tmp_path / "metrics.csv", dtype=str, keep_default_na=False)
    assert set(saved["sample"]) == {"computed on a stratified sample of 300 of 600"}
    again, _ = atlas.load_saved(tmp_path)
    assert "metrics.csv" not in again.reopened.recomputed
    assert set(atlas.metrics_table(again, "pca")["sample"]) == set(saved["sample"])


def test_a_large_sets_lists_are_approximate_saved_with_their_recall(monkeypatch, tmp_path):
    monkeypatch.setattr(ann, "ANN_ABOVE", 400)
    a = small_atlas()
    assert views.approximate_note(a) == ""
    table = evidence.similarity_table(a)  # the open's first use of the lists
    assert set(a.neighbour_recall) == {"clip", "dino"}
    assert all(r >= 0.95 and c == 600 for r, c in a.neighbour_recall.values())
    assert (table["mutual_knn10"] <= 1).all()
    note = views.status_markdown(a, "pca")
    assert "approximate index (pynndescent), recall@10" in note and "on 600 points" in note
    atlas.save(a, tmp_path, "pca")
    with np.load(io.BytesIO((tmp_path / "neighbours.npz").read_bytes())) as z:
        assert z["recall_clip"].tolist() == list(a.neighbour_recall["clip"])
        np.testing.assert_array_equal(z["idx_clip"], a.neighbour_lists["clip"][0][:, :K])
    again, _ = atlas.load_saved(tmp_path)
    assert again.neighbour_recall == a.neighbour_recall
    assert views.approximate_note(again) == views.approximate_note(a)


def test_points_sharing_a_thumbnail_share_one_saved_file(tmp_path):
    a = small_atlas()
    assert len(set(a.thumbs)) == 4
    atlas.save(a, tmp_path, "pca")
    assert len(list((tmp_path / "thumbs").iterdir())) == 4
    again, _ = atlas.load_saved(tmp_path)
    assert again.reopened.thumbs_checked == 0 and len(again.thumbs) == 600
    assert len(set(again.thumbs)) == 4
    assert again.images.images[599].size == (8, 8)
