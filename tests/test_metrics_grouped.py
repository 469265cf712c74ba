"""Group-aware kNN accuracy and its chance level, against hand-computed answers and brute force."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest

from explorer.analysis.metrics import (
    chance_level,
    chance_level_grouped,
    knn_accuracy,
    knn_accuracy_grouped,
)


def _brute_grouped_knn(x, labels, groups, k):
    """Straightforward numpy: full cosine matrix, own group dropped, stable sort, Counter vote."""
    x = np.asarray(x, np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    xn = x / np.where(norms > 0, norms, 1.0)
    sim = xn @ xn.T
    n = len(labels)
    hits = 0
    for i in range(n):
        cand = [j for j in range(n) if groups[j] != groups[i]]
        # best first; equal similarities: lower index first
        cand.sort(key=lambda j: (-round(float(sim[i, j]), 5), j))
        hits += _vote([labels[j] for j in cand[:k]]) == labels[i]
    return hits / n


def _vote(nbr_labels):
    counts = Counter(nbr_labels)
    best = max(counts.values())
    return next(lab for lab in nbr_labels if counts[lab] == best)  # nearest of the tied


def test_duplicates_score_perfectly_ungrouped_but_not_grouped():
    # Two "photos" per class; each photo appears as 3 near-identical copies. A1 lies along e0,
    # B1 along e2, A2 between them but much nearer B1, B2 along e3 leaning a little to B1.
    e = np.eye(4)
    a1, a2 = e[0], e[2] + 0.5 * e[0]
    b1, b2 = e[2], e[3] + 0.2 * e[2]
    rows, labels, groups = [], [], []
    for vec, lab, grp in [(a1, "A", 0), (a2, "A", 1), (b1, "B", 2), (b2, "B", 3)]:
        for c in range(3):
            rows.append(vec + 1e-3 * c * np.ones(4))
            labels.append(lab)
            groups.append(grp)
    x = np.array(rows)
    # Ungrouped, each copy's 2 nearest are its own copies: the vote is always right.
    assert knn_accuracy(x, labels, k=2) == 1.0
    # Grouped, k=1, cosines outside the own photo: A1 -> A2 0.447 (B1, B2: 0): right.
    # A2 -> B1 0.894: wrong. B1 -> A2 0.894: wrong. B2 -> B1 0.196 beats A2 0.175: right.
    # So 2 of the 4 photos, i.e. 6 of the 12 points, are right.
    assert knn_accuracy_grouped(x, labels, groups, k=1) == pytest.approx(6 / 12)
    assert knn_accuracy_grouped(x, labels, groups, k=1) == pytest.approx(
        _brute_grouped_knn(x, labels, groups, 1)
    )


def test_groups_of_one_point_equal_the_plain_knn():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 7))
    labels = rng.integers(0, 4, 40)
    for k in (1, 3, 5, 10):
        assert knn_accuracy_grouped(x, labels, np.arange(40), k) == knn_accuracy(x, labels, k)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 2, 5, 9])
def test_matches_brute_force_on_random_data(seed, k):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 60))
    x = rng.standard_normal((n, int(rng.integers(2, 12))))
    x[rng.random(n) < 0.1] = 0.0  # some zero rows: similarity 0 to everything
    labels = rng.integers(0, int(rng.integers(2, 5)), n).tolist()
    groups = rng.integers(0, max(2, n // int(rng.integers(1, 6))), n).tolist()
    assert knn_accuracy_grouped(x, labels, groups, k) == pytest.approx(
        _brute_grouped_knn(x, labels, groups, k)
    )


def test_matches_brute_force_across_blocks(monkeypatch):
    from explorer.analysis import knn

    monkeypatch.setattr(knn, "_BLOCK", 7)  # many row blocks, groups straddling them
    rng = np.random.default_rng(11)
    x = rng.standard_normal((50, 5))
    labels = rng.integers(0, 3, 50).tolist()
    groups = (np.arange(50) // 4).tolist()
    assert knn_accuracy_grouped(x, labels, groups, 5) == pytest.approx(
        _brute_grouped_knn(x, labels, groups, 5)
    )


def test_a_group_larger_than_n_minus_k_votes_with_what_is_left():
    # Point 0 is alone in group "x"; the 4 others share group "y". k=5 > candidates everywhere.
    x = np.array([[1.0, 0], [1, 0.1], [1, 0.2], [0, 1], [0.1, 1]])
    labels = ["a", "a", "b", "b", "b"]
    groups = ["x", "y", "y", "y", "y"]
    # 0: candidates 1..4 vote a,b,b,b (nearest first: 1 a, 2 b, 4 b, 3 b) -> b, wrong.
    # 1..4: their only candidate is point 0 (label a): right for 1 only.
    assert knn_accuracy_grouped(x, labels, groups, k=5) == pytest.approx(1 / 5)
    assert knn_accuracy_grouped(x, labels, groups, k=5) == pytest.approx(
        _brute_grouped_knn(x, labels, groups, 5)
    )


def test_edge_cases_are_nan():
    assert math.isnan(knn_accuracy_grouped(np.ones((1, 3)), ["a"], [0]))
    assert math.isnan(knn_accuracy_grouped(np.zeros((0, 3)), [], []))
    x = np.random.default_rng(0).standard_normal((6, 3))
    assert math.isnan(knn_accuracy_grouped(x, list("aabbcc"), [7] * 6))  # one group: no candidates
    assert math.isnan(knn_accuracy_grouped(x, list("aabbcc"), range(6), k=0))
    assert math.isnan(chance_level_grouped([], []))
    assert math.isnan(chance_level_grouped(list("aabbcc"), [7] * 6))
    assert math.isnan(chance_level_grouped(list("aabbcc"), range(6), k=0))


def test_bad_lengths_raise():
    x = np.ones((4, 2))
    with pytest.raises(ValueError, match="labels"):
        knn_accuracy_grouped(x, list("aab"), range(4))
    with pytest.raises(ValueError, match="group"):
        knn_accuracy_grouped(x, list("aabb"), range(3))
    with pytest.raises(ValueError, match="group"):
        chance_level_grouped(list("aabb"), range(5))


# --------------------------------------------------------------------------- chance level


def _enumerated_chance(labels, groups, k):
    """Average over every ordering of every point's candidates: the exact random-space score."""
    n = len(labels)
    total = 0.0
    for i in range(n):
        cand = [j for j in range(n) if groups[j] != groups[i]]
        kk = min(k, len(cand), n - 1)
        orders = list(itertools.permutations(cand, kk))
        total += sum(_vote([labels[j] for j in o]) == labels[i] for o in orders) / len(orders)
    return total / n


