"""(N,D) features + (N,) labels [+ (N,) groups] -> cross-validated linear-probe accuracy in [0,1]
beside its chance level under the same folds.

The probe is one fixed scikit-learn pipeline, the same for every space (:data:`POLICY`):

1. ``StandardScaler``: every feature to zero mean and unit variance (on the training fold);
2. ``PCA`` to ``k = min(PCA_WIDTH, n_train - 1, D)`` principal axes, no whitening, fitted on the
   training fold (scikit-learn's default solver, seeded: randomised SVD on large sets);
3. ``LogisticRegression`` (multinomial, L2, ``C = 1.0``, the ``newton-cg`` solver, up to
   ``MAX_ITER`` iterations). The solver only changes how the one optimum is reached: on small
   separable sets with many classes (the teaching set's 16 photos) lbfgs needs ~450 iterations
   where newton-cg needs ~15, about 3× less time; at 2,000 rows they cost about the same.

Large sets: a training fold of more than ``MAX_TRAIN`` rows is cut to ``MAX_TRAIN`` of them, drawn
per class in proportion (seeded by ``seed`` and the fold's number), and the fold is still tested
on every one of its held-out rows. At the app's 10,000-image limit that bounds a fold to a
2,000 × D standardisation, PCA and fit; every image is still tested once. Sets of up to
``MAX_TRAIN`` images are never cut.

Why a fixed PCA width and not nested CV over C: the PCA step is an orthogonal projection (no
whitening), so the L2 penalty means the same thing after it, and when a training fold has at most
``PCA_WIDTH + 1`` rows (the 112-image teaching set) it keeps every direction the training rows
span; the L2-regularised solution lies in that span, so the probe is then logistic regression
on the standardised features (up to the solver's tolerance). Past that size it caps the fit at
128 dimensions; nested CV over C would multiply the full-width fit by the inner folds × the grid
of C (the cost per fold is measured in bench/evidence_cost.py). ``C`` is not tuned: one value
for every space.

Folds: ``StratifiedGroupKFold`` when groups are given (no group in both the training and the test
rows of a fold), else ``StratifiedKFold``; both shuffled with ``seed``. The number of folds is
lowered to what the data allow: the smallest class's images (or, with groups, the fewest groups
any class appears in). Where no score can be given, the result carries a short plain ``reason``
(no class or group names in it: the UI may show it unescaped) and no numbers.

Chance is what predicting the training fold's majority class scores on that fold's test rows
(scikit-learn's ``DummyClassifier(strategy="most_frequent")``: ties go to the smallest label),
averaged over the same folds as the probe.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # scikit-learn is imported where a probe runs, not when the app starts
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
    from sklearn.pipeline import Pipeline

__all__ = [
    "MAX_ITER",
    "MAX_TRAIN",
    "PCA_WIDTH",
    "POLICY",
    "C",
    "CappedTraining",
    "ProbeResult",
    "probe",
    "probe_folds",
    "probe_pipeline",
]

PCA_WIDTH = 128
C = 1.0
MAX_ITER = 1000
MAX_TRAIN = 2000
SOLVER = "newton-cg"
POLICY = (
    f"standardised features, PCA to min({PCA_WIDTH}, training rows - 1) axes per training fold, "
    f"logistic regression (L2, C={C:g}); at most {MAX_TRAIN:,} training rows a fold (a "
    "stratified draw), tested on all held-out rows"
)
"""The regularisation policy in words, the same for every space (for the metrics table)."""


@dataclass(frozen=True)
class ProbeResult:
    """One probe: mean accuracy over folds in [0,1], its per-fold values and spread, and chance.

    ``accuracy``/``chance``/``spread`` are None (and the fold tuples empty) when ``reason`` says
    why no score can be given. ``spread`` is the standard deviation of the fold accuracies
    (ddof 0). ``converged`` is False when any fold's fit stopped before the solver converged;
    ``warnings`` holds scikit-learn's messages for those folds.
    """

    accuracy: float | None
    chance: float | None
    spread: float | None
    fold_accuracies: tuple[float, ...]
    fold_chance: tuple[float, ...]
    n_folds: int
    grouped: bool
    method: str
    n_components: int = 0
    converged: bool = True
    unconverged_folds: int = 0
    warnings: tuple[str, ...] = field(default_factory=tuple)
    reason: str | None = None


def probe_pipeline(n_components: int, *, seed: int = 0) -> Pipeline:
    """An unfitted probe: StandardScaler -> PCA(n_components, seeded) -> LogisticRegression."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("pca", PCA(n_components=int(n_components), random_state=seed)),
            ("logreg", LogisticRegression(C=C, max_iter=MAX_ITER, solver=SOLVER)),
        ]
    )


