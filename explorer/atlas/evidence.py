"""What an atlas's evidence says, as data: a linear probe per (space, labelling), how alike the
spaces are (linear CKA, mutual k-NN), each image's neighbour overlap between two spaces, what a
selection shares, and where each model space stands against the weight-free controls.

Everything is computed once per atlas and kept in ``atlas.memo`` (the embeddings of an open
atlas never change). Neighbour lists are the atlas's own: the plain cosine lists come from
:func:`explorer.analysis.knn.cosine_knn`, whose pass the metrics and the UMAP graph already
made; where the set groups its images (versions of one photo), each image's own group is left
out of its list, as the metrics leave it out, so overlap and mutual k-NN say which *other*
images two spaces put near it. Arrays and dataclasses out: the words are in ``explorer.ui``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from explorer.analysis import ann, knn, metrics, probe, selection, similarity
from explorer.atlas.types import CONTROL_FAMILIES, Atlas
from explorer.core.errors import ExplorerError

__all__ = [
    "CHANGES",
    "LEVEL",
    "PROBE_COLUMNS",
    "SIGMAS",
    "SIMILARITY_COLUMNS",
    "ControlReading",
    "K",
    "SelectionSummary",
    "changes",
    "check_selection",
    "control_readings",
    "lists_leave_groups_out",
    "margin",
    "neighbour_lists",
    "overlap_frame",
    "plain_lists",
    "point_overlap",
    "probe_result",
    "probe_values",
    "probes_above_chance",
    "similarity_matrices",
    "similarity_table",
    "space_lists",
    "summarise_selection",
]

K = 10
"""Neighbours per image for mutual k-NN and the per-point overlap."""
CHANGES = 12
"""How many of the images that change most the overlap list gives."""
LEVEL = 0.02
"""Two accuracies closer than this, or than :data:`SIGMAS` standard errors of their
difference, read as level."""
SIGMAS = 2.0
PROBE_COLUMNS = ["probe", "probe_chance", "probe_spread", "probe_folds", "probe_note"]
SIMILARITY_COLUMNS = ["space_a", "space_b", "cka", f"mutual_knn{K}"]


def _family(key: str) -> str:
    return key.rstrip("0123456789")


# --------------------------------------------------------------------------- probes


def probe_result(
    atlas: Atlas,
    key: str,
    name: str,
    labels: Sequence[str],
    groups: Sequence[str] | None,
    *,
    rows: np.ndarray | None = None,
) -> probe.ProbeResult:
    """The linear probe of space ``key`` on labelling ``name`` (group-aware folds when
    ``groups`` is given), computed once per atlas. ``rows``: only these images (the metrics'
    sample of a large set; ``labels`` and ``groups`` are then theirs)."""
    memo = atlas.memo.setdefault("probe", {})
    found = memo.get((key, name, groups is not None, rows is not None))
    if found is None:
        x = atlas.embeddings[key]
        found = probe.probe(
            x if rows is None else x[rows],
            np.asarray(labels, dtype=str),
            groups=None if groups is None else np.asarray(groups, dtype=str),
        )
        memo[(key, name, groups is not None, rows is not None)] = found
    return found


def probe_values(result: probe.ProbeResult) -> dict[str, float | int | str]:
    """A :class:`~explorer.analysis.probe.ProbeResult` -> the table's probe columns: accuracy,
    chance and fold spread in [0,1] (rounded to 4 decimals; NaN with a reason), the number of
    folds, and a note: why there is no score, or that some folds did not converge."""
    if result.accuracy is None:
        return {
            "probe": math.nan,
            "probe_chance": math.nan,
            "probe_spread": math.nan,
            "probe_folds": 0,
            "probe_note": result.reason or "",
        }
    note = ""
    if not result.converged:
        note = f"did not converge in {result.unconverged_folds} of {result.n_folds} folds"
    return {
        "probe": round(float(result.accuracy), 4),
        "probe_chance": round(float(result.chance), 4),
        "probe_spread": round(float(result.spread), 4),
        "probe_folds": int(result.n_folds),
        "probe_note": note,
    }


# --------------------------------------------------------------------------- neighbours


def lists_leave_groups_out(atlas: Atlas, k: int = K) -> bool:
    """Whether the overlap and mutual k-NN leave each image's own group out: the set groups its
    images and every image has at least ``k`` images outside its group."""
    groups = atlas.images.groups
    if groups is None:
        return False
    _, counts = np.unique(np.asarray(groups, dtype=str), return_counts=True)
    return counts.size > 1 and len(groups) - int(counts.max()) >= k


def space_lists(atlas: Atlas, key: str, k: int = K) -> tuple[np.ndarray, np.ndarray]:
    """((N, min(k, N−1)) int64 indices, float32 cosines): every image's k cosine nearest
    neighbours in space ``key``, its own group included, best first -- the atlas's own lists
    where it holds them wide enough (a saved atlas), else :func:`explorer.analysis.ann.knn_lists`
    (exact up to ``ANN_ABOVE`` images; past it approximate, kept on the atlas with their
    measured recall in ``atlas.neighbour_recall``)."""
    n = len(atlas.images)
    kk = min(k, n - 1)
    held = atlas.neighbour_lists.get(key)
    if held is not None and held[0].shape == (n, held[0].shape[1]) and held[0].shape[1] >= kk:
        return np.asarray(held[0][:, :kk], np.int64), held[1][:, :kk]
    idx, sim, approx = ann.knn_lists(metrics.unit_rows(atlas.embeddings[key]), kk)
    if approx is not None:
        atlas.neighbour_lists[key] = (approx.idx, approx.sim)
        atlas.neighbour_recall[key] = (approx.recall, approx.checked)
    return idx, sim


def neighbour_lists(atlas: Atlas, key: str, k: int = K) -> np.ndarray:
    """(N, min(k, N−1)) int64: each image's k cosine nearest neighbours in space ``key``, best
    first, self excluded, its own group left out where :func:`lists_leave_groups_out` (past
    ``ann.ANN_ABOVE`` images from the approximate lists, with :func:`ann.exact_rows` for the
    images whose list holds fewer than k others)."""
    memo = atlas.memo.setdefault("lists", {})
    if (key, k) not in memo:
        xn = metrics.unit_rows(atlas.embeddings[key])
        kk = min(k, xn.shape[0] - 1)
        if lists_leave_groups_out(atlas, k):
            codes = np.unique(np.asarray(atlas.images.groups, dtype=str), return_inverse=True)[1]
            if xn.shape[0] > ann.ANN_ABOVE:
                idx = _outside_groups(atlas, key, xn, kk, codes)
            else:
                idx, _ = knn.cosine_knn_outside_groups(xn, kk, codes)
        else:
            idx, _ = space_lists(atlas, key, kk)
        memo[(key, k)] = np.ascontiguousarray(idx, np.int64)
    return memo[(key, k)]


def _outside_groups(
    atlas: Atlas, key: str, xn: np.ndarray, k: int, codes: np.ndarray
) -> np.ndarray:
    """A large set's lists with each image's own group left out: the approximate lists' other
    groups, and an exact pass (masked) for the rows left with fewer than k."""
    idx, _ = space_lists(atlas, key, ann.ANN_K)
    keep = codes[idx] != codes[:, None]
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]  # the kept ones, best first
    out = np.take_along_axis(idx, order, axis=1)
    short = np.flatnonzero(keep.sum(axis=1) < k)
    for i in short:  # few: a row with ANN_K - k + 1 neighbours of its own group
        s = xn @ xn[i]
        s[codes == codes[i]] = -np.inf
        out[i] = knn._top_k(s[None, :], k)[0][0]
    return out


def plain_lists(atlas: Atlas, key: str, k: int = K) -> np.ndarray:
    """(N, min(k, N−1)) int64: each image's k cosine nearest neighbours in space ``key``, its own
    group included (the lists the metrics' and the map's pass already made; past
    ``ann.ANN_ABOVE`` images the approximate ones)."""
    return space_lists(atlas, key, k)[0]


def _check_pair(atlas: Atlas, a: str, b: str) -> None:
    keys = [s.key for s in atlas.spaces]
    for key in (a, b):
        if key not in keys:
            raise ExplorerError(
                f"This atlas has no space {key!r}: choose two of {', '.join(keys)}."
            )
    if a == b:
        raise ExplorerError("Choose two different spaces to compare their neighbours.")


def point_overlap(atlas: Atlas, a: str, b: str, k: int = K) -> np.ndarray:
    """(N,) float64 in [0,1]: the share of each image's k nearest neighbours found in both
    spaces ``a`` and ``b`` (the lists of :func:`neighbour_lists`); NaN per image below 2."""
    _check_pair(atlas, a, b)
    if len(atlas.images) < 2:
        return np.full(len(atlas.images), np.nan)
    return similarity.neighbour_overlap(
        None,
        None,
        k=min(k, len(atlas.images) - 1),
        nbrs_x=neighbour_lists(atlas, a, k),
        nbrs_y=neighbour_lists(atlas, b, k),
    )


def changes(
    atlas: Atlas, a: str, b: str, k: int = K, top: int = CHANGES
) -> list[tuple[int, float]]:
    """The ``top`` images whose neighbours change most between spaces ``a`` and ``b``:
    ``[(index, overlap in [0,1])]``, lowest overlap first, ties to the lower index."""
    overlap = point_overlap(atlas, a, b, k)
    order = np.lexsort((np.arange(overlap.size), overlap))[:top]
    return [(int(i), float(overlap[i])) for i in order]


def overlap_frame(atlas: Atlas, k: int = K) -> pd.DataFrame:
    """One row per image: index, label, then ``overlap{k}_<a>_<b>`` in [0,1] (rounded to 4
    decimals) for every pair of spaces, a before b in the atlas's order."""
    df = pd.DataFrame({"index": range(len(atlas.images)), "label": atlas.labels})
    keys = [s.key for s in atlas.spaces]
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            df[f"overlap{k}_{a}_{b}"] = np.round(point_overlap(atlas, a, b, k), 4)
    return df


