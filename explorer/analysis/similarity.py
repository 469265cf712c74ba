"""Two (N,D1), (N,D2) views of the same N points -> how alike the spaces are: linear CKA in
[0,1] (debiased: about 0 for unrelated spaces, may dip below), mutual k-NN agreement in [0,1],
and the (N,) per-point share of neighbours kept.

Linear CKA (Kornblith et al. 2019, "Similarity of neural network representations revisited") is
computed in feature space, never forming an N×N matrix where the features are narrower: with
column-centred X and Y, HSIC(X, Y) is ``||XᵀY||²_F`` (biased), or with the debiasing of Song et al.
(2012), as in Nguyen et al. (2021) and Kornblith's code,
``||XᵀY||²_F − n/(n−2)·⟨r_X, r_Y⟩ + (Σr_X)(Σr_Y)/((n−1)(n−2))`` where ``r_X`` are the rows'
squared norms (the factor 1/(n(n−3)) cancels in the ratio). CKA = HSIC(X,Y)/√(HSIC(X,X)·HSIC(Y,Y)).
``||XᵀY||²_F = ⟨XXᵀ, YYᵀ⟩_F`` is taken the cheaper way (N·D1·D2 against N²·(D1+D2)
multiply-adds), in blocks so memory stays near 128 MB; products are float64 up to 2·10⁹
multiply-adds and float32 past that (relative error ~1e-6), sums always float64.

Mutual k-NN (Huh et al. 2024, "The Platonic Representation Hypothesis"): each point's k cosine
nearest neighbours (self excluded) in both spaces, the share |A ∩ B| / k of them found in both,
averaged over points. Unrelated spaces give about k/(N − 1). Neighbour lists are exact (blocked
float32 products, ties to the lower index) or passed in (``nbrs_x``/``nbrs_y``: (N, ≥k) indices,
best first, self excluded), so a caller that already holds them pays only the set overlap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

__all__ = [
    "SimilarityRow",
    "cosine_neighbours",
    "linear_cka",
    "mutual_knn",
    "neighbour_overlap",
    "similarity_matrix",
]

_BLOCK_FLOATS = 2**24  # one block of products: 16 M values (64 MB float32, 128 MB float64)
_FLOAT64_WORK = 2e9  # multiply-adds up to which the products are float64
_KNN_BLOCK = 1024  # rows of cosine similarities per block (1024 × N float32)


class SimilarityRow(NamedTuple):
    """One pair of spaces: CKA (debiased unless asked otherwise) and mutual k-NN in [0,1]."""

    space_a: str
    space_b: str
    cka: float
    mutual_knn: float


# --------------------------------------------------------------------------- CKA


def _as_matrix(x: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"Expected an (N, D) array for {what}, got shape {a.shape}.")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} contains NaN or infinite values.")
    return a


def _centred(x: np.ndarray, dtype: type) -> np.ndarray:
    """(N,D) -> (N,D) columns centred (mean taken in float64), as ``dtype``."""
    return (x - x.mean(axis=0, dtype=np.float64)).astype(dtype, copy=False)


def _cross_frobenius(x: np.ndarray, y: np.ndarray) -> float:
    """Column-centred (N,D1), (N,D2) -> ||xᵀy||²_F = ⟨xxᵀ, yyᵀ⟩_F, the cheaper way, in blocks."""
    n, d1 = x.shape
    d2 = y.shape[1]
    same = x is y
    total = 0.0
    if n * (d1 + d2) < d1 * d2:  # Gram side: blocks of rows of xxᵀ and yyᵀ
        step = max(1, _BLOCK_FLOATS // max(n, 1))
        for a in range(0, n, step):
            k = x[a : a + step] @ x.T
            l_ = k if same else y[a : a + step] @ y.T
            total += float(np.einsum("ij,ij->", k, l_, dtype=np.float64))
        return total
    if same and d1 * d1 <= _BLOCK_FLOATS:
        p = x.T @ x  # BLAS's symmetric product
        return float(np.einsum("ij,ij->", p, p, dtype=np.float64))
    step = max(1, _BLOCK_FLOATS // max(d2, 1))
    for a in range(0, d1, step):
        p = x[:, a : a + step].T @ y
        total += float(np.einsum("ij,ij->", p, p, dtype=np.float64))
    return total


def _hsic(xty: float, rx: np.ndarray, ry: np.ndarray, n: int, debiased: bool) -> float:
    """||XᵀY||²_F of centred features and their rows' squared norms -> HSIC up to a factor."""
    if not debiased:
        return xty
    return (
        xty
        - n / (n - 2.0) * float(rx @ ry)
        + float(rx.sum()) * float(ry.sum()) / ((n - 1.0) * (n - 2.0))
    )


def _work(n: int, d1: int, d2: int) -> float:
    """Multiply-adds of ||xᵀy||²_F the cheaper way."""
    return float(n) * min(float(d1) * d2, float(n) * (d1 + d2))


