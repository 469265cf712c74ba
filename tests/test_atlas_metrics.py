"""explorer.analysis.metrics' atlas section against brute-force references, scikit-learn and known answers."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from sklearn.manifold import trustworthiness as sk_trustworthiness
from sklearn.metrics import silhouette_score

from explorer.analysis import knn
from explorer.analysis.metrics import (
    METRIC_HELP,
    chance_level,
    knn_accuracy,
    nearest,
    neighbour_overlap,
    silhouette,
    space_metrics,
    top_k_similar,
    trustworthiness,
)
from tests.helpers import clusters


def unit(x):
    x = np.asarray(x, np.float64)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def knn_accuracy_reference(x, labels, k):
    """Loop-by-loop leave-one-out kNN vote; also returns how many votes were tied."""
    xn = unit(x)
    sims = xn @ xn.T
    n, k = len(labels), min(k, len(labels) - 1)
    correct = ties = 0
    for i in range(n):
        others = sorted((j for j in range(n) if j != i), key=lambda j: (-sims[i, j], j))[:k]
        votes = Counter(labels[j] for j in others)
        best = max(votes.values())
        tied = {lab for lab, c in votes.items() if c == best}
        ties += len(tied) > 1
        prediction = next(labels[j] for j in others if labels[j] in tied)  # nearest of the tied
        correct += prediction == labels[i]
    return correct / n, ties


# ------------------------------------------------------------------ kNN accuracy and chance


def test_knn_accuracy_separated_clusters_is_perfect():
    x, labels = clusters(200)
    assert knn_accuracy(x, labels, k=5) >= 0.99
    assert knn_accuracy(x, labels, k=10) >= 0.99


def test_knn_accuracy_shuffled_labels_is_near_chance():
    x, labels = clusters(200)
    shuffled = np.random.default_rng(1).permutation(labels)
    assert chance_level(shuffled) == pytest.approx(1 / 3)  # balanced: also 1/K
    for k in (5, 10):
        acc = knn_accuracy(x, shuffled, k=k)
        assert abs(acc - chance_level(shuffled)) < 0.06, (k, acc)
        assert abs(acc - 1 / 3) < 0.06


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 8, 39, 100])
def test_knn_accuracy_matches_brute_force(k):
    rng = np.random.default_rng(k)
    x = rng.normal(size=(40, 6))
    labels = [f"class-{c}" for c in rng.integers(0, 4, 40)]  # any hashable labels
    expected, ties = knn_accuracy_reference(x, labels, k)
    assert knn_accuracy(x, labels, k=k) == expected
    if k in (2, 4):
        assert ties > 0  # the tie-break rule was exercised


def test_knn_accuracy_tie_goes_to_the_nearest():
    # Point 0's two neighbours are 1 (label "b", nearer) and 2 ("c"): the tied vote says "b".
    angles = np.deg2rad([0, 10, 25, 180, 190])
    x = np.c_[np.cos(angles), np.sin(angles)]
    labels = ["a", "b", "c", "d", "e"]
    expected, _ = knn_accuracy_reference(x, labels, 2)
    assert knn_accuracy(x, labels, k=2) == expected == 0.0
    labels = ["b", "b", "c", "c", "d"]  # now point 0 is right, and point 1 (nbrs 0 "b", 2 "c")
    assert knn_accuracy(x, labels, k=2) == knn_accuracy_reference(x, labels, 2)[0]


def test_knn_accuracy_edge_cases():
    assert math.isnan(knn_accuracy(np.ones((1, 3)), [0]))
    assert knn_accuracy(np.eye(2), [0, 0], k=5) == 1.0  # k capped at N - 1
    with pytest.raises(ValueError, match="label"):
        knn_accuracy(np.eye(3), [0, 1])
    with pytest.raises(ValueError, match="NaN"):
        knn_accuracy(np.array([[0.0, np.nan], [1.0, 0.0]]), [0, 1])


def test_chance_level_is_the_majority_share():
    assert chance_level(["a", "a", "a", "b"]) == 0.75
    assert chance_level([1, 2, 3, 4]) == 0.25
    assert math.isnan(chance_level([]))


# ------------------------------------------------------------------ silhouette


def test_silhouette_separated_clusters():
    x, labels = clusters(200)
    assert silhouette(x, labels) > 0.5
    assert abs(silhouette(x, np.random.default_rng(1).permutation(labels))) < 0.05


def test_silhouette_matches_sklearn_cosine():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 10))
    labels = rng.integers(0, 5, 120)
    labels[7] = 99  # a singleton class scores 0, as in sklearn
    x[3] = 0.0  # a zero row: at cosine distance 1 from everything, as in sklearn
    expected = silhouette_score(x, labels, metric="cosine")
    assert silhouette(x, labels) == pytest.approx(expected, abs=1e-6)


def test_silhouette_undefined_is_nan():
    x = np.random.default_rng(0).normal(size=(5, 3))
    assert math.isnan(silhouette(x, [0] * 5))
    assert math.isnan(silhouette(x, list("abcde")))  # every point its own class
    assert not math.isnan(silhouette(x, list("aabcd")))


# ------------------------------------------------------------------ trustworthiness


def test_trustworthiness_identity_is_one_and_random_is_lower():
    rng = np.random.default_rng(0)
    theta = rng.uniform(0, 2 * np.pi, 300)
    circle = np.c_[np.cos(theta), np.sin(theta)]  # on the unit circle cosine and Euclidean agree
    assert trustworthiness(circle, circle, k=5) == pytest.approx(1.0)
    assert trustworthiness(circle, circle, k=10) == pytest.approx(1.0)

    x, _ = clusters(100)
    identity = trustworthiness(x[:, :2], x[:, :2] / np.linalg.norm(x[:, :2], axis=1)[:, None])
    random_map = trustworthiness(x, rng.normal(size=(x.shape[0], 2)))
    assert identity == pytest.approx(1.0)
    assert random_map < 0.7 < identity


@pytest.mark.parametrize(("n", "k", "sk_k"), [(150, 5, 5), (150, 12, 12), (6, 5, 2), (3, 5, 1)])
def test_trustworthiness_matches_sklearn(n, k, sk_k):
    rng = np.random.default_rng(n + k)
    high, low = rng.normal(size=(n, 16)), rng.normal(size=(n, 2))
    expected = sk_trustworthiness(high, low, n_neighbors=sk_k, metric="cosine")
    assert trustworthiness(high, low, k=k) == pytest.approx(expected, abs=1e-9)


def test_trustworthiness_undefined_is_nan():
    assert math.isnan(trustworthiness(np.eye(2), np.eye(2)))
    with pytest.raises(ValueError, match="same set"):
        trustworthiness(np.eye(4), np.eye(3)[:, :2])


# ------------------------------------------------------------------ neighbour overlap


def test_neighbour_overlap_known_answers():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 32))
    assert neighbour_overlap(x, x, k=10) == 1.0
    assert neighbour_overlap(x, 3.0 * x, k=10) == 1.0  # cosine: lengths do not matter
    unrelated = neighbour_overlap(x, rng.normal(size=(500, 32)), k=10)
    assert unrelated < 0.06  # expected k / (N - 1) = 0.02
    half = x.copy()
    half[:, 16:] = rng.normal(size=(500, 16))  # shares half its coordinates with x
    assert unrelated < neighbour_overlap(x, half, k=10) < 1.0


def test_neighbour_overlap_is_the_fraction_kept():
    rng = np.random.default_rng(4)
    xa = rng.normal(size=(30, 5))
    xb = xa + 0.6 * rng.normal(size=(30, 5))  # related, but neighbourhoods partly change
    k = 4

    def knn_sets(x):
        s = unit(x) @ unit(x).T
        np.fill_diagonal(s, -np.inf)
        return [set(np.argsort(-row)[:k]) for row in s]

    pairs = list(zip(knn_sets(xa), knn_sets(xb), strict=True))
    kept = np.mean([len(a & b) / k for a, b in pairs])
    jaccard = np.mean([len(a & b) / len(a | b) for a, b in pairs])
    assert 0.2 < kept < 0.9 and jaccard < kept  # the example tells the two apart
    assert neighbour_overlap(xa, xb, k=k) == pytest.approx(kept)


# ------------------------------------------------------------------ nearest / top_k_similar


def test_nearest_excludes_self_and_is_sorted():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8))
    x[10] = 2.0 * x[4]  # an exact (cosine) duplicate of point 4
    idx, sims = nearest(x, 4, k=6)
    assert 4 not in idx
    assert idx[0] == 10
    assert sims[0] == pytest.approx(1.0)
    assert np.all(np.diff(sims) <= 0)
    xn = unit(x)
    ref = xn @ xn[4]
    ref[4] = -np.inf
    np.testing.assert_array_equal(idx, np.argsort(-ref, kind="stable")[:6])
    np.testing.assert_allclose(sims, ref[idx], atol=1e-6)
    assert len(nearest(x[:3], 0, k=10)[0]) == 2
    assert nearest(x, -1, k=3)[0].tolist() == nearest(x, 59, k=3)[0].tolist()


def test_nearest_ties_go_to_the_lower_index():
    x = np.zeros((8, 3))
    x[:, 0] = 1.0  # all identical: every other point ties at similarity 1
    assert nearest(x, 5, k=3)[0].tolist() == [0, 1, 2]


def test_top_k_similar_matches_argsort():
    rng = np.random.default_rng(1)
    x, q = rng.normal(size=(300, 16)), rng.normal(size=16)
    idx, sims = top_k_similar(x, q, k=10)
    ref = unit(x) @ (q / np.linalg.norm(q))
    np.testing.assert_array_equal(idx, np.argsort(-ref)[:10])
    np.testing.assert_allclose(sims, ref[idx], atol=1e-6)
    assert len(top_k_similar(x[:4], q, k=10)[0]) == 4
    with pytest.raises(ValueError, match="dimensions"):
        top_k_similar(x, q[:3])


# ------------------------------------------------------------------ blocks, space_metrics, help


def test_blocked_results_equal_single_block(monkeypatch):
    rng = np.random.default_rng(2)
    x, low = rng.normal(size=(45, 12)), rng.normal(size=(45, 2))
    labels = rng.integers(0, 3, 45)
    before = (
        knn_accuracy(x, labels, 4),
        trustworthiness(x, low, 5),
        neighbour_overlap(x, low, 6),
        space_metrics(x, low, labels),
    )
    monkeypatch.setattr(knn, "_BLOCK", 7)  # 7 blocks, the last one short
    knn._MEMO.clear()  # the lists remembered from the single-block run would be reused
    after = (
        knn_accuracy(x, labels, 4),
        trustworthiness(x, low, 5),
        neighbour_overlap(x, low, 6),
        space_metrics(x, low, labels),
    )
    assert before == after


def test_space_metrics_agrees_with_the_single_metrics():
    x, labels = clusters(60)
    xy = np.random.default_rng(0).normal(size=(x.shape[0], 2))
    row = space_metrics(x, xy, labels)
    assert set(row) == {"knn5", "knn10", "chance", "silhouette", "trustworthiness"}
    assert row["knn5"] == knn_accuracy(x, labels, 5) >= 0.99
    assert row["knn10"] == knn_accuracy(x, labels, 10)
    assert row["chance"] == chance_level(labels)
    assert row["silhouette"] == pytest.approx(silhouette(x, labels))
    assert row["trustworthiness"] == trustworthiness(x, xy, 5)
    assert math.isnan(space_metrics(x, None, labels)["trustworthiness"])
    single = space_metrics(x[:1], None, labels[:1])
    assert single["chance"] == 1.0 and math.isnan(single["knn5"])


def test_metric_help_is_one_sentence_per_column():
    x, labels = clusters(5)
    assert set(space_metrics(x, None, labels)) <= set(METRIC_HELP)
    for key, text in METRIC_HELP.items():
        assert text.endswith(".") and text.count(". ") == 0, key
        assert 30 < len(text) < 220, key
