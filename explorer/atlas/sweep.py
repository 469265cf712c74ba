"""Where meaning lives inside the diffusion model: an image set through a UNet's blocks at several
noise levels and prompts, each (block, timestep, prompt) scored per labelling.

:func:`run` embeds the set once per (prompt, timestep list) with
:mod:`explorer.spaces.unet_blocks` (one UNet pass per image batch, timestep and noise draw, hooks
on every block; through :func:`explorer.spaces.embed.embed`, so the embedding cache and a Ray
runner work as for any space), then scores every (block, timestep, prompt, labelling) with the
atlas's kNN-5 (group-aware where the set groups its images, as the metrics table does) and the
group-aware linear probe (:func:`explorer.analysis.probe.probe`). The prompts are the empty
prompt, a fixed neutral caption and ``"a photo of a {label}"`` with each image's own (main)
label: that one puts the answer into the text by construction.

Arrays and tables in and out: the words are in :mod:`explorer.ui.atlas.sweep_views`, the figure in
:func:`explorer.images.matrices.sweep_heatmap`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from explorer.analysis import metrics
from explorer.analysis.probe import probe
from explorer.core.errors import ExplorerError
from explorer.core.lru import LRU
from explorer.core.progress import Progress, no_progress
from explorer.core.safe_text import csv_cell
from explorer.datasets import ImageSet
from explorer.models import registry
from explorer.spaces import embed as embeddings
from explorer.spaces import unet_blocks
from explorer.spaces.cache import EmbeddingCache

__all__ = [
    "COLUMNS",
    "DEFAULT_TIMESTEPS",
    "MAX_IMAGES",
    "REFERENCE_COLUMNS",
    "STORE",
    "Cell",
    "PromptReading",
    "SweepPlan",
    "SweepResult",
    "grid",
    "knn_chances",
    "make_plan",
    "open_ref",
    "prompt_reading",
    "read_table",
    "reference_table",
    "run",
    "score",
    "score_cells",
    "sweep_cost",
    "sweep_features",
    "write",
    "write_table",
]

DEFAULT_TIMESTEPS = (0, 50, 100, 200, 400, 600, 800)
MAX_IMAGES = 2000
COLUMNS = ("block", "timestep", "prompt", "labels", "knn5", "probe", "chance", "probe_chance")
"""sweep.csv: knn5 and its chance (the atlas's rule), the probe and its chance (its own folds)."""
REFERENCE_COLUMNS = ("space", "labels", "knn5", "probe", "chance", "probe_chance")
STORE: LRU[SweepResult] = LRU(lambda: 32)
"""The sweeps the app has run, by atlas id (the main process writes it)."""


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep runs: a UNet, timesteps, blocks (forward order), noise draws and prompts."""

    unet: str
    timesteps: tuple[int, ...] = DEFAULT_TIMESTEPS
    blocks: tuple[str, ...] = ()
    seeds: int = 4
    prompts: tuple[str, ...] = unet_blocks.PROMPTS


def make_plan(
    unet: str | None = None,
    *,
    timesteps: Sequence[int] | str | None = None,
    blocks: Sequence[str] | str | None = None,
    seeds: int = 4,
    prompts: Sequence[str] | str | None = None,
) -> SweepPlan:
    """Checked :class:`SweepPlan`: ``unet`` a registry name (default: the usable one), every
    block of the model by default, :data:`DEFAULT_TIMESTEPS`, all three prompts; strings are
    comma lists (``"down0..3,mid"``, ``"0,200"``, ``"empty,label"``)."""
    name = (unet or registry.default_unet() or "").strip()
    if not name:
        raise ExplorerError(
            "No UNet space is available here: run `python -m explorer download sd15-unet` once "
            "with internet (about 2 GB)."
        )
    spec = registry.resolve_unet(name.split("@", 1)[0])
    if isinstance(timesteps, str):
        timesteps = [t for t in timesteps.split(",") if t.strip()]
    ts = list(timesteps) if timesteps is not None else list(DEFAULT_TIMESTEPS)
    ref = unet_blocks.parse_ref(f"{spec.name}@t{','.join(str(t).strip() for t in ts)}")
    if isinstance(blocks, str):
        chosen = unet_blocks.parse_blocks(blocks)
    elif blocks:
        chosen = unet_blocks.sort_blocks(blocks)
    else:
        chosen = tuple(unet_blocks.block_names(unet_blocks.unet_config(spec.name)))
    unet_blocks.block_widths(spec.name, chosen)  # every block is one of the model's
    if isinstance(prompts, str):
        prompts = [p for p in prompts.split(",") if p.strip()]
    chosen_prompts = tuple(
        dict.fromkeys(p.strip().lower() for p in (prompts or unet_blocks.PROMPTS))
    )
    bad = [p for p in chosen_prompts if p not in unet_blocks.PROMPTS]
    if bad or not chosen_prompts:
        raise ExplorerError(
            f"Unknown prompt {', '.join(bad) or '(none)'}; choose from {', '.join(unet_blocks.PROMPTS)}."
        )
    if not 1 <= int(seeds) <= unet_blocks.MAX_SEEDS:
        raise ExplorerError(f"--seeds must be 1 to {unet_blocks.MAX_SEEDS}, not {seeds}.")
    ordered = tuple(p for p in unet_blocks.PROMPTS if p in chosen_prompts)
    return SweepPlan(spec.name, ref.timesteps, chosen, int(seeds), ordered)


def sweep_cost(
    plan: SweepPlan, n: int, device: torch.device | str | None = None
) -> unet_blocks.Cost:
    """The :class:`~explorer.spaces.unet_blocks.Cost` of the sweep on ``n`` images."""
    return unet_blocks.estimate(
        plan.unet,
        n,
        timesteps=len(plan.timesteps),
        blocks=plan.blocks,
        seeds=plan.seeds,
        prompts=len(plan.prompts),
        device=device,
    )


def open_ref(plan: SweepPlan, block: str, timestep: int) -> str:
    """The atlas space ref of one sweep cell under the empty prompt (same draws)."""
    return f"unet:{unet_blocks.UNetRef(plan.unet, (int(timestep),), (block,), plan.seeds).ref}"


# --------------------------------------------------------------------------- features


def _check_size(image_set: ImageSet) -> None:
    if len(image_set) < 3:
        raise ExplorerError("A sweep needs at least 3 images: add more images to the set.")
    if len(image_set) > MAX_IMAGES:
        raise ExplorerError(
            f"The set has {len(image_set):,} images; a sweep takes up to {MAX_IMAGES:,} (it runs "
            "the UNet many times per image). Open a subset with --max-images."
        )


def sweep_features(
    image_set: ImageSet,
    plan: SweepPlan,
    *,
    cache: EmbeddingCache | None = None,
    runner: embeddings.Runner | None = None,
    device: torch.device | str | None = None,
    progress: Progress = no_progress,
) -> dict[tuple[str, int, str], np.ndarray]:
    """N images -> ``{(block, timestep, prompt): (N, C_block) float32}``, each the block's pooled
    output averaged over ``plan.seeds`` draws. One embed call per prompt (the label prompt: one
    per distinct label); with ``cache``, each empty-prompt cell is stored under the key of the
    atlas space :func:`open_ref` names, so that opening it costs nothing."""
    _check_size(image_set)
    hashes = image_set.keys or [embeddings.image_hash(im) for im in image_set.images]
    widths = unet_blocks.block_widths(plan.unet, plan.blocks)
    per_t = sum(widths)
    labels = image_set.labels
    calls: list[tuple[str, str, list[int]]] = []  # (prompt, caption, rows)
    for prompt in plan.prompts:
        if prompt == "label":
            for label in dict.fromkeys(labels):
                rows = [i for i, lab in enumerate(labels) if lab == label]
                calls.append((prompt, unet_blocks.caption("label", label), rows))
        else:
            calls.append((prompt, unet_blocks.caption(prompt), list(range(len(image_set)))))
    out: dict[str, np.ndarray] = {
        p: np.empty((len(image_set), 0), np.float32) for p in plan.prompts
    }
    total = sum(len(rows) for _, _, rows in calls)
    done = 0
    for prompt, text, rows in calls:
        ref = unet_blocks.UNetRef(plan.unet, plan.timesteps, plan.blocks, plan.seeds, text)
        share = len(rows) / total

        def prog(f: float, d: str, done=done, share=share, prompt=prompt) -> None:
            progress(done + f * share, f"{prompt} prompt: {d}")

        x = embeddings.embed(
            f"unet:{ref.ref}",
            [image_set.images[i] for i in rows],
            [hashes[i] for i in rows],
            cache,
            prog,
            device=device,
            runner=runner,
        )
        if out[prompt].shape[1] != x.shape[1]:
            out[prompt] = np.zeros((len(image_set), x.shape[1]), np.float32)
        out[prompt][rows] = x
        done += share
    cells: dict[tuple[str, int, str], np.ndarray] = {}
    for prompt, x in out.items():
        if x.shape[1] != per_t * len(plan.timesteps):
            raise ExplorerError(
                f"The UNet returned {x.shape[1]} columns where its config says "
                f"{per_t * len(plan.timesteps)}."
            )
        for ti, t in enumerate(plan.timesteps):
            start = ti * per_t
            for block, w in zip(plan.blocks, widths, strict=True):
                cells[(block, t, prompt)] = x[:, start : start + w]
                start += w
    if cache is not None and "empty" in plan.prompts:
        _store_cells(cells, plan, hashes, cache, device)
    return cells


def _store_cells(cells, plan: SweepPlan, hashes, cache: EmbeddingCache, device) -> None:
    for (block, t, prompt), x in cells.items():
        if prompt != "empty":
            continue
        one = unet_blocks.UNetRef(plan.unet, (t,), (block,), plan.seeds)
        key = unet_blocks.block_cache_key(one, None, device)
        if key[2] != "unknown":
            cache.put_many(key, list(hashes), x)


# --------------------------------------------------------------------------- scores


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


def knn_chances(image_set: ImageSet) -> dict[str, float]:
    """``{labelling: the kNN-5 chance}`` of the set, by the rule :func:`score` scores it with."""
    out = {}
    for name in image_set.labeling_names:
        labels, groups = image_set.labeling(name), image_set.groups_for(name)
        out[name] = (
            metrics.chance_level(labels)
            if groups is None
            else metrics.chance_level_grouped(labels, groups, 5)
        )
    return out


def score(
    x: np.ndarray, image_set: ImageSet, chances: dict[str, float] | None = None
) -> list[dict]:
    """(N,D) features -> one dict per labelling: knn5 (leave-one-out, cosine; group-aware where
    the set groups its images, as the atlas's metrics table) and its chance, the group-aware
    probe's accuracy and its chance under the probe's folds, all in [0,1] (nan: no score).
    ``chances``: :func:`knn_chances` of the set, if already known."""
    chances = chances or knn_chances(image_set)
    rows = []
    for name in image_set.labeling_names:
        labels, groups = image_set.labeling(name), image_set.groups_for(name)
        if groups is None:
            knn5 = metrics.knn_accuracy(x, labels, 5)
        else:
            knn5 = metrics.knn_accuracy_grouped(x, labels, groups, 5)
        p = probe(x, labels, groups=groups)
        rows.append(
            {
                "labels": name,
                "knn5": round(float(knn5), 4),
                "probe": round(_nan(p.accuracy), 4),
                "chance": round(float(chances[name]), 4),
                "probe_chance": round(_nan(p.chance), 4),
            }
        )
    return rows


def score_cells(
    cells: dict[tuple[str, int, str], np.ndarray],
    image_set: ImageSet,
    plan: SweepPlan,
    progress: Progress = no_progress,
    *,
    workers: int | None = None,
) -> pd.DataFrame:
    """Every (block, timestep, prompt) cell scored per labelling -> the sweep table
    (:data:`COLUMNS`; prompts, then timesteps, then blocks in forward order). ``workers``: cells
    scored at once in threads (default: up to 4, one per CPU); the table does not depend on it."""
    chances = knn_chances(image_set)
    order = [(b, t, p) for p in plan.prompts for t in plan.timesteps for b in plan.blocks]
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    scored: list[list[dict] | None] = [None] * len(order)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {
            pool.submit(score, cells[key], image_set, chances): i for i, key in enumerate(order)
        }
        for done, future in enumerate(as_completed(futures), start=1):
            scored[futures[future]] = future.result()
            progress(done / len(order), f"scored {done}/{len(order)} cells")
    rows = [
        {"block": b, "timestep": t, "prompt": p, **r}
        for (b, t, p), part in zip(order, scored, strict=True)
        for r in part or []
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def reference_table(spaces: dict[str, np.ndarray], image_set: ImageSet) -> pd.DataFrame:
    """``{space name: (N, D) features}`` of the same set -> their scores (:data:`REFERENCE_COLUMNS`),
    by the same rules as the sweep's cells."""
    chances = knn_chances(image_set)
    rows = [
        {"space": name, **r} for name, x in spaces.items() for r in score(x, image_set, chances)
    ]
    return pd.DataFrame(rows, columns=list(REFERENCE_COLUMNS))


@dataclass
class SweepResult:
    """A finished sweep: its plan, the sweep table, the reference spaces' table, the set's size
    and its main labelling's name."""

    plan: SweepPlan
    table: pd.DataFrame
    references: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(REFERENCE_COLUMNS))
    )
    n_images: int = 0
    main_labels: str = "label"