def _dtype(n: int, widest: int) -> type:
    """float64 products while the widest space's self-product is cheap, float32 past that."""
    return np.float64 if _work(n, widest, widest) <= _FLOAT64_WORK else np.float32


class _Centred(NamedTuple):
    x: np.ndarray  # (N,D) centred features
    rows: np.ndarray  # (N,) float64 squared row norms
    self_hsic: float  # HSIC(x, x)


def _prepare(x: np.ndarray, dtype: type, debiased: bool) -> _Centred:
    xc = _centred(x, dtype)
    rows = np.einsum("ij,ij->i", xc, xc, dtype=np.float64)
    return _Centred(xc, rows, _hsic(_cross_frobenius(xc, xc), rows, rows, xc.shape[0], debiased))


def _cka(a: _Centred, b: _Centred, debiased: bool) -> float:
    n = a.x.shape[0]
    if a.x is b.x:
        xy = a.self_hsic
    else:
        xy = _hsic(_cross_frobenius(a.x, b.x), a.rows, b.rows, n, debiased)
    denom = a.self_hsic * b.self_hsic
    if not denom > 0:  # a constant space, or a debiased self-HSIC that is not positive
        return math.nan
    return float(xy / math.sqrt(denom))


def linear_cka(x: np.ndarray, y: np.ndarray, *, debiased: bool = True) -> float:
    """(N,D1), (N,D2) features of the same N points -> linear CKA, 1 for identical spaces.

    Invariant to orthogonal transforms and isotropic scaling of either space. Biased CKA is in
    [0,1]; the debiased one removes the positive bias of small N (unrelated spaces give about 0,
    possibly slightly negative). NaN where it is undefined: a constant space, or fewer than 4
    points for the debiased estimator (fewer than 2 for the biased one).
    """
    xa, ya = _as_matrix(x, "x"), _as_matrix(y, "y")
    n = xa.shape[0]
    if ya.shape[0] != n:
        raise ValueError(f"The two spaces hold {n} and {ya.shape[0]} points; pass the same set.")
    if n < (4 if debiased else 2):
        return math.nan
    dtype = _dtype(n, max(xa.shape[1], ya.shape[1]))
    a = _prepare(xa, dtype, debiased)
    b = a if y is x else _prepare(ya, dtype, debiased)
    return _cka(a, b, debiased)


# --------------------------------------------------------------------------- neighbours


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """(N,D) -> float32 rows of unit L2 norm (zero rows stay zero)."""
    a = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.where(norms > 0, norms, 1.0).astype(np.float32)


def _top_k(s: np.ndarray, k: int) -> np.ndarray:
    """(B,N) similarities -> (B,k) column indices of the k largest per row, best first; ties
    (at the cut and in the order) go to the lower column index."""
    n = s.shape[1]
    cut = np.partition(s, n - k, axis=1)[:, n - k : n - k + 1]
    keep = s > cut
    tied = s == cut
    need = k - np.count_nonzero(keep, axis=1)
    keep |= tied & (np.cumsum(tied, axis=1) <= need[:, None])
    idx = np.nonzero(keep)[1].reshape(s.shape[0], k)
    val = np.take_along_axis(s, idx, axis=1)
    order = np.lexsort((idx, -val), axis=-1)
    return np.take_along_axis(idx, order, axis=1)


def cosine_neighbours(x: np.ndarray, *, k: int) -> np.ndarray:
    """(N,D) features -> (N,min(k,N−1)) int64 indices of each row's cosine nearest neighbours,
    best first, self excluded (by index: exact duplicates are neighbours), ties to the lower index.

    Blocked float32 products: memory ~1024 × N floats at a time, never N×N.
    """
    xn = _unit_rows(_as_matrix(x, "x"))
    n = xn.shape[0]
    k = min(int(k), n - 1)
    out = np.empty((n, max(k, 0)), np.int64)
    if k <= 0:
        return out
    for a in range(0, n, _KNN_BLOCK):
        b = min(a + _KNN_BLOCK, n)
        s = xn[a:b] @ xn.T
        s[np.arange(b - a), np.arange(a, b)] = -np.inf
        out[a:b] = _top_k(s, k)
    return out


