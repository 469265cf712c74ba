"""The group-aware linear probe (explorer.analysis.probe) against scikit-learn's own reference
calls and known answers on constructed data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_score

from explorer.analysis import probe as P


def clusters(n: int, d: int, classes: int, noise: float, seed: int = 0):
    """(n, d) float32 Gaussian clusters around random centres, and string labels."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, d))
    codes = rng.permutation(np.arange(n) % classes)
    x = (centres[codes] + noise * rng.standard_normal((n, d))).astype(np.float32)
    return x, np.array([f"class {c}" for c in codes])


@pytest.mark.parametrize(
    ("n", "d", "grouped"),
    [(150, 40, False), (150, 40, True), (400, 200, False), (60, 300, True)],
)
def test_fold_accuracies_equal_cross_val_score(n, d, grouped):
    x, labels = clusters(n, d, classes=3, noise=2.0, seed=n + d)
    groups = np.arange(n) // 3 if grouped else None  # three images a group
    result = P.probe(x, labels, groups=groups, seed=3)
    cv, reason = P.probe_folds(labels, groups=groups, seed=3)
    assert reason is None and result.reason is None
    assert isinstance(cv, StratifiedGroupKFold if grouped else StratifiedKFold)
    reference = cross_val_score(
        P.probe_pipeline(result.n_components, seed=3), x, labels, cv=cv, groups=groups
    )
    assert result.fold_accuracies == tuple(reference)  # exact: same folds, same fits
    assert result.accuracy == float(np.mean(reference))
    assert result.spread == float(np.std(reference))
    assert result.n_folds == 5 and result.grouped is grouped
    n_train = min(len(tr) for tr, _ in cv.split(x, labels, groups))
    assert result.n_components == min(P.PCA_WIDTH, n_train - 1, d)
    assert str(result.n_components) in result.method and result.converged


def test_groups_never_straddle_folds():
    rng = np.random.default_rng(1)
    n = 240
    groups = rng.permutation(np.repeat(np.arange(48), 5))  # 48 groups of 5
    codes = groups % 4  # a group shares one class, as a photo and its recolourings do
    x = rng.standard_normal((n, 16)).astype(np.float32) + codes[:, None]
    cv, _ = P.probe_folds(codes, groups=groups)
    splits = list(cv.split(x, codes, groups))
    assert len(splits) == 5
    seen = np.zeros(n, int)
    for train, test in splits:
        assert not set(groups[train]) & set(groups[test])
        seen[test] += 1
    assert (seen == 1).all()  # every image is tested once
    result = P.probe(x, codes, groups=groups)
    reference = cross_val_score(
        P.probe_pipeline(result.n_components), x, codes, cv=cv, groups=groups
    )
    assert result.fold_accuracies == tuple(reference)


