"""What an atlas's numbers say: the metrics and overlap tables, and the verdict, as data.

:func:`metrics_table` and :func:`overlap_table` are DataFrames (the UI shows them, the CLI
prints and writes them); :func:`verdict` reads the metrics table into a :class:`Verdict` --
which space groups the set by its labels best, which are tied, whether the classes are too small
to read much into the numbers. The sentence a student reads is written in ``explorer.ui``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from explorer.analysis import metrics
from explorer.atlas import evidence
from explorer.atlas.build import coords_for
from explorer.atlas.types import Atlas

__all__ = [
    "ABOVE_CHANCE",
    "COUNTED",
    "MIN_PER_CLASS",
    "TIE",
    "Verdict",
    "metrics_table",
    "near_chance",
    "overlap_k",
    "overlap_table",
    "ranked_readings",
    "unet_position",
    "verdict",
]

METRICS_COLUMNS = [
    "space",
    "model",
    "labels",
    "knn5",
    "knn10",
    "chance",
    "silhouette",
    "trustworthiness",
    *evidence.PROBE_COLUMNS,
    "sample",
]
COUNTED = " (same photo counted)"
"""Suffix of the labelling in the extra row that scores the main labelling with same-photo
neighbours counted: what near-duplicates do to the numbers."""


def metrics_table(atlas: Atlas, method: str) -> pd.DataFrame:
    """One row per (space, labelling): space, model, labels, knn5, knn10, chance, silhouette,
    trustworthiness, then the linear probe's probe, probe_chance, probe_spread, probe_folds and
    probe_note (:func:`explorer.atlas.evidence.probe_values`; its folds split by group wherever
    the kNN votes leave the group out).

    knn5/knn10/chance are accuracies in [0, 1], silhouette in [-1, 1], trustworthiness of the
    ``method`` map in [0, 1]; rounded to 4 decimals. ``labels`` names the labelling (``label``
    for a set with one). Where the set groups its images (variants of one source photo), every
    labelling but the grouping itself is scored group-aware (same-photo neighbours left out), and
    one more row per space scores the main labelling with them counted (``labels`` ends in
    :data:`COUNTED`). Past :data:`explorer.analysis.metrics.METRICS_FULL_MAX` images every row is
    computed on the same seeded sample of METRICS_SAMPLE, stratified by the labelling the panels
    are coloured by (:func:`metric_rows`), and ``sample`` says so ('' when every image was
    scored). Computed once per atlas and method (``atlas.metrics``; a saved atlas
    brings its own); a copy is returned.
    """
    if method not in atlas.metrics:
        atlas.metrics[method] = _metrics_table(atlas, method)
    return atlas.metrics[method].copy()


def metric_rows(atlas: Atlas) -> np.ndarray | None:
    """The rows the metrics table scores: None for every image (up to
    :data:`~explorer.analysis.metrics.METRICS_FULL_MAX`), else a seeded sample of
    :data:`~explorer.analysis.metrics.METRICS_SAMPLE` stratified by the colouring's labels."""
    n = len(atlas.images)
    if n <= metrics.METRICS_FULL_MAX:
        return None
    return metrics.stratified_sample(atlas.images.labeling(atlas.color_by), metrics.METRICS_SAMPLE)


def _metrics_table(atlas: Atlas, method: str) -> pd.DataFrame:
    xy = coords_for(atlas, method)
    images = atlas.images
    names = images.labeling_names
    rows = []
    picked = metric_rows(atlas)
    note = "" if picked is None else metrics.sample_note(picked.size, len(images))

    def cut(values):
        return values if picked is None or values is None else [values[i] for i in picked]

    def add(space, name: str, labels: list[str], groups: list[str] | None) -> None:
        x, low = atlas.embeddings[space.key], xy[space.key]
        if picked is not None:
            x, low = x[picked], low[picked]
        labels, groups = cut(labels), cut(groups)
        m = metrics.space_metrics(x, low, labels, groups)
        values = {k: round(float(v), 4) for k, v in m.items()}
        found = evidence.probe_result(atlas, space.key, name, labels, groups, rows=picked)
        values.update(evidence.probe_values(found))
        rows.append(
            {"space": space.key, "model": space.model, "labels": name, **values, "sample": note}
        )

    for space in atlas.spaces:
        for name in names:
            add(space, name, images.labeling(name), images.groups_for(name))
        main = names[0]
        if images.groups_for(main) is not None:
            add(space, main + COUNTED, images.labeling(main), None)
    return pd.DataFrame(rows, columns=METRICS_COLUMNS)


def overlap_k(atlas: Atlas, k: int = 10) -> int:
    """The k :func:`overlap_table` uses for this atlas: ``k`` capped to [1, N - 1]."""
    return max(1, min(k, len(atlas.images) - 1))


def overlap_table(atlas: Atlas, k: int = 10) -> pd.DataFrame:
    """Neighbour-set overlap in [0, 1] between each pair of spaces (1 = the same k nearest
    neighbours); first column ``overlap@k`` names the row's space. Computed once per atlas and
    k (``atlas.overlaps``; a saved atlas brings its own); a copy is returned."""
    k = overlap_k(atlas, k)
    if k not in atlas.overlaps:
        keys = [s.key for s in atlas.spaces]
        data = {
            a: [
                1.0
                if a == b
                else round(
                    metrics.neighbour_overlap(atlas.embeddings[a], atlas.embeddings[b], k), 4
                )
                for b in keys
            ]
            for a in keys
        }
        df = pd.DataFrame(data, index=keys).T.reset_index()
        atlas.overlaps[k] = df.rename(columns={"index": f"overlap@{k}"})
    return atlas.overlaps[k].copy()