def _codes(values: Sequence | np.ndarray, n: int, what: str) -> np.ndarray:
    """(N,) labels of any hashable kind -> (N,) int codes in sorted label order."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"Got {arr.shape[0] if arr.ndim else 1} {what} for {n} points.")
    if arr.dtype == object:
        arr = arr.astype(str)
    return np.unique(arr, return_inverse=True)[1].astype(np.int64)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def probe_folds(
    labels: Sequence | np.ndarray,
    *,
    groups: Sequence | np.ndarray | None = None,
    folds: int = 5,
    seed: int = 0,
) -> tuple[StratifiedKFold | StratifiedGroupKFold | None, str | None]:
    """(N,) labels [+ (N,) groups] -> (the fold object the probe uses, None) or (None, reason).

    The number of folds is ``folds`` lowered to the smallest class's size (with groups: to the
    fewest distinct groups any class appears in); below 2 the labelling gets a reason instead.
    A set of more than :data:`MAX_TRAIN` images gets the folds wrapped in
    :class:`CappedTraining` (training folds cut to MAX_TRAIN rows, test folds whole).
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}.")
    y = _codes(labels, len(labels), "labels")
    n_classes = int(y.max()) + 1 if y.size else 0
    if n_classes < 2:
        return None, "every image has the same label" if y.size else "there are no images"
    if groups is None:
        smallest = int(np.bincount(y).min())
        if smallest < 2:
            return None, "a class has only 1 image; the probe needs at least 2 per class"
        cv = StratifiedKFold(min(folds, smallest), shuffle=True, random_state=seed)
        return _capped(cv, y.size, seed), None
    g = _codes(groups, y.shape[0], "groups")
    pairs = np.unique(np.stack([y, g], axis=1), axis=0)  # distinct (class, group) pairs
    fewest = int(np.bincount(pairs[:, 0], minlength=n_classes).min())
    if fewest < 2:
        return None, (
            "a class has all its images in one group; group-aware folds need every class "
            "in at least 2 groups"
        )
    cv = StratifiedGroupKFold(min(folds, fewest), shuffle=True, random_state=seed)
    return _capped(cv, y.size, seed), None


def _capped(cv, n: int, seed: int):
    return CappedTraining(cv, MAX_TRAIN, seed) if n > MAX_TRAIN else cv


def _stratified_draw(train: np.ndarray, y: np.ndarray, cap: int, seed) -> np.ndarray:
    """(M,) training indices, (N,) class codes -> ``cap`` of them in ascending order: each class
    keeps its share (largest remainder; every class present keeps at least one), drawn with a
    generator seeded by ``seed``."""
    codes = y[train]
    classes, inverse = np.unique(codes, return_inverse=True)
    sizes = np.bincount(inverse, minlength=classes.size)
    exact = sizes * cap / train.size
    quota = np.maximum(np.floor(exact).astype(int), 1)
    order = np.argsort(-(exact - np.floor(exact)), kind="stable")
    spare = cap - int(quota.sum())
    while spare > 0:  # hand out what is left by remainder, never above a class's size
        for c in order:
            if spare > 0 and quota[c] < sizes[c]:
                quota[c] += 1
                spare -= 1
    while spare < 0:  # only when the minimum of one overshot: trim the largest quotas
        big = int(np.argmax(quota))
        quota[big] -= 1
        spare += 1
    rng = np.random.default_rng(seed)
    picked = [
        rng.choice(train[inverse == c], size=int(q), replace=False) for c, q in enumerate(quota)
    ]
    return np.sort(np.concatenate(picked))


class CappedTraining:
    """A scikit-learn splitter: ``cv``'s folds, each training fold of more than ``max_train``
    rows cut to ``max_train`` by a per-class proportional draw seeded by ``(seed, fold)``; the
    test folds are ``cv``'s, whole. Usable as ``cv=`` in ``cross_val_score``."""

    def __init__(self, cv, max_train: int, seed: int = 0):
        self.cv, self.max_train, self.seed = cv, int(max_train), seed

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        return self.cv.get_n_splits(X, y, groups)

    def split(self, X, y, groups=None):
        codes = _codes(y, len(y), "labels")
        for fold, (train, test) in enumerate(self.cv.split(X, y, groups)):
            if train.size > self.max_train:
                train = _stratified_draw(train, codes, self.max_train, [self.seed, fold])
            yield train, test

    def __repr__(self) -> str:
        return f"CappedTraining({self.cv!r}, max_train={self.max_train}, seed={self.seed})"