def test_folds_lowered_to_the_smallest_class_and_the_fewest_groups():
    x, _ = clusters(60, 8, classes=2, noise=1.0)
    labels = np.array(["a"] * 57 + ["b"] * 3)
    assert P.probe(x, labels).n_folds == 3
    # class "b" spread over two groups only: two group-aware folds
    groups = np.concatenate([np.arange(57) // 3, [100, 100, 101]])
    result = P.probe(x, labels, groups=groups)
    assert result.n_folds == 2 and result.reason is None
    assert P.probe(x, labels, folds=2).n_folds == 2


def test_chance_is_the_training_majority_on_each_test_fold():
    # 80 / 20 stratified in 5 folds: each test fold is 16 "a" + 4 "b", each training fold's
    # majority is "a", so chance is 0.8 exactly.
    rng = np.random.default_rng(2)
    x = rng.standard_normal((100, 5))
    labels = np.array(["a"] * 80 + ["b"] * 20)
    result = P.probe(x, labels)
    assert result.fold_chance == (0.8,) * 5 and result.chance == pytest.approx(0.8)

    # grouped and imbalanced in three classes, against a direct count and DummyClassifier
    groups = np.arange(150) // 5
    labels = np.array(["a"] * 90 + ["b"] * 40 + ["c"] * 20)
    x = rng.standard_normal((150, 5))
    result = P.probe(x, labels, groups=groups)
    cv, _ = P.probe_folds(labels, groups=groups)
    direct = []
    for train, test in cv.split(x, labels, groups):
        values, counts = np.unique(labels[train], return_counts=True)
        direct.append(np.mean(labels[test] == values[np.argmax(counts)]))
    dummy = cross_val_score(
        DummyClassifier(strategy="most_frequent"), x, labels, cv=cv, groups=groups
    )
    assert result.fold_chance == pytest.approx(direct, abs=1e-12)
    assert result.fold_chance == pytest.approx(list(dummy), abs=1e-12)
    assert 0.5 < result.chance < 0.7


def test_separable_data_scores_one_and_random_labels_score_chance():
    x, labels = clusters(300, 20, classes=3, noise=0.05, seed=4)
    good = P.probe(x, labels)
    assert good.accuracy >= 0.99 and good.chance < 0.4

    rng = np.random.default_rng(5)
    x = rng.standard_normal((600, 20)).astype(np.float32)
    random_labels = rng.integers(0, 3, 600)
    bad = P.probe(x, random_labels)
    assert bad.reason is None
    assert abs(bad.accuracy - bad.chance) < 0.08
    assert bad.accuracy < good.accuracy - 0.5


@pytest.mark.parametrize(
    ("labels", "groups", "words"),
    [
        (["a"] * 10, None, "same label"),
        (list("abcdefghij"), None, "only 1 image"),
        (["a"] * 5 + ["b"] * 4 + ["c"], None, "only 1 image"),
        (["a"] * 5 + ["b"] * 5, [0, 1, 2, 3, 4, 5, 5, 5, 5, 5], "one group"),
    ],
)
def test_unprobeable_labellings_get_a_reason(labels, groups, words):
    x = np.random.default_rng(6).standard_normal((len(labels), 4))
    result = P.probe(x, labels, groups=groups)
    assert result.accuracy is None and result.chance is None and result.n_folds == 0
    assert words in result.reason
    assert result.reason == result.reason.strip() and not result.reason.endswith(".")


def test_non_finite_features_get_a_reason_and_bad_shapes_raise():
    x, labels = clusters(40, 4, classes=2, noise=1.0)
    x[3, 1] = np.nan
    assert "NaN" in P.probe(x, labels).reason
    with pytest.raises(ValueError, match="labels"):
        P.probe(x, labels[:-1])
    with pytest.raises(ValueError, match="groups"):
        P.probe(x, labels, groups=[0, 1])
    with pytest.raises(ValueError, match="at least 2"):
        P.probe(x, labels, folds=1)


def test_non_convergence_is_reported(monkeypatch):
    monkeypatch.setattr(P, "MAX_ITER", 2)  # a real fit, stopped by the solver's iteration cap
    x, labels = clusters(120, 30, classes=3, noise=1.5, seed=7)
    result = P.probe(x, labels)
    assert not result.converged and result.unconverged_folds == result.n_folds
    assert result.warnings and "converge" in result.warnings[0].lower()
    assert result.accuracy is not None  # the score is still shown, with the flag beside it
    monkeypatch.undo()
    assert P.probe(x, labels).converged


def test_deterministic_for_a_seed():
    x, labels = clusters(200, 150, classes=4, noise=3.0, seed=8)
    a, b = P.probe(x, labels, seed=1), P.probe(x, labels, seed=1)
    assert a == b


@pytest.mark.parametrize("grouped", [False, True])
def test_capped_training_folds_equal_cross_val_score(monkeypatch, grouped):
    """Past MAX_TRAIN images each training fold is a stratified draw of MAX_TRAIN rows and each
    test fold is whole: the fold accuracies are cross_val_score's with the same splitter."""
    monkeypatch.setattr(P, "MAX_TRAIN", 150)
    n = 400
    x, labels = clusters(n, 30, classes=3, noise=2.0, seed=11)
    groups = np.arange(n) // 4 if grouped else None
    result = P.probe(x, labels, groups=groups, seed=2)
    cv, reason = P.probe_folds(labels, groups=groups, seed=2)
    assert reason is None and isinstance(cv, P.CappedTraining)
    splits = list(cv.split(x, labels, groups))
    tested = np.zeros(n, int)
    for train, test in splits:
        assert train.size == 150 and not set(train) & set(test)
        tested[test] += 1
        if grouped:
            assert not set(groups[train]) & set(groups[test])
        # each class keeps its share of the uncut training fold, to within one row
        full = np.setdiff1d(np.arange(n), test)
        for c in np.unique(labels):
            share = np.mean(labels[full] == c) * 150
            assert abs(np.sum(labels[train] == c) - share) <= 1
    assert (tested == 1).all()  # every image is still tested once
    reference = cross_val_score(
        P.probe_pipeline(result.n_components, seed=2), x, labels, cv=cv, groups=groups
    )
    assert result.fold_accuracies == tuple(reference)
    assert result.n_components == min(P.PCA_WIDTH, 149, 30)
    assert "150 rows" in result.method
    # at or below the cap nothing is cut
    assert not isinstance(P.probe_folds(labels[:150])[0], P.CappedTraining)
