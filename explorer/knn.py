"""Exact nearest neighbours for the atlas: (N,D) unit rows -> (N,k) indices, cosine similarities
and ranks; (N,2) map points -> (N,k) Euclidean neighbours. NumPy in, arrays out.

Cosine similarities are float32 matrix products in blocks of ``_BLOCK`` rows, so N = 10,000
points with D = 4096 never needs an N×N matrix in memory (one block is _BLOCK × N float32,
~40 MB). Neighbour lists exclude the point itself (by index, so exact duplicates still count as
neighbours) and are sorted best first, ties broken by the lower index.

The same set's neighbours are wanted several times (the UMAP graph, kNN-5/10, trustworthiness,
each labelling of the metrics table): :func:`cosine_knn` remembers the last few sets' lists by
content, so one blocked pass serves them all, and :func:`ranks` needs a pass only over the rows
whose map neighbours are not among their remembered neighbours.
"""

from __future__ import annotations

import hashlib

import numpy as np

from .runtime import LRU

__all__ = ["cosine_knn", "euclidean_knn", "ranks"]

_BLOCK = 1024
MEMO_K = 50
""":func:`cosine_knn` computes at least this many neighbours (UMAP's default graph is 14 + self),
so a later, smaller request is a slice of the remembered lists, and :func:`ranks` finds most
map neighbours among them (the top-k selection costs about the same for 15 or 50)."""

_MEMO: LRU[tuple[np.ndarray, np.ndarray]] = LRU(8)


# --------------------------------------------------------------------------- top k