def run(
    image_set: ImageSet,
    plan: SweepPlan,
    *,
    cache: EmbeddingCache | None = None,
    runner: embeddings.Runner | None = None,
    device: torch.device | str | None = None,
    references: dict[str, np.ndarray] | None = None,
    progress: Progress = no_progress,
) -> SweepResult:
    """The whole sweep of ``image_set`` (see the module docstring) -> :class:`SweepResult`.
    ``references``: other spaces' features of the same set, scored alongside."""
    cells = sweep_features(
        image_set,
        plan,
        cache=cache,
        runner=runner,
        device=device,
        progress=lambda f, d: progress(0.85 * f, d),
    )
    table = score_cells(cells, image_set, plan, lambda f, d: progress(0.85 + 0.14 * f, d))
    refs = reference_table(references or {}, image_set)
    progress(1.0, "done")
    return SweepResult(plan, table, refs, len(image_set), image_set.labeling_names[0])


# --------------------------------------------------------------------------- files


def write_table(table: pd.DataFrame, path: str | Path) -> Path:
    """A sweep or reference table -> a CSV at ``path`` (text cells a spreadsheet would read as a
    formula are quoted, :func:`explorer.core.safe_text.csv_cell`)."""
    safe = table.copy()
    for col in safe.columns:
        if safe[col].dtype == object:
            safe[col] = safe[col].map(csv_cell)
    safe.to_csv(path, index=False)
    return Path(path)