def _majority_score(y_train: np.ndarray, y_test: np.ndarray) -> float:
    """Accuracy on ``y_test`` of always answering ``y_train``'s most frequent code (ties: the
    smallest code, as DummyClassifier does)."""
    majority = int(np.argmax(np.bincount(y_train)))
    return float(np.mean(y_test == majority))


def _empty(grouped: bool, reason: str) -> ProbeResult:
    return ProbeResult(
        accuracy=None,
        chance=None,
        spread=None,
        fold_accuracies=(),
        fold_chance=(),
        n_folds=0,
        grouped=grouped,
        method=POLICY,
        reason=reason,
    )


def probe(
    features: np.ndarray,
    labels: Sequence | np.ndarray,
    *,
    groups: Sequence | np.ndarray | None = None,
    folds: int = 5,
    seed: int = 0,
) -> ProbeResult:
    """(N,D) features, (N,) labels [, (N,) groups] -> :class:`ProbeResult` (accuracy in [0,1]).

    The accuracy of each fold is exactly what ``sklearn.model_selection.cross_val_score`` gives
    for ``probe_pipeline(result.n_components, seed=seed)`` with ``cv=probe_folds(...)[0]`` (and
    ``groups=groups``) on the same arrays. Float32 and float64 features are used as given; other
    dtypes become float32. Raises ValueError for mismatched shapes; a labelling that cannot be
    probed (one class, a class of one image, a class in one group only) or non-finite features
    give a result with ``reason`` set.
    """
    x = np.asarray(features)
    if x.ndim != 2:
        raise ValueError(f"Expected (N, D) features, got shape {x.shape}.")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float32)
    n = x.shape[0]
    y = _codes(labels, n, "labels")
    grouped = groups is not None
    g = _codes(groups, n, "groups") if grouped else None
    cv, reason = probe_folds(y, groups=g, folds=folds, seed=seed)
    if cv is None:
        return _empty(grouped, reason or "")
    if not np.isfinite(x).all():
        return _empty(grouped, "some features are NaN or infinite")
    splits = list(cv.split(x, y, g))
    for train, test in splits:
        if test.size == 0:
            return _empty(grouped, "a fold came out with no test images")
        if np.unique(y[train]).size < 2:
            return _empty(grouped, "a training fold holds a single class")
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning

    k = int(min(PCA_WIDTH, min(len(tr) for tr, _ in splits) - 1, x.shape[1]))
    template = probe_pipeline(k, seed=seed)
    accs, chance, notes, unconverged = [], [], [], 0
    for train, test in splits:
        model = clone(template)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(x[train], y[train])
        fold_warned = False
        for w in caught:
            if issubclass(w.category, ConvergenceWarning):
                fold_warned = True
                notes.append(str(w.message).strip().splitlines()[0])
            else:  # not ours to swallow
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        # the solver stopping at its iteration cap is non-convergence even where another thread's
        # catch_warnings took the warning
        if fold_warned or int(np.max(model[-1].n_iter_)) >= MAX_ITER:
            unconverged += 1
        accs.append(float(model.score(x[test], y[test])))
        chance.append(_majority_score(y[train], y[test]))
    kind = "stratified group" if grouped else "stratified"
    method = (
        f"logistic regression (L2, C={C:g}) on standardised features reduced to {k} principal "
        f"axes per training fold; {len(splits)}-fold {kind} split, seed {seed}"
    )
    if isinstance(cv, CappedTraining):
        method += f"; training folds cut to {MAX_TRAIN:,} rows (stratified draw), tested whole"
    return ProbeResult(
        accuracy=float(np.mean(accs)),
        chance=float(np.mean(chance)),
        spread=float(np.std(accs)),
        fold_accuracies=tuple(accs),
        fold_chance=tuple(chance),
        n_folds=len(splits),
        grouped=grouped,
        method=method,
        n_components=k,
        converged=unconverged == 0,
        unconverged_folds=unconverged,
        warnings=tuple(dict.fromkeys(notes)),
    )
