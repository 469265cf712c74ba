"""explorer.analysis.knn's shortcuts give exactly what the plain blocked passes give: remembered lists,
ranks from them, the k-d tree's map neighbours; and space_metrics matches a brute-force
reference (sklearn) on a small set."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.manifold import trustworthiness as sk_trust
from sklearn.metrics import silhouette_score

from explorer.analysis import knn, metrics


def unit(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, d))
    x = centres[rng.integers(0, 6, n)] + 0.7 * rng.normal(size=(n, d))
    return metrics._unit_rows(x)


def test_cosine_knn_is_the_plain_pass_and_remembered():
    xn = unit(300, 16)
    want_i, want_s, _ = knn._neighbours(xn, 12)
    got_i, got_s = knn.cosine_knn(xn, 12)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_array_equal(got_s, want_s)
    small_i, _ = knn.cosine_knn(xn.copy(), 5)  # same content, another array: a slice
    np.testing.assert_array_equal(small_i, want_i[:, :5])
    other = xn.copy()
    other[0] = other[1]  # other content: its own lists
    assert knn.cosine_knn(other, 5)[0][0, 0] == 1


@pytest.mark.parametrize("spread", [0.05, 5.0])  # map neighbours mostly inside / outside
def test_ranks_equal_the_full_pass(spread):
    xn = unit(400, 8, seed=1)
    rng = np.random.default_rng(2)
    low = xn[:, :2] + spread * rng.normal(size=(400, 2))
    targets = knn.euclidean_knn(low, 5)
    _, _, want = knn._neighbours(xn, 1, ranks_of=targets)
    np.testing.assert_array_equal(knn.ranks(xn, targets), want)


def tied(n: int, d: int, seed: int) -> np.ndarray:
    """Unit rows on a coarse grid, with exact duplicates: many equal similarities."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=(n, d)).astype(np.float64)
    x[x.sum(axis=1) == 0, 0] = 1.0
    x[n // 2 : n // 2 + 20] = x[:20]  # duplicates
    return metrics._unit_rows(x)


@pytest.mark.parametrize("wide", [3, 40, 1024])  # the wide list: tiny, partial, every point
@pytest.mark.parametrize("block", [7, 1024])
def test_wide_lists_give_the_plain_pass_and_exact_ranks(monkeypatch, wide, block):
    monkeypatch.setattr(knn, "WIDE_MAX", wide)
    monkeypatch.setattr(knn, "MEMO_K", 3)
    monkeypatch.setattr(knn, "_BLOCK", block)
    knn._MEMO.clear()
    xn = tied(150, 4, seed=wide)
    want_i, want_s, _ = knn._neighbours(xn, 8)
    got_i, got_s = knn.cosine_knn(xn, 8)  # K = 8 taken from a wide list of 3, 40 or 149
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_array_equal(got_s, want_s)
    rng = np.random.default_rng(wide)
    targets = rng.integers(0, 150, size=(150, 5))  # anywhere: near, far, tied, even itself
    targets[:, 0] = want_i[:, 0]  # and the best neighbour
    _, _, want = knn._neighbours(xn, 1, ranks_of=targets)
    np.testing.assert_array_equal(knn.ranks(xn, targets), want)


def test_ranks_inside_the_wide_lists_need_no_second_pass(monkeypatch):
    xn = unit(500, 8, seed=7)
    idx, _ = knn.cosine_knn(xn, 50)
    targets = idx[:, [0, 7, 19, 33, 49]]  # all among the remembered neighbours
    _, _, want = knn._neighbours(xn, 1, ranks_of=targets)
    passes = []
    real = knn._neighbours
    monkeypatch.setattr(knn, "_neighbours", lambda *a, **kw: passes.append(1) or real(*a, **kw))
    got = knn.ranks(xn, targets)
    np.testing.assert_array_equal(got, want)
    assert passes == []
    assert knn.wide_width(500) == 499 and knn.wide_width(10_000) == 838


def test_euclidean_knn_equals_brute_force_with_ties_and_duplicates():
    rng = np.random.default_rng(3)
    grid = rng.integers(0, 6, size=(500, 2)).astype(np.float64)  # many exact ties, duplicates
    for y in (grid, rng.normal(size=(700, 2)), grid[:12]):
        for k in (1, 5, 7):
            np.testing.assert_array_equal(knn.euclidean_knn(y, k), knn._euclidean_knn_brute(y, k))


def test_space_metrics_match_sklearn_and_brute_force():
    x = unit(240, 12, seed=4)
    labels = np.random.default_rng(5).integers(0, 4, 240)
    labels[:60] = np.arange(60) % 4  # every label present
    xy = x[:, :2] + 0.2 * np.random.default_rng(6).normal(size=(240, 2))
    m = metrics.space_metrics(x, xy, labels)
    assert m["trustworthiness"] == pytest.approx(sk_trust(x, xy, n_neighbors=5, metric="cosine"))
    assert m["silhouette"] == pytest.approx(silhouette_score(x, labels, metric="cosine"))
    s = x @ x.T
    np.fill_diagonal(s, -np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(240), s.shape), -s), axis=1)
    for k in (5, 10):
        votes = labels[order[:, :k]]
        counts = (votes[:, :, None] == votes[:, None, :]).sum(axis=2)
        winner = votes[np.arange(240), np.argmax(counts == counts.max(1, keepdims=True), 1)]
        assert m[f"knn{k}"] == pytest.approx((winner == labels).mean())


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tiny_sets_rank_like_the_plain_pass(n):
    xn = unit(n, 3, seed=n)
    targets = np.zeros((n, 2), np.int64)  # row 0 for everyone: itself for the first row
    _, _, want = knn._neighbours(xn, 1, ranks_of=targets)
    np.testing.assert_array_equal(knn.ranks(xn, targets), want)
    idx, _ = knn.cosine_knn(xn, 5)
    assert idx.shape == (n, n - 1)


@pytest.mark.parametrize("wide", [3, 12, 1024])  # most rows from the wide lists, some, none
def test_lists_outside_groups_equal_the_masked_pass(monkeypatch, wide):
    monkeypatch.setattr(knn, "WIDE_MAX", wide)
    monkeypatch.setattr(knn, "MEMO_K", 3)
    knn._MEMO.clear()
    xn = tied(150, 4, seed=wide)
    groups = np.arange(150) // 5  # groups of 5 ...
    groups[:40] = 0  # ... and one of 40: rows whose wide list is all their own group
    want_i, want_s, _ = knn._neighbours(xn, 8, groups=groups)
    got_i, got_s = knn.cosine_knn_outside_groups(xn, 8, groups)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_array_equal(got_s, want_s)
    assert not (groups[got_i] == groups[:, None]).any()
    few = np.zeros(150, np.int64)
    few[-3:] = 1  # most rows have only 3 points outside their group: -inf tails, as in the pass
    want_i, want_s, _ = knn._neighbours(xn, 8, groups=few)
    got_i, got_s = knn.cosine_knn_outside_groups(xn, 8, few)
    np.testing.assert_array_equal(got_s, want_s)
    np.testing.assert_array_equal(got_i, want_i)
