"""What the atlas's evidence costs at its 10,000-image limit, beside the UMAP maps of the same
atlas in the same run: the app's own calls on a two-space atlas (explorer.atlas.evidence: the
linear probe of each space, linear CKA, mutual 10-NN and per-point overlap on the atlas's own
neighbour lists; explorer.analysis.projection.project for UMAP), once with groups (a photo's
versions: folds split by group, lists leave the group out) and once without, and the three
weight-free control spaces (explorer.spaces.baselines) on 1,000 images. A benchmark, not a test.

Features are synthetic: two spaces of the same N points, each ``--classes`` Gaussian clusters
(unit-variance centres, noise std 2, as in bench.atlas_scale) at ``--dim`` dimensions, the
same labels in both, groups of 5 images sharing a class. UMAP runs as the atlas runs it
(``project(x, "umap", seed=0)``: its exact cosine k-NN pass, which the metrics and the evidence
then share), after an untimed warm-up fit that compiles numba's code. Each step runs in the order
the app runs them (maps first), once: the probe is deterministic and the lists are remembered,
so a repeat would time a cache. Prints Markdown (for BENCHMARKS.md) on stdout, progress on stderr.

    nice -n 10 python -m bench.evidence_cost --n 10000   # ~4-6 min on 2 busy cores
    python -m bench.evidence_cost --n 2000 --dim 256 --images 50   # a smoke run
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time

import numpy as np

from bench.common import cpu_name
from explorer.analysis import knn, projection
from explorer.analysis import probe as probe_mod
from explorer.atlas import evidence
from explorer.atlas.types import Atlas, Space
from explorer.datasets import ImageSet
from explorer.spaces import baselines


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fmt_s(t: float) -> str:
    if t < 0.01:
        return f"{t * 1000:.2f} ms"
    if t < 1:
        return f"{t * 1000:.0f} ms"
    return f"{t:.2f} s" if t < 120 else f"{t / 60:.1f} min"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_info() -> list[tuple[str, str]]:
    import sklearn
    import umap
    from threadpoolctl import threadpool_info

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    blas = ", ".join(
        f"{p.get('internal_api')} {p.get('num_threads')} threads" for p in threadpool_info()
    )
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return [
        ("date", datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")),
        ("CPU", f"{cpu_name()} ({os.cpu_count()} logical cores, {usable} usable by this process)"),
        (
            "OS / Python",
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        ),
        (
            "numpy / scikit-learn / umap-learn",
            f"{np.__version__} / {sklearn.__version__} / {umap.__version__}",
        ),
        ("thread pools", blas or "none found"),
        ("niceness", str(os.nice(0)) if hasattr(os, "nice") else "?"),
        ("load average at start (1/5/15 min)", load),
    ]


def synthetic_spaces(n: int, dim: int, classes: int, seed: int = 0):
    """Two (n, dim) float32 clustered spaces of the same points, (n,) labels, (n,) groups."""
    rng = np.random.default_rng([seed, n, dim])
    groups = np.arange(n) // 5
    group_class = rng.integers(0, classes, groups.max() + 1)
    group_class[:classes] = np.arange(classes)  # every class present
    codes = group_class[groups]
    spaces = []
    for _ in range(2):
        centres = rng.standard_normal((classes, dim), dtype=np.float32)
        spaces.append(centres[codes] + 2.0 * rng.standard_normal((n, dim), dtype=np.float32))
    labels = np.array([f"class {c:02d}" for c in codes])
    return spaces[0], spaces[1], labels, groups


def sample_images(n: int, side: int = 256, seed: int = 0) -> list:
    """n varied side×side RGB images: smooth colour fields with shapes and noise."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    out = []
    for _ in range(n):
        a, b = rng.uniform(0, 255, (2, 3))
        field = a + (b - a) * (xx if rng.random() < 0.5 else yy)[:, :, None]
        field += rng.normal(0, 12, (side, side, 3))
        im = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(im)
        for _ in range(3):
            x0, y0 = rng.integers(0, side - 40, 2)
            w, h = rng.integers(20, 120, 2)
            draw.ellipse(
                (x0, y0, x0 + w, y0 + h), fill=tuple(int(v) for v in rng.integers(0, 256, 3))
            )
        out.append(im)
    return out