# --------------------------------------------------------------------------- similarity


def _pairs(atlas: Atlas, k: int) -> dict[tuple[str, str], similarity.SimilarityRow]:
    memo = atlas.memo.setdefault("similarity", {})
    if k not in memo:
        keys = [s.key for s in atlas.spaces]
        lists = (
            {key: neighbour_lists(atlas, key, k) for key in keys} if len(atlas.images) > 1 else None
        )
        rows = similarity.similarity_matrix(
            {key: atlas.embeddings[key] for key in keys}, k=k, neighbours=lists
        )
        memo[k] = {(r.space_a, r.space_b): r for r in rows}
    return memo[k]


def similarity_table(atlas: Atlas, k: int = K) -> pd.DataFrame:
    """space_a, space_b, cka, mutual_knn<k>: every space with itself (1, 1: NaN CKA below the
    4 points the debiased estimator needs) and every pair (a before b in the atlas's order);
    debiased linear CKA (about 0 for unrelated spaces, may dip below) and mutual k-NN in [0,1],
    rounded to 4 decimals."""
    pairs = _pairs(atlas, k)
    keys = [s.key for s in atlas.spaces]
    self_cka = 1.0 if len(atlas.images) >= 4 else math.nan
    rows = []
    for i, a in enumerate(keys):
        rows.append([a, a, self_cka, 1.0 if len(atlas.images) > 1 else math.nan])
        for b in keys[i + 1 :]:
            r = pairs[(a, b)]
            rows.append([a, b, round(r.cka, 4), round(r.mutual_knn, 4)])
    return pd.DataFrame(rows, columns=["space_a", "space_b", "cka", f"mutual_knn{k}"])


