"""A selection of M of N points -> what it shares: (M,) labels -> the counts of their values;
(N,k) neighbour lists + (M,) indices -> the (M,) neighbourhood each selected point falls in.

Counts only, no words: the sentences are written in ``explorer.ui``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["Shares", "neighbourhoods", "shares"]


class Shares(NamedTuple):
    """How the values of one labelling fall over a selection: ``top`` the commonest value and
    ``count`` how many selected points have it (ties: the value seen first), ``distinct`` how
    many different values the selection holds, ``size`` how many points it has."""

    top: str
    count: int
    distinct: int
    size: int


def shares(labels: Sequence[str], indices: Sequence[int]) -> Shares:
    """(N,) labels, (M,) selected indices (M >= 1) -> :class:`Shares` of their values."""
    idx = np.asarray(indices, np.int64)
    if idx.size == 0:
        raise ValueError("An empty selection shares nothing.")
    counts = Counter(str(labels[int(i)]) for i in idx)
    top, count = counts.most_common(1)[0]
    return Shares(top, int(count), len(counts), int(idx.size))


def neighbourhoods(nbrs: np.ndarray, indices: Sequence[int]) -> np.ndarray:
    """(N,k) neighbour lists of a space (row i: i's k nearest, self excluded), (M,) selected
    indices -> (M,) int64 component ids in 0..C-1: two selected points share an id when a chain
    of selected points links them, each link a point being among the other's k nearest (either
    way). C = 1: the selection is one neighbourhood of that space; C = M: no selected point is
    among another's k nearest."""
    lists = np.asarray(nbrs, np.int64)
    idx = np.asarray(indices, np.int64)
    m = idx.size
    if m == 0:
        return np.empty(0, np.int64)
    where = np.full(lists.shape[0], -1, np.int64)
    where[idx] = np.arange(m)
    rows = np.repeat(np.arange(m), lists.shape[1])
    cols = where[lists[idx].ravel()]
    keep = cols >= 0
    graph = coo_matrix((np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=(m, m))
    _, labels = connected_components(graph, directed=True, connection="weak")
    return labels.astype(np.int64)