def timed(fn, repeat: int):
    """-> (fn's last result, the best wall time of ``repeat`` calls)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def tiny_atlas(x: np.ndarray, y: np.ndarray, labels, groups) -> Atlas:
    """A two-space atlas of the features (one shared 8×8 stand-in image: no thumbnails)."""
    from PIL import Image

    n = len(labels)
    im = Image.new("RGB", (8, 8))
    grouping = None if groups is None else [f"g{g}" for g in groups]
    image_set = ImageSet(
        "bench", [im] * n, list(labels), [f"p{i}" for i in range(n)], groups=grouping
    )
    spaces = [Space("a", "vae:bench", "vae", "bench"), Space("b", "clip:bench", "clip", "bench")]
    return Atlas("bench", image_set, spaces, {"a": x, "b": y})


def run_atlas(x, y, labels, groups, what: str) -> tuple[list[tuple[str, str, float]], float, float]:
    """The app's steps on one atlas -> (rows (step, result, seconds), evidence s, UMAP s)."""
    knn._MEMO.clear()  # nothing remembered from the other run: the maps pay their pass
    atlas = tiny_atlas(x, y, labels, groups)
    rows = []
    t_umap = 0.0
    for key in ("a", "b"):
        log(f"{what}: UMAP of space {key}")
        t0 = time.perf_counter()
        projection.project(atlas.embeddings[key], "umap", seed=0)
        dt = time.perf_counter() - t0
        t_umap += dt
        rows.append((f"UMAP map of space {key} (its cosine k-NN pass included)", "", dt))
    t_ev = 0.0
    for key in ("a", "b"):
        log(f"{what}: probe of space {key}")
        t0 = time.perf_counter()
        g = None if groups is None else atlas.images.groups
        r = evidence.probe_result(atlas, key, "label", atlas.labels, g)
        dt = time.perf_counter() - t0
        t_ev += dt
        conv = "converged" if r.converged else f"NOT converged in {r.unconverged_folds} folds"
        rows.append(
            (
                f"linear probe of space {key}, {r.n_folds}-fold"
                + (" group" if r.grouped else "")
                + f", training folds cut to {probe_mod.MAX_TRAIN:,}",
                f"{r.accuracy:.3f} ± {r.spread:.3f} (chance {r.chance:.3f}), "
                f"{r.n_components} axes, {conv}",
                dt,
            )
        )
    log(f"{what}: neighbour lists, CKA and mutual k-NN")
    t0 = time.perf_counter()
    for key in ("a", "b"):
        evidence.neighbour_lists(atlas, key)
    dt_lists = time.perf_counter() - t0
    rule = (
        "own group left out: from the maps' wide lists"
        if evidence.lists_leave_groups_out(atlas)
        else "the maps' lists, reused"
    )
    rows.append((f"10-NN lists of both spaces ({rule})", "", dt_lists))
    t0 = time.perf_counter()
    table = evidence.similarity_table(atlas)
    dt_sim = time.perf_counter() - t0
    pair = table[(table.space_a == "a") & (table.space_b == "b")].iloc[0]
    rows.append(
        (
            "linear CKA (debiased) + mutual 10-NN, a vs b",
            f"CKA {pair.cka:.4f}, mutual 10-NN {pair.mutual_knn10:.4f}",
            dt_sim,
        )
    )
    t0 = time.perf_counter()
    overlap = evidence.point_overlap(atlas, "a", "b")
    evidence.changes(atlas, "a", "b")
    dt_ov = time.perf_counter() - t0
    rows.append(
        (
            "per-point 10-NN overlap + the images that change most",
            f"({overlap.shape[0]:,},) mean {overlap.mean():.3f}",
            dt_ov,
        )
    )
    t_ev += dt_lists + dt_sim + dt_ov
    return rows, t_ev, t_umap


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="points in each space")
    ap.add_argument("--dim", type=int, default=2048, help="width of each space")
    ap.add_argument("--classes", type=int, default=15, help="clusters = labels")
    ap.add_argument("--images", type=int, default=1000, help="256 px images for the baselines")
    ap.add_argument(
        "--uncapped", action="store_true", help="also time the probe without the training cap"
    )
    args = ap.parse_args()

    log("importing umap and warming it up (untimed: numba compiles or loads its cache)")
    info = machine_info()
    start = time.perf_counter()
    warm_x, *_ = synthetic_spaces(300, 16, 3, seed=1)
    projection.warm_up_umap(background=False)
    projection.project(warm_x, "umap", seed=0)

    log(f"building two {args.n:,} × {args.dim} spaces")
    x, y, labels, groups = synthetic_spaces(args.n, args.dim, args.classes)
    runs = {}
    for what, g in (("grouped", groups), ("no groups", None)):
        runs[what] = run_atlas(x, y, labels, g, what)
    uncapped = None
    if args.uncapped:
        log("the group-aware probe without the training cap (comparison, not the policy)")
        cap = probe_mod.MAX_TRAIN
        probe_mod.MAX_TRAIN = 10**9
        try:
            t0 = time.perf_counter()
            r = probe_mod.probe(x, labels, groups=groups)
            uncapped = (r, time.perf_counter() - t0)
        finally:
            probe_mod.MAX_TRAIN = cap

    log(f"baselines on {args.images:,} images of 256 px")
    images = sample_images(args.images)
    base_rows = []
    for name, meta in baselines.BASELINES.items():
        f, dt = timed(lambda name=name: baselines.baseline_features(name, images), 1)
        assert f.shape == (len(images), meta.dims)
        base_rows.append([name, str(meta.dims), fmt_s(dt), f"{dt / len(images) * 1000:.2f} ms"])
    total = time.perf_counter() - start
    load_end = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"

    # ------------------------------------------------------------------ report
    print(f"## Evidence cost at {args.n:,} points × {args.dim} dimensions\n")
    print(table(["", ""], [[k, v] for k, v in info]))
    print(f"\nload average at end: {load_end}; whole run {fmt_s(total)}.\n")
    print(
        f"Two synthetic spaces a and b ({args.classes} Gaussian clusters each, same labels, "
        "independent centres), groups of 5 images sharing a class. Probe policy: "
        f"{probe_mod.POLICY}.\n"
    )
    for what, (rows, t_ev, t_umap) in runs.items():
        one = max(r[2] for r in rows if r[0].startswith("UMAP"))
        print(f"### The atlas {'with' if what == 'grouped' else 'without'} groups\n")
        print(
            table(
                ["step", "result", "time", "× the two UMAP maps"],
                [[s_, r, fmt_s(t), f"{t / t_umap:.2f}"] for s_, r, t in rows],
            )
        )
        print(
            f"\n- Probes + CKA + mutual 10-NN + per-point overlap: {fmt_s(t_ev)} = "
            f"**{t_ev / t_umap:.2f}× the atlas's two UMAP maps** ({fmt_s(t_umap)}; goal ≤ 0.5×), "
            f"{t_ev / one:.2f}× the slower single map.\n"
        )
    if uncapped is not None:
        r, dt = uncapped
        print(
            f"Comparison, not the policy: the group-aware probe of space a with no training cap "
            f"({r.n_folds} folds of ~{args.n * (r.n_folds - 1) // r.n_folds:,} training rows): "
            f"{fmt_s(dt)}, {r.accuracy:.3f} ± {r.spread:.3f}.\n"
        )
    print(f"### Control spaces on {args.images:,} images of 256×256 px\n")
    print(table(["space", "dims", f"{args.images:,} images", "per image"], base_rows))


if __name__ == "__main__":
    main()