MIN_PER_CLASS = 4  # a 5-NN majority of its own class needs at least 3 classmates
TIE = 0.02  # kNN accuracies closer than this are read as a tie
ABOVE_CHANCE = 0.10  # a best score within this of chance is read as chance (small sets are noisy)


@dataclass(frozen=True)
class Verdict:
    """What the metrics table says about a set, as data.

    ``knn5``: leave-one-out 5-NN label accuracy in [0, 1] per space, in the table's order;
    ``chance``: the accuracy of always guessing the commonest label. ``leaders``: the best
    space and every space within :data:`TIE` of it, best first. ``classes`` and
    ``smallest_class``: how many labels the set has and the size of its smallest class (None
    when the labels were not given).
    """

    knn5: dict[str, float]
    chance: float
    leaders: list[str]
    above_chance: bool
    classes: int | None = None
    smallest_class: int | None = None
    labeling: str = "label"
    readings: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    counted: dict[str, float] = field(default_factory=dict)

    @property
    def single_space(self) -> bool:
        """One space only: a reading, but no comparison."""
        return len(self.knn5) < 2

    @property
    def single_label(self) -> bool:
        """One label only: there is nothing to compare."""
        return self.classes is not None and self.classes < 2

    @property
    def small_classes(self) -> bool:
        """The smallest class has fewer than :data:`MIN_PER_CLASS` images."""
        return self.smallest_class is not None and self.smallest_class < MIN_PER_CLASS

    @property
    def readable(self) -> bool:
        """Enough labels and images per class, and some space beats chance."""
        return not self.single_label and not self.small_classes and self.above_chance

    @property
    def best(self) -> str | None:
        """The one space that groups the set by its labels best (None: unreadable, a tie, or a
        single space, which has nothing to be compared with)."""
        if self.single_space:
            return None
        return self.leaders[0] if self.readable and len(self.leaders) == 1 else None

    @property
    def tied(self) -> list[str]:
        """The spaces that group the set about equally well ([] unless there is a tie)."""
        if self.single_space:
            return []
        return list(self.leaders) if self.readable and len(self.leaders) > 1 else []


def verdict(table: pd.DataFrame, labels: Sequence[str] | None = None) -> Verdict | None:
    """Read a :func:`metrics_table` (``knn5``, ``chance`` columns) -> a :class:`Verdict`; None
    for an empty table. ``labels``: the set's labels, to warn when classes are too small."""
    if table.empty:
        return None
    classes = smallest = None
    if labels is not None:
        counts = pd.Series(list(labels)).value_counts()
        classes, smallest = len(counts), int(counts.min()) if len(counts) else 0
    readings: dict[str, dict[str, tuple[float, float]]] = {}
    counted: dict[str, float] = {}
    main = "label"
    if "labels" in table.columns:
        for r in table.itertuples():
            name = str(r.labels)
            if name.endswith(COUNTED):
                counted[str(r.space)] = float(r.knn5)
            else:
                readings.setdefault(name, {})[str(r.space)] = (float(r.knn5), float(r.chance))
        main = str(table["labels"].iloc[0])
        table = table[table["labels"] == main]
    ranked = table.sort_values("knn5", ascending=False, kind="stable")
    top = float(ranked["knn5"].iloc[0])
    chance = float(table["chance"].iloc[0])
    leaders = ranked[ranked["knn5"] >= top - TIE]["space"].tolist() or [ranked["space"].iloc[0]]
    return Verdict(
        knn5={str(r.space): float(r.knn5) for r in table.itertuples()},
        chance=chance,
        leaders=[str(s) for s in leaders],
        above_chance=not top <= chance + ABOVE_CHANCE,
        classes=classes,
        smallest_class=smallest,
        labeling=main,
        readings=readings,
        counted=counted,
    )


def ranked_readings(v: Verdict, space: str) -> list[tuple[str, float, float]]:
    """``space``'s readings of a set with several labellings -> ``[(labelling, knn5, chance)]``
    ordered by 5-NN accuracy, highest first (ties keep the table's order): what the space keeps
    of each labelling, in the order its numbers give."""
    rows = [(name, *per[space]) for name, per in v.readings.items() if space in per]
    return sorted(rows, key=lambda r: -r[1])


def near_chance(knn5: float, chance: float) -> bool:
    """A score within :data:`ABOVE_CHANCE` of its chance level reads as chance."""
    return knn5 <= chance + ABOVE_CHANCE


SEMANTIC = ("clip", "dino", "vit")  # spaces trained for meaning (with text or labels or neither)


def unet_position(v: Verdict) -> tuple[str, dict[str, float]] | None:
    """Where the UNet space's 5-NN accuracy on the main labelling falls against the VAE's and the
    best meaning-trained space's (clip, dino, vit): ``"between"`` (above the VAE and below that
    space by more than :data:`TIE`), ``"like-vae"``, ``"below-vae"`` or ``"like-semantic"`` (within
    :data:`TIE` of it or above), with the three scores ``{"unet", "vae", <best space key>}``.
    None without a UNet, a VAE and a meaning-trained space, or when the numbers are unreadable."""

    def first(family: str) -> str | None:
        return next((k for k in v.knn5 if k.rstrip("0123456789") == family), None)

    unet, vae = first("unet"), first("vae")
    semantic = [k for k in (first(f) for f in SEMANTIC) if k is not None]
    if unet is None or vae is None or not semantic or not v.readable:
        return None
    best = max(semantic, key=lambda k: v.knn5[k])
    u, a, s = v.knn5[unet], v.knn5[vae], v.knn5[best]
    scores = {"unet": u, "vae": a, best: s}
    if u >= s - TIE:
        return "like-semantic", scores
    if abs(u - a) <= TIE:
        return "like-vae", scores
    return ("between" if u > a else "below-vae"), scores
