"""Approximate cosine nearest neighbours for large sets: (N,D) unit rows -> (N,k) int64 indices
and float32 cosines, best first, self excluded (the layout of
:func:`explorer.analysis.knn.cosine_knn`), and their recall@k measured against exact lists on a
seeded sample of rows. NumPy in, arrays out.

Up to :data:`ANN_ABOVE` points :func:`knn_lists` is the exact blocked pass (bit for bit
:func:`~explorer.analysis.knn.cosine_knn`); past it an N×N pass is out of reach (10¹² products at
a million points), and the lists come from pynndescent's nearest-neighbour descent (seeded,
:data:`N_JOBS` threads at most), whose candidates are re-scored here with exact float32 cosines
and sorted best first, ties to the lower index. :func:`recall` says how good they are: for
:data:`RECALL_ROWS` seeded rows, the exact neighbours among all N points (blocked so that a block
holds at most :data:`BLOCK_ELEMENTS` similarities) against the approximate ones.
"""

from __future__ import annotations

import hashlib
import os
from typing import NamedTuple

import numpy as np

from explorer.analysis import knn
from explorer.core.lru import LRU

__all__ = [
    "ANN_ABOVE",
    "RECALL_K",
    "RECALL_ROWS",
    "Approximate",
    "approximate_knn",
    "exact_rows",
    "knn_lists",
    "recall",
    "sample_rows",
]

ANN_ABOVE = 50_000
"""Past this many points the neighbour lists of every point come from the approximate index."""
RECALL_ROWS = 20_000
"""Rows :func:`recall` checks against exact lists (all of them in a smaller set)."""
RECALL_K = 10
ANN_K = 15
"""The approximate index keeps this many neighbours per point (the lists the atlas uses are 10)."""
N_JOBS = 2
BLOCK_ELEMENTS = 1 << 25  # similarities per exact block: 128 MB of float32 at any N
_TIE = 1e-6  # cosines closer than this are one value to recall (float32 rounding)
_CANDIDATES = 4096  # a row with more candidates above its floor is selected by partition


class Approximate(NamedTuple):
    """One set's approximate lists: ``idx`` (N,K) int32 and ``sim`` (N,K) float32, best first,
    and ``recall``: recall@:data:`RECALL_K` against exact lists on ``checked`` sampled rows."""

    idx: np.ndarray
    sim: np.ndarray
    recall: float
    checked: int


def _nbytes(a: Approximate) -> int:
    return a.idx.nbytes + a.sim.nbytes


_MEMO: LRU[Approximate] = LRU(6, max_bytes=2 * 2**30, sizeof=_nbytes)


def _fingerprint(xn: np.ndarray) -> tuple:
    data = np.ascontiguousarray(xn)
    return (data.shape, str(data.dtype), hashlib.blake2b(data.data, digest_size=16).digest())


def sample_rows(n: int, m: int = RECALL_ROWS, *, seed: int = 0) -> np.ndarray:
    """(m,) sorted distinct row indices in [0, n) drawn with ``seed`` (all n rows when m ≥ n)."""
    if m >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, m, replace=False))