def similarity_matrices(atlas: Atlas, k: int = K) -> tuple[list[str], np.ndarray, np.ndarray]:
    """-> (space keys, (S,S) CKA, (S,S) mutual k-NN), symmetric, from :func:`similarity_table`."""
    table = similarity_table(atlas, k)
    keys = [s.key for s in atlas.spaces]
    pos = {key: i for i, key in enumerate(keys)}
    cka = np.full((len(keys), len(keys)), np.nan)
    mutual = np.full_like(cka, np.nan)
    for r in table.itertuples(index=False):
        i, j = pos[r[0]], pos[r[1]]
        cka[i, j] = cka[j, i] = r[2]
        mutual[i, j] = mutual[j, i] = r[3]
    return keys, cka, mutual


# --------------------------------------------------------------------------- selection


def check_selection(indices: object, n: int, cap: int) -> list[int]:
    """A selection as a request gives it -> sorted distinct indices in [0, n). None or an
    empty list clear it (-> []). Raises ExplorerError with a sentence for anything that is not
    a list of whole numbers in range, or that holds more than ``cap`` (the display cap)."""
    if indices is None:
        return []
    if not isinstance(indices, list | tuple):
        raise ExplorerError(
            "A selection is a list of image numbers, such as [3, 17, 40]; send [] to clear it."
        )
    if len(indices) > cap:
        raise ExplorerError(
            f"That selection holds {len(indices):,} images; a selection can hold at most "
            f"{cap:,} (what the panels draw at once). Select fewer."
        )
    out = set()
    for v in indices:
        if isinstance(v, bool) or not isinstance(v, int | float) or v != int(v):
            raise ExplorerError(
                "A selection is a list of whole image numbers, such as [3, 17, 40]."
            )
        if not 0 <= int(v) < n:
            raise ExplorerError(
                f"Image #{int(v)} is not in this set: selections take numbers from 0 to {n - 1}."
            )
        out.add(int(v))
    return sorted(out)


@dataclass(frozen=True)
class SelectionSummary:
    """What a selection of ``size`` images shares: ``shares`` per labelling (the commonest
    value and its count), ``spread`` per space key (how many separate neighbourhoods the
    selection falls into there: joined through each image's :data:`K` nearest neighbours, its
    own group included, so near-copies of one photo hold together), ``source`` the space it was
    drawn in (None: set by number)."""

    size: int
    shares: dict[str, selection.Shares] = field(default_factory=dict)
    spread: dict[str, int] = field(default_factory=dict)
    source: str | None = None