def _top_k(s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(B,N) similarities -> the k best column indices per row and their values, best first.

    Ties are broken by the lower column index.
    """
    if k <= 0:
        return np.empty((s.shape[0], 0), np.int64), np.empty((s.shape[0], 0), s.dtype)
    if k >= s.shape[1]:
        idx = np.broadcast_to(np.arange(s.shape[1]), s.shape).copy()
    else:
        # The k-th best value per row; keep everything better, then the lowest-index ties.
        n = s.shape[1]
        cut = np.partition(s, n - k, axis=1)[:, n - k : n - k + 1]
        keep = s > cut
        tied = s == cut
        need = k - np.count_nonzero(keep, axis=1)
        extra = np.flatnonzero(np.count_nonzero(tied, axis=1) > need)  # rows with surplus ties
        tied[extra] &= np.cumsum(tied[extra], axis=1) <= need[extra, None]
        keep |= tied
        idx = np.nonzero(keep)[1].reshape(s.shape[0], k)
    val = np.take_along_axis(s, idx, axis=1)
    order = np.lexsort((idx, -val), axis=-1)
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(val, order, axis=1)


def _neighbours(
    xn: np.ndarray,
    k: int,
    ranks_of: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Unit rows (N,D) -> k-NN indices (N,k) int64 and cosine similarities (N,k) float32.

    One pass over the N×N similarity matrix in row blocks. When ``ranks_of`` (N,m) indices are
    given, also returns the 1-based rank of each of those points among row i's neighbours in this
    space: 1 + the number of other points strictly more similar to i (so ties share the best rank).
    When ``groups`` (N,) int codes are given, every point of row i's own group is masked to
    −inf before the top k are taken: such columns can only fill the tail of a row that has fewer
    than k points outside its group, and they come back with similarity −inf. ``rows``: only
    these rows (the outputs then have ``len(rows)`` rows; ``ranks_of`` is still (N,m)).
    """
    n = xn.shape[0]
    k = min(k, n - 1)
    rows = np.arange(n) if rows is None else np.asarray(rows, np.int64)
    m = rows.shape[0]
    idx = np.empty((m, k), np.int64)
    sim = np.empty((m, k), np.float32)
    out_ranks = None if ranks_of is None else np.empty((m, ranks_of.shape[1]), np.int64)
    for start in range(0, m, _BLOCK):
        stop = min(start + _BLOCK, m)
        here = rows[start:stop]
        s = xn[here] @ xn.T
        s[np.arange(stop - start), here] = -np.inf  # never your own neighbour
        if groups is not None:
            s[groups[here, None] == groups[None, :]] = -np.inf
        idx[start:stop], sim[start:stop] = _top_k(s, k)
        if out_ranks is not None:
            target = np.take_along_axis(s, ranks_of[here], axis=1)
            for c in range(target.shape[1]):
                out_ranks[start:stop, c] = 1 + (s > target[:, c : c + 1]).sum(axis=1)
    return idx, sim, out_ranks


# --------------------------------------------------------------------------- shared lists


def _fingerprint(xn: np.ndarray) -> tuple:
    data = np.ascontiguousarray(xn)
    return (data.shape, str(data.dtype), hashlib.blake2b(data.data, digest_size=16).digest())


def cosine_knn(xn: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(N,D) unit rows -> (N,k) neighbour indices and float32 cosine similarities, best first,
    self excluded, k capped at N − 1: exactly ``_neighbours(xn, k)``. Remembered by content (the
    rows' bytes), computed for at least :data:`MEMO_K` neighbours, so the UMAP graph, the kNN
    scores and trustworthiness of one set share one pass."""
    n = xn.shape[0]
    k = min(k, n - 1)
    key = _fingerprint(xn)
    hit = _MEMO.get(key)
    if hit is None or hit[0].shape[1] < k:
        idx, sim, _ = _neighbours(xn, max(k, MEMO_K))
        idx.setflags(write=False)
        sim.setflags(write=False)
        hit = _MEMO.put(key, (idx, sim))
    return hit[0][:, :k], hit[1][:, :k]


def ranks(xn: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(N,D) unit rows, (N,m) target indices -> (N,m) 1-based rank of each target among row i's
    neighbours (1 + the points strictly more similar to i; ties share the best rank): the same
    numbers as ``_neighbours(xn, 1, ranks_of=targets)[2]``.

    A target among the row's remembered neighbours (:func:`cosine_knn`) is ranked from that
    list, which holds every point more similar than it; only rows with a target outside the list
    go through a blocked pass.
    """
    targets = np.asarray(targets, np.int64)
    idx, sim = cosine_knn(xn, MEMO_K)
    out = np.empty(targets.shape, np.int64)
    hit = idx[:, :, None] == targets[:, None, :]  # (N,K,m)
    inside = hit.any(axis=1)  # (N,m)
    pos = hit.argmax(axis=1)
    t = np.take_along_axis(sim, pos, axis=1)  # the target's similarity where inside
    out[:] = 1 + (sim[:, :, None] > t[:, None, :]).sum(axis=1)
    need = np.flatnonzero(~inside.all(axis=1))
    if need.size:
        _, _, r = _neighbours(xn, 1, ranks_of=targets, rows=need)
        out[need] = r
    return out


# --------------------------------------------------------------------------- the 2-D map


def _euclidean_knn_brute(y: np.ndarray, k: int, rows: np.ndarray | None = None) -> np.ndarray:
    """(N,d) points -> (N,k) Euclidean nearest-neighbour indices, self excluded, by distance
    ``|a|² − 2a·b + |b|²`` then lower index (the reference for :func:`euclidean_knn`)."""
    y = np.asarray(y, np.float64)
    n = y.shape[0]
    rows = np.arange(n) if rows is None else np.asarray(rows, np.int64)
    sq = (y**2).sum(axis=1)
    out = np.empty((rows.shape[0], min(k, n - 1)), np.int64)
    for start in range(0, rows.shape[0], _BLOCK):
        here = rows[start : start + _BLOCK]
        d = sq[here, None] - 2.0 * y[here] @ y.T + sq[None, :]
        d[np.arange(here.shape[0]), here] = np.inf
        out[start : start + _BLOCK] = _top_k(-d, out.shape[1])[0]
    return out


def euclidean_knn(y: np.ndarray, k: int) -> np.ndarray:
    """(N,d) low-dimensional points -> (N,k) Euclidean nearest-neighbour indices, self excluded;
    the same lists as the brute-force reference (ties by lower index) from a k-d tree: each row's
    ``k + 8`` nearest candidates are re-ranked with the reference's distance; rows whose ties
    reach past the candidates are computed by brute force."""
    from scipy.spatial import cKDTree

    y = np.asarray(y, np.float64)
    n = y.shape[0]
    k = min(k, n - 1)
    if k < 1:
        return np.empty((n, 0), np.int64)
    q = min(n, k + 9)
    if q >= n or y.shape[1] > 3:
        return _euclidean_knn_brute(y, k)
    _, cand = cKDTree(y).query(y, k=q)
    cand = np.asarray(cand, np.int64)
    sq = (y**2).sum(axis=1)
    d = sq[:, None] - 2.0 * np.einsum("id,ijd->ij", y, y[cand]) + sq[cand]
    d[cand == np.arange(n)[:, None]] = np.inf  # self
    order = np.lexsort((cand, d), axis=-1)
    cand_sorted = np.take_along_axis(cand, order, axis=1)
    d_sorted = np.take_along_axis(d, order, axis=1)
    out = cand_sorted[:, :k].copy()
    # the k-th distance must be strictly below the last finite candidate's: else ties (or
    # self-like duplicates) may continue past the candidates
    kth = d_sorted[:, k - 1]
    last = np.where(np.isfinite(d_sorted), d_sorted, -np.inf).max(axis=1)
    redo = np.flatnonzero(kth >= last)
    if redo.size:
        out[redo] = _euclidean_knn_brute(y, k, rows=redo)
    return out