def _pair_cosines(xn: np.ndarray, rows: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(N,D) unit rows, (M,) rows, (M,K) indices -> (M,K) float32 cosines, in chunks."""
    out = np.empty(idx.shape, np.float32)
    step = max(1, (1 << 22) // max(1, idx.shape[1] * xn.shape[1]))
    for a in range(0, idx.shape[0], step):
        b = min(a + step, idx.shape[0])
        out[a:b] = np.einsum("md,mkd->mk", xn[rows[a:b]], xn[idx[a:b]])
    return out


def exact_rows(
    xn: np.ndarray, rows: np.ndarray, k: int, hint: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(N,D) unit rows, (M,) row indices -> (M,k) int64 indices and float32 cosines of those rows'
    exact k nearest among all N (self excluded, best first, ties to the lower index; k capped at
    N − 1), in blocks of at most :data:`BLOCK_ELEMENTS` similarities.

    ``hint`` (M,k): neighbours found some other way (an approximate list). Where a row's are k
    distinct other points, the worst of their similarities (read from the same product, so with
    the same rounding) is no higher than the row's true k-th best, and only the columns at or
    above it are ranked, instead of selecting among all N."""
    n = xn.shape[0]
    rows = np.asarray(rows, np.int64)
    k = min(k, n - 1)
    m = rows.shape[0]
    idx = np.empty((m, max(k, 0)), np.int64)
    sim = np.empty((m, max(k, 0)), np.float32)
    if k <= 0 or m == 0:
        return idx, sim
    valid = None if hint is None else _distinct_others(hint[:, :k], rows, n)
    step = max(1, BLOCK_ELEMENTS // n)
    for a in range(0, m, step):
        b = min(a + step, m)
        here = rows[a:b]
        s = xn[here] @ xn.T
        s[np.arange(b - a), here] = -np.inf
        easy = np.zeros(b - a, bool)
        if valid is not None:
            listed = np.clip(np.asarray(hint[a:b, :k], np.int64), 0, n - 1)
            floor = np.where(valid[a:b], np.take_along_axis(s, listed, axis=1).min(axis=1), np.inf)
            r, c = np.nonzero(s >= floor[:, None])  # row-major: each row's columns ascending
            counts = np.bincount(r, minlength=b - a)
            easy = valid[a:b] & (counts >= k) & (counts <= _CANDIDATES)
        hard = np.flatnonzero(~easy)
        if hard.size:
            idx[a + hard], sim[a + hard] = knn._top_k(s[hard], k)
        good = np.flatnonzero(easy)
        if good.size:
            keep = easy[r]
            r, c = r[keep], c[keep]
            slot = np.cumsum(easy) - 1  # a good row's place among the good rows
            width = int(counts[good].max())
            start = np.concatenate(([0], np.cumsum(counts[good])[:-1]))
            pos = np.arange(r.size) - start[slot[r]]
            cand = np.zeros((good.size, width), np.int64)
            vals = np.full((good.size, width), -np.inf, np.float32)
            cand[slot[r], pos] = c
            vals[slot[r], pos] = s[r, c]
            order, top = knn._top_k(vals, k)  # padding (−inf) sits past every real column
            idx[a + good] = np.take_along_axis(cand, order, axis=1)
            sim[a + good] = top
    return idx, sim


def _distinct_others(lists: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """(M,k) indices, (M,) their rows -> (M,) bool: whether each row's k entries are k distinct
    other points."""
    lists = np.asarray(lists, np.int64)
    ok = ((lists >= 0) & (lists < n) & (lists != rows[:, None])).all(axis=1)
    return ok & (np.diff(np.sort(lists, axis=1), axis=1) != 0).all(axis=1)


def recall(
    xn: np.ndarray, idx: np.ndarray, k: int = RECALL_K, *, rows: int = RECALL_ROWS, seed: int = 0
) -> tuple[float, int]:
    """(N,D) unit rows, (N,K) neighbour lists (K ≥ k, best first) -> (recall@k in [0, 1], rows
    checked): for ``rows`` seeded rows (all of them in a smaller set), the share of the k slots
    of each row's list holding one of its true k nearest neighbours (self excluded), i.e. a
    distinct other point at least as similar as the exact k-th best, to within
    :data:`_TIE` (so that the rounding of another matrix product, or a tie at the cut, does not
    count as a miss). (nan, 0) below 2 points."""
    n = xn.shape[0]
    k = min(k, n - 1, idx.shape[1])
    if k < 1:
        return float("nan"), 0
    picked = sample_rows(n, rows, seed=seed)
    lists = np.asarray(idx[picked, :k], np.int64)
    want_idx, want = exact_rows(xn, picked, k, lists)
    inside = (lists >= 0) & (lists < n) & (lists != picked[:, None])
    cos = _pair_cosines(xn, picked, np.clip(lists, 0, n - 1))
    listed = (lists[:, :, None] == want_idx[:, None, :]).any(axis=2)
    hit = inside & (listed | (cos >= want[:, -1:] - _TIE))
    order = np.argsort(lists, axis=1, kind="stable")  # a repeated index counts once
    again = np.diff(np.take_along_axis(lists, order, axis=1), axis=1) == 0
    r, c = np.nonzero(again)
    hit[r, order[r, c + 1]] = False
    hits = np.count_nonzero(hit, axis=1)
    return float(np.clip(hits, 0, k).sum() / (picked.size * k)), int(picked.size)


def _threads() -> int:
    return max(1, min(N_JOBS, os.cpu_count() or 1))


def approximate_knn(
    xn: np.ndarray, k: int, *, seed: int = 0, n_neighbors: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(N,D) unit rows -> (N,k) int64 indices and float32 cosines from pynndescent's index
    (``n_neighbors`` per point, default max(k + 1, :data:`ANN_K`) + 25), re-scored exactly,
    self excluded, best first, ties to the lower index; k capped at N − 1. A row the index
    leaves short of k other points is computed exactly."""
    from pynndescent import NNDescent

    n = xn.shape[0]
    k = min(k, n - 1)
    if k < 1:
        return np.empty((n, 0), np.int64), np.empty((n, 0), np.float32)
    width = min(n, n_neighbors or max(k + 1, ANN_K) + 25)
    index = NNDescent(
        np.ascontiguousarray(xn, np.float32),
        metric="cosine",
        n_neighbors=width,
        random_state=seed,
        n_jobs=_threads(),
        low_memory=True,
        compressed=True,
    )
    cand = np.asarray(index.neighbor_graph[0], np.int64)
    del index
    own = np.arange(n)[:, None]
    bad = (cand < 0) | (cand == own)
    cand = np.where(bad, own, cand)
    # a duplicate entry of a row is as bad as self: keep each index once
    srt = np.sort(cand, axis=1)
    dup_rows = np.flatnonzero((np.diff(srt, axis=1) == 0).any(axis=1) & ~bad.any(axis=1))
    for r in dup_rows:
        _, first = np.unique(cand[r], return_index=True)
        keep = np.zeros(width, bool)
        keep[first] = True
        bad[r] |= ~keep
    cos = np.where(bad, -np.inf, _pair_cosines(xn, np.arange(n), cand))
    order = np.lexsort((cand, -cos), axis=-1)[:, :k]
    idx = np.take_along_axis(cand, order, axis=1)
    sim = np.take_along_axis(cos, order, axis=1).astype(np.float32)
    short = np.flatnonzero(~np.isfinite(sim[:, -1]))
    if short.size:
        idx[short], sim[short] = exact_rows(xn, short, k)
    return idx, sim


def knn_lists(
    xn: np.ndarray, k: int, *, above: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, Approximate | None]:
    """(N,D) unit rows -> ((N,k) indices, (N,k) float32 cosines, how they were found): up to
    ``above`` (default :data:`ANN_ABOVE`) points the exact lists of
    :func:`explorer.analysis.knn.cosine_knn` (and None); past it the approximate ones (at least
    :data:`ANN_K` computed, remembered by content) with
    their :func:`recall` measured (an :class:`Approximate`)."""
    n = xn.shape[0]
    k = min(k, n - 1)
    if n <= (ANN_ABOVE if above is None else above):
        idx, sim = knn.cosine_knn(xn, k)
        return idx, sim, None
    key = (_fingerprint(xn), seed)
    hit = _MEMO.get(key)
    if hit is None or hit.idx.shape[1] < k:
        i, s = approximate_knn(xn, max(k, ANN_K), seed=seed)
        r, checked = recall(xn, i, RECALL_K, seed=seed)
        hit = Approximate(i.astype(np.int32), s, r, checked)
        for a in (hit.idx, hit.sim):
            a.setflags(write=False)
        _MEMO.put(key, hit)
    return hit.idx[:, :k].astype(np.int64), hit.sim[:, :k], hit