def summarise_selection(
    atlas: Atlas, indices: Sequence[int], source: str | None = None
) -> SelectionSummary:
    """Checked indices (see :func:`check_selection`) -> a :class:`SelectionSummary` (size 0 for
    an empty selection)."""
    if source is not None and source not in {s.key for s in atlas.spaces}:
        source = None
    if not indices:
        return SelectionSummary(0, source=source)
    images = atlas.images
    shares = {
        name: selection.shares(images.labeling(name), indices) for name in images.labeling_names
    }
    spread = {}
    for s in atlas.spaces:
        comps = selection.neighbourhoods(plain_lists(atlas, s.key), indices)
        spread[s.key] = int(comps.max()) + 1
    return SelectionSummary(len(indices), shares, spread, source)


# --------------------------------------------------------------------------- controls


@dataclass(frozen=True)
class ControlReading:
    """One model space against the best control on one labelling.

    ``measure``: ``"probe"`` (accuracies with their fold spreads) or ``"knn5"`` where a probe
    could not be given; ``margin``: the difference that counts, the larger of :data:`LEVEL` and
    :data:`SIGMAS` standard errors of the difference of two shares of ``n`` images (binomial:
    every image is scored once); ``position``: ``"above"`` (ahead of the best control by more
    than ``margin``), ``"level"`` or ``"below"``.
    """

    labelling: str
    space: str
    measure: str
    score: float
    spread: float
    control: str
    control_score: float
    control_spread: float
    chance: float
    position: str
    margin: float = 0.0
    n: int = 0


def margin(a: float, b: float, n: int) -> float:
    """Two accuracies in [0,1], each a share of the same ``n`` images -> the difference that
    counts: max(:data:`LEVEL`, :data:`SIGMAS` · sqrt(a(1−a)/n + b(1−b)/n))."""
    if n < 1:
        return math.inf
    return max(LEVEL, SIGMAS * math.sqrt((a * (1 - a) + b * (1 - b)) / n))


def probes_above_chance(
    table: pd.DataFrame, labelling: str, n: int
) -> list[tuple[str, float, float]]:
    """A metrics table with probe columns, one labelling, the number of images scored ->
    ``(space, probe, probe_chance)`` for every space whose probe beats its chance by more than
    :func:`margin` (best first; [] without probe columns)."""
    if table.empty or "probe" not in table.columns:
        return []
    rows = table[(table["labels"] == labelling) & table["probe"].notna()]
    out = [
        (str(r.space), float(r.probe), float(r.probe_chance))
        for r in rows.itertuples(index=False)
        if float(r.probe) - float(r.probe_chance) > margin(float(r.probe), float(r.probe_chance), n)
    ]
    return sorted(out, key=lambda t: -t[1])


def _position(diff: float, margin: float) -> str:
    if diff > margin:
        return "above"
    return "below" if diff < -margin else "level"


def control_readings(
    table: pd.DataFrame, labellings: Sequence[str], n: int
) -> list[ControlReading]:
    """A metrics table with probe columns, the labellings to read (in order), the number of
    images scored -> one :class:`ControlReading` per (labelling, model space) where the table
    holds a control space with a score: every non-control space against the control that
    scores best there."""
    out = []
    if table.empty or "probe" not in table.columns:
        return out
    for name in labellings:
        rows = table[table["labels"] == name]
        if rows.empty:
            continue
        controls = rows[rows["space"].map(lambda k: _family(str(k)) in CONTROL_FAMILIES)]
        models = rows[~rows.index.isin(controls.index)]
        if controls.empty or models.empty:
            continue
        use_probe = rows["probe"].notna().all()
        col, chance_col = ("probe", "probe_chance") if use_probe else ("knn5", "chance")
        scored = controls[controls[col].notna()]
        if scored.empty:
            continue
        best = scored.loc[scored[col].idxmax()]
        b_spread = float(best["probe_spread"]) if use_probe else 0.0
        for r in models.itertuples(index=False):
            score = float(getattr(r, col))
            if math.isnan(score):
                continue
            spread = float(r.probe_spread) if use_probe else 0.0
            counts = margin(score, float(best[col]), n)
            out.append(
                ControlReading(
                    labelling=name,
                    space=str(r.space),
                    measure=col,
                    score=score,
                    spread=spread,
                    control=str(best["space"]),
                    control_score=float(best[col]),
                    control_spread=b_spread,
                    chance=float(getattr(r, chance_col)),
                    position=_position(score - float(best[col]), counts),
                    margin=counts,
                    n=n,
                )
            )
    return out