@pytest.mark.parametrize(
    ("labels", "groups", "k"),
    [
        ("aabbcc", "001122", 1),
        ("aabbcc", "001122", 3),
        ("aaaabbbbcc", "0011223344", 3),
        ("aaaabbbbcc", "0011223344", 4),
        ("aaabbbccd", "012345678", 5),  # no grouping
        ("aabbbccc", "01122334", 5),  # groups mixing labels
        ("abab", "0011", 2),
    ],
)
def test_chance_level_grouped_equals_enumeration(labels, groups, k):
    assert chance_level_grouped(list(labels), list(groups), k) == pytest.approx(
        _enumerated_chance(list(labels), list(groups), k), rel=1e-12
    )


def test_chance_level_grouped_by_hand():
    # 2 classes x 2 sources x 2 variants, k=1: a point's 6 candidates hold 2 of its label -> 1/3.
    labels = list("aaaabbbb")
    groups = list("00112233")
    assert chance_level_grouped(labels, groups, k=1) == pytest.approx(1 / 3)
    assert chance_level(labels) == 0.5  # the majority baseline does not see the groups


def test_chance_level_grouped_is_what_random_spaces_score():
    # The mean grouped kNN-5 score of many random spaces converges on the exact value.
    labels = np.repeat(np.arange(4), 6)
    groups = np.repeat(np.arange(8), 3)
    rng = np.random.default_rng(0)
    scores = [
        knn_accuracy_grouped(rng.standard_normal((24, 8)), labels, groups) for _ in range(4000)
    ]
    exact = chance_level_grouped(labels, groups)
    sem = np.std(scores) / math.sqrt(len(scores))
    assert abs(np.mean(scores) - exact) < 4 * sem
    assert exact < chance_level(labels)  # own-source variants removed: below 1/K


def test_grouped_silhouette_matches_a_brute_force_computation():
    """Own group left out of both the own-class and the other-class means, as in the kNN votes."""
    from explorer.analysis.metrics import silhouette

    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 5))
    labels = np.array([i % 3 for i in range(60)])
    groups = np.array([i // 4 for i in range(60)])
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    d = 1 - xn @ xn.T
    expected = []
    for i in range(60):
        outside = groups != groups[i]
        own = outside & (labels == labels[i])
        if not own.any():
            expected.append(0.0)
            continue
        a = d[i, own].mean()
        b = min(d[i, outside & (labels == c)].mean() for c in set(labels) - {labels[i]})
        expected.append((b - a) / max(a, b))
    assert silhouette(x, labels, groups) == pytest.approx(np.mean(expected), abs=1e-9)
    # without groups it is still sklearn's score, and the groups change it
    from sklearn.metrics import silhouette_score

    assert silhouette(x, labels) == pytest.approx(silhouette_score(x, labels, metric="cosine"))
    assert silhouette(x, labels, groups) != pytest.approx(silhouette(x, labels))
