"""Exact nearest neighbours for the atlas: (N,D) unit rows -> (N,k) indices, cosine similarities
and ranks; (N,2) map points -> (N,k) Euclidean neighbours. NumPy in, arrays out.

Cosine similarities are float32 matrix products in blocks of ``_BLOCK`` rows, so N = 10,000
points with D = 4096 never needs an N×N matrix in memory (one block is _BLOCK × N float32,
~40 MB). Neighbour lists exclude the point itself (by index, so exact duplicates still count as
neighbours) and are sorted best first, ties broken by the lower index.

The same set's neighbours are wanted several times (the UMAP graph, kNN-5/10, trustworthiness,
each labelling of the metrics table): :func:`cosine_knn` remembers the last few sets' lists by
content, so one blocked pass serves them all. That pass also keeps a wider, unsorted list per
row (up to 1,024 neighbours within 64 MB a set), from which :func:`ranks` (trustworthiness)
ranks the map's neighbours exactly; only rows with a map neighbour outside it need another pass
over their full similarity rows.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import numpy as np

from explorer.core.lru import LRU

__all__ = ["cosine_knn", "cosine_knn_outside_groups", "euclidean_knn", "ranks"]

_BLOCK = 1024
MEMO_K = 50
""":func:`cosine_knn` computes at least this many neighbours (UMAP's default graph is 14 + self),
so a later, smaller request is a slice of the remembered lists, and :func:`ranks` finds most
map neighbours among them (the top-k selection costs about the same for 15 or 50)."""

WIDE_MAX = 1024
WIDE_BYTES = 64 * 2**20
"""The wide lists (:func:`wide_width`): up to WIDE_MAX of each row's best neighbours, within
WIDE_BYTES for the set (8 bytes a neighbour: 1,024 a row up to ~8,000 points, 838 at 10,000,
167 at 50,000). A map neighbour ranked inside them costs no similarity pass."""


# --------------------------------------------------------------------------- top k


def _top_set(s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(B,N) similarities -> the k best column indices per row (ascending column order, not by
    value) and their values; at the cut, ties go to the lower column indices."""
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
    return idx, np.take_along_axis(s, idx, axis=1)


def _top_k(s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(B,N) similarities -> the k best column indices per row and their values, best first.

    Ties are broken by the lower column index.
    """
    idx, val = _top_set(s, k)
    order = np.lexsort((idx, -val), axis=-1)
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(val, order, axis=1)


def _similarity_blocks(xn: np.ndarray, rows: np.ndarray):
    """(N,D) unit rows, (M,) row indices -> per block of :data:`_BLOCK` rows ``(start, stop,
    here, s)``: ``s = xn[here] @ xn.T`` (B,N), each row's own column at −inf (never its own
    neighbour). Every pass takes its similarities here, so all see the same rounding: ``xn[here]``
    is a copy, while ``xn @ xn.T`` on a view of the same array would take BLAS's symmetric path."""
    for start in range(0, rows.shape[0], _BLOCK):
        stop = min(start + _BLOCK, rows.shape[0])
        here = rows[start:stop]
        s = xn[here] @ xn.T
        s[np.arange(stop - start), here] = -np.inf
        yield start, stop, here, s


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
    for start, stop, here, s in _similarity_blocks(xn, rows):
        if groups is not None:
            s[groups[here, None] == groups[None, :]] = -np.inf
        idx[start:stop], sim[start:stop] = _top_k(s, k)
        if out_ranks is not None:
            target = np.take_along_axis(s, ranks_of[here], axis=1)
            for c in range(target.shape[1]):
                out_ranks[start:stop, c] = 1 + (s > target[:, c : c + 1]).sum(axis=1)
    return idx, sim, out_ranks


# --------------------------------------------------------------------------- shared lists


class _Lists(NamedTuple):
    """One set's remembered neighbours: ``idx``/``sim`` (N,K) best first (K >= MEMO_K), and
    ``wide_idx``/``wide_sim`` (N,W) the W >= K best of each row in ascending index order
    (int32 / float32), for :func:`ranks`."""

    idx: np.ndarray
    sim: np.ndarray
    wide_idx: np.ndarray
    wide_sim: np.ndarray


def _nbytes(lists: _Lists) -> int:
    return sum(a.nbytes for a in lists)


_MEMO: LRU[_Lists] = LRU(8, max_bytes=8 * WIDE_BYTES, sizeof=_nbytes)  # ~8 sets of any size


def _fingerprint(xn: np.ndarray) -> tuple:
    data = np.ascontiguousarray(xn)
    return (data.shape, str(data.dtype), hashlib.blake2b(data.data, digest_size=16).digest())


def wide_width(n: int) -> int:
    """How many of each row's best neighbours :func:`cosine_knn` keeps for :func:`ranks` among N
    points: :data:`WIDE_MAX`, fewer past the :data:`WIDE_BYTES` budget, never below MEMO_K."""
    return int(max(0, min(n - 1, max(MEMO_K, min(WIDE_MAX, WIDE_BYTES // (8 * max(n, 1)))))))


def _lists(xn: np.ndarray, k: int) -> _Lists:
    """One blocked pass: the k best per row, sorted (as ``_neighbours(xn, k)``), and the
    :func:`wide_width` best per row in index order; the sorted lists are taken from the wide
    ones, which hold every column at least as similar as the k-th (ties to the lower index)."""
    n = xn.shape[0]
    w = max(k, wide_width(n))
    idx = np.empty((n, k), np.int64)
    sim = np.empty((n, k), np.float32)
    wide_idx = np.empty((n, w), np.int32)
    wide_sim = np.empty((n, w), np.float32)
    for start, stop, _, s in _similarity_blocks(xn, np.arange(n)):
        wi, ws = _top_set(s, w)
        order, sim[start:stop] = _top_k(ws, k)  # positions in the wide list = lower index first
        idx[start:stop] = np.take_along_axis(wi, order, axis=1)
        wide_idx[start:stop], wide_sim[start:stop] = wi, ws
    return _Lists(idx, sim, wide_idx, wide_sim)


def _remembered(xn: np.ndarray, k: int) -> _Lists:
    n = xn.shape[0]
    k = min(k, n - 1)
    key = _fingerprint(xn)
    hit = _MEMO.get(key)
    if hit is None or hit.idx.shape[1] < k:
        hit = _lists(xn, max(k, min(MEMO_K, n - 1)))
        for a in hit:
            a.setflags(write=False)
        _MEMO.put(key, hit)
    return hit


def cosine_knn(xn: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(N,D) unit rows -> (N,k) neighbour indices and float32 cosine similarities, best first,
    self excluded, k capped at N − 1: exactly ``_neighbours(xn, k)``. Remembered by content (the
    rows' bytes), computed for at least :data:`MEMO_K` neighbours, so the UMAP graph, the kNN
    scores and trustworthiness of one set share one pass."""
    k = min(k, xn.shape[0] - 1)
    hit = _remembered(xn, k)
    return hit.idx[:, :k], hit.sim[:, :k]


def cosine_knn_outside_groups(
    xn: np.ndarray, k: int, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(N,D) unit rows, k, (N,) int group codes -> (N,k) indices and float32 cosines of each
    row's k nearest neighbours outside its own group, best first, ties to the lower index (k
    capped at N − 1): exactly ``_neighbours(xn, k, groups=groups)[:2]``. A row with fewer than
    k points outside its group gets own-group columns with similarity −inf at the tail.

    Taken from the remembered wide lists (:func:`cosine_knn`'s pass): a row whose wide list
    holds k points outside its group has its answer there (every point left out of the list is
    no more similar than all in it, and ties went to the lower index); only the other rows take
    a blocked pass."""
    groups = np.asarray(groups, np.int64)
    n = xn.shape[0]
    k = min(k, n - 1)
    lists = _remembered(xn, MEMO_K)
    wide_idx, wide_sim = lists.wide_idx, lists.wide_sim
    w = wide_idx.shape[1]
    idx = np.empty((n, max(k, 0)), np.int64)
    sim = np.empty((n, max(k, 0)), np.float32)
    if k <= 0:
        return idx, sim
    found = np.zeros(n, bool)
    step = max(1, (1 << 22) // max(w, 1))  # rows per chunk: ~4M candidates at a time
    for start in range(0, n if w >= k else 0, step):
        stop = min(start + step, n)
        cand = wide_idx[start:stop]
        s = np.where(groups[cand] == groups[start:stop, None], -np.inf, wide_sim[start:stop])
        order, vals = _top_k(s, k)  # columns in index order: ties go to the lower index
        idx[start:stop] = np.take_along_axis(cand, order, axis=1)
        sim[start:stop] = vals
        found[start:stop] = np.isfinite(vals[:, -1])
    need = np.flatnonzero(~found)
    if need.size:
        i, v, _ = _neighbours(xn, k, groups=groups, rows=need)
        idx[need], sim[need] = i, v
    return idx, sim


def ranks(xn: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(N,D) unit rows, (N,m) target indices -> (N,m) 1-based rank of each target among row i's
    neighbours (1 + the points strictly more similar to i; ties share the best rank): the same
    numbers as ``_neighbours(xn, 1, ranks_of=targets)[2]``.

    A target among the row's remembered wide list (:func:`cosine_knn`'s pass keeps the
    :func:`wide_width` best per row) is ranked from that list, which holds every point more
    similar than it; only rows with a target outside it go through a blocked pass.
    """
    targets = np.asarray(targets, np.int64)
    n, m = targets.shape
    lists = _remembered(xn, MEMO_K)
    w = lists.wide_idx.shape[1]
    out = np.empty(targets.shape, np.int64)
    found = np.zeros(targets.shape, bool)
    step = max(1, (1 << 24) // max(w * max(m, 1), 1))  # rows per chunk: ~16M compares at a time
    for start in range(0, n if w else 0, step):  # (no list: N = 1, every row takes the pass)
        stop = min(start + step, n)
        rows = np.arange(stop - start)
        base = (rows * n)[:, None]  # each row's indices shifted into its own range: one sorted run
        flat = (lists.wide_idx[start:stop] + base).ravel()
        want = targets[start:stop] + base
        pos = np.minimum(np.searchsorted(flat, want), flat.size - 1)
        found[start:stop] = flat[pos] == want
        col = pos - (rows * w)[:, None]
        vals = lists.wide_sim[start:stop]
        t = np.take_along_axis(vals, np.clip(col, 0, w - 1), axis=1)
        out[start:stop] = 1 + (vals[:, :, None] > t[:, None, :]).sum(axis=1)
    need = np.flatnonzero(~found.all(axis=1))
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