def _lists(
    x: np.ndarray | None, nbrs: np.ndarray | None, k: int, n: int | None, what: str
) -> np.ndarray:
    """Given or computed neighbour lists -> (N,k) int64, checked (in range, no self, no repeats)."""
    if nbrs is None:
        if x is None:
            raise ValueError(f"Pass the features or the neighbour lists for {what}.")
        return cosine_neighbours(x, k=k)
    lists = np.asarray(nbrs)
    if lists.ndim != 2 or not np.issubdtype(lists.dtype, np.integer):
        raise ValueError(f"Neighbour lists for {what} must be an (N, k) integer array.")
    rows = lists.shape[0] if n is None else n
    if lists.shape[0] != rows:
        raise ValueError(
            f"Neighbour lists for {what} have {lists.shape[0]} rows for {rows} points."
        )
    if lists.shape[1] < k:
        raise ValueError(
            f"Neighbour lists for {what} hold {lists.shape[1]} per point; k={k} needs {k}."
        )
    lists = lists[:, :k].astype(np.int64)
    if lists.size and (lists.min() < 0 or lists.max() >= rows):
        raise ValueError(f"Neighbour lists for {what} point outside the {rows} points.")
    if (lists == np.arange(rows)[:, None]).any():
        raise ValueError(f"Neighbour lists for {what} contain the point itself; exclude it.")
    ordered = np.sort(lists, axis=1)
    if (ordered[:, 1:] == ordered[:, :-1]).any():
        raise ValueError(f"Neighbour lists for {what} repeat a point within a row.")
    return lists


def _point_count(x: np.ndarray | None, nbrs: np.ndarray | None) -> int:
    if x is not None:
        return int(np.asarray(x).shape[0])
    if nbrs is not None:
        return int(np.asarray(nbrs).shape[0])
    raise ValueError("Pass the features or the neighbour lists.")


def neighbour_overlap(
    x: np.ndarray | None,
    y: np.ndarray | None,
    *,
    k: int = 10,
    nbrs_x: np.ndarray | None = None,
    nbrs_y: np.ndarray | None = None,
) -> np.ndarray:
    """(N,D1), (N,D2) features (or their (N,≥k) neighbour lists) -> (N,) float64 in [0,1]: the
    share |A ∩ B| / k of each point's k cosine nearest neighbours (self excluded) found in both
    spaces. k is capped at N − 1; fewer than 2 points give NaN per point. Given lists are used
    in place of the features (their first k columns)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}.")
    n = _point_count(x, nbrs_x)
    m = _point_count(y, nbrs_y)
    if n != m:
        raise ValueError(f"The two spaces hold {n} and {m} points; pass the same set.")
    if n < 2:
        return np.full(n, np.nan)
    k = min(int(k), n - 1)
    a = _lists(x, nbrs_x, k, n, "x")
    b = _lists(y, nbrs_y, k, n, "y")
    both = np.sort(np.concatenate([a, b], axis=1), axis=1)
    shared = np.count_nonzero(both[:, 1:] == both[:, :-1], axis=1)
    return shared / float(k)


def mutual_knn(
    x: np.ndarray | None,
    y: np.ndarray | None,
    *,
    k: int = 10,
    nbrs_x: np.ndarray | None = None,
    nbrs_y: np.ndarray | None = None,
) -> float:
    """(N,D1), (N,D2) features (or neighbour lists) -> mean of :func:`neighbour_overlap` in [0,1]:
    1 when every point keeps its k neighbours, about k/(N − 1) for unrelated spaces; NaN below
    2 points."""
    overlap = neighbour_overlap(x, y, k=k, nbrs_x=nbrs_x, nbrs_y=nbrs_y)
    return float(overlap.mean()) if overlap.size and np.isfinite(overlap).all() else math.nan


# --------------------------------------------------------------------------- all pairs


def similarity_matrix(
    spaces: Mapping[str, np.ndarray],
    *,
    k: int = 10,
    debiased: bool = True,
    neighbours: Mapping[str, np.ndarray] | None = None,
) -> list[SimilarityRow]:
    """{name: (N,D)} features of the same N points -> one :class:`SimilarityRow` per unordered
    pair (a before b in the mapping's order): linear CKA and mutual k-NN.

    Each space is centred and its self-HSIC and neighbour lists are computed once for all its
    pairs. ``neighbours``: {name: (N,≥k) lists} to use instead of computing them.
    """
    names = list(spaces)
    mats = {name: _as_matrix(spaces[name], name) for name in names}
    sizes = {m.shape[0] for m in mats.values()}
    if len(sizes) > 1:
        raise ValueError(f"The spaces hold different numbers of points: {sorted(sizes)}.")
    n = sizes.pop() if sizes else 0
    given = dict(neighbours or {})
    dtype = _dtype(n, max((m.shape[1] for m in mats.values()), default=1))
    enough = n >= (4 if debiased else 2)
    prepared = {name: _prepare(mats[name], dtype, debiased) for name in names} if enough else {}
    lists = {}
    if n >= 2:
        kk = min(int(k), n - 1)
        lists = {name: _lists(mats[name], given.get(name), kk, n, name) for name in names}
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            cka = _cka(prepared[a], prepared[b], debiased) if enough else math.nan
            mk = (
                mutual_knn(None, None, k=k, nbrs_x=lists[a], nbrs_y=lists[b]) if lists else math.nan
            )
            rows.append(SimilarityRow(a, b, cka, mk))
    return rows