def write(result: SweepResult, out: str | Path) -> dict[str, Path]:
    """``sweep.csv`` and ``references.csv`` in folder ``out`` -> their paths."""
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return {
            "sweep": write_table(result.table, folder / "sweep.csv"),
            "references": write_table(result.references, folder / "references.csv"),
        }
    except OSError as exc:
        raise ExplorerError(f"Cannot write to {folder}: {exc}. Check the --out path.") from exc


def read_table(path: str | Path) -> pd.DataFrame:
    """A ``sweep.csv`` -> the sweep table (ExplorerError if a column is missing)."""
    table = pd.read_csv(path)
    missing = [c for c in COLUMNS[:7] if c not in table.columns]
    if missing:
        raise ExplorerError(f"{path} is not a sweep.csv: it has no column {', '.join(missing)}.")
    return table


# --------------------------------------------------------------------------- reading it


def grid(
    table: pd.DataFrame, labels: str, metric: str = "probe"
) -> tuple[np.ndarray, list[str], list[str], list[int]]:
    """The sweep table -> ``(values (P, B, T), prompts, blocks, timesteps)`` of ``metric`` for
    labelling ``labels`` (nan where a cell is missing)."""
    if metric not in ("probe", "knn5"):
        raise ExplorerError(f"Unknown sweep score {metric!r}; choose probe or knn5.")
    rows = table[table["labels"] == labels]
    if rows.empty:
        have = ", ".join(dict.fromkeys(table["labels"]))
        raise ExplorerError(f"The sweep has no labelling {labels!r}; it has {have}.")
    prompts = [p for p in unet_blocks.PROMPTS if p in set(rows["prompt"])]
    blocks = list(unet_blocks.sort_blocks(rows["block"].unique()))
    timesteps = sorted(int(t) for t in rows["timestep"].unique())
    values = np.full((len(prompts), len(blocks), len(timesteps)), np.nan)
    for r in rows.itertuples(index=False):
        values[prompts.index(r.prompt), blocks.index(r.block), timesteps.index(int(r.timestep))] = (
            getattr(r, metric)
        )
    return values, prompts, blocks, timesteps


@dataclass(frozen=True)
class Cell:
    """One (block, timestep) cell and its score."""

    block: str
    timestep: int
    score: float


@dataclass(frozen=True)
class PromptReading:
    """The prompt experiment in numbers for one labelling and score: per prompt its best cell and
    its mean over cells; per timestep the best block's score under the empty prompt; chance."""

    labels: str
    metric: str
    chance: float
    best: dict[str, Cell]
    mean: dict[str, float]
    by_timestep: dict[int, float]
    default_cell: Cell | None  # the plain UNet space's point (mid, t=200) under the empty prompt


def prompt_reading(table: pd.DataFrame, labels: str, metric: str = "probe") -> PromptReading:
    """The sweep table -> :class:`PromptReading` for ``labels`` and ``metric``."""
    values, prompts, blocks, timesteps = grid(table, labels, metric)
    rows = table[table["labels"] == labels]
    chance_col = "probe_chance" if metric == "probe" and "probe_chance" in rows else "chance"
    chance = float(np.nanmean(rows[chance_col].to_numpy(float)))
    best, mean = {}, {}
    for i, p in enumerate(prompts):
        v = values[i]
        if np.isnan(v).all():
            continue
        b, t = np.unravel_index(np.nanargmax(v), v.shape)
        best[p] = Cell(blocks[b], timesteps[t], float(v[b, t]))
        mean[p] = float(np.nanmean(v))
    by_t: dict[int, float] = {}
    default = None
    if "empty" in prompts:
        v = values[prompts.index("empty")]
        by_t = {
            t: float(np.nanmax(v[:, j]))
            for j, t in enumerate(timesteps)
            if not np.isnan(v[:, j]).all()
        }
        if "mid" in blocks and 200 in timesteps:
            s = v[blocks.index("mid"), timesteps.index(200)]
            default = None if np.isnan(s) else Cell("mid", 200, float(s))
    return PromptReading(labels, metric, chance, best, mean, by_t, default)
