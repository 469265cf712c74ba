"""What the atlas's evidence costs at its 10,000-image limit, beside one UMAP fit in the same run:
the linear probes (explorer.analysis.probe), linear CKA, mutual k-NN and per-point neighbour
overlap (explorer.analysis.similarity), and the three weight-free baseline spaces
(explorer.spaces.baselines) on 1,000 images. A benchmark, not a test.

Features are synthetic: two spaces of the same N points, each ``--classes`` Gaussian clusters
(unit-variance centres, noise std 2, as in bench.atlas_scale) at ``--dim`` dimensions, the
same labels in both, groups of 5 images sharing a class. UMAP is fitted the way the app fits it
(rows L2-normalised, an exact cosine 15-NN graph handed to umap-learn as ``precomputed_knn``,
cosine metric, spectral init, seed 0), after an untimed warm-up fit that compiles numba's code.
Prints a Markdown table (for BENCHMARKS.md) on stdout, progress on stderr.

    python -m bench.evidence_cost --n 10000   # ~3-4 min on 2 busy cores
    python -m bench.evidence_cost --n 2000 --dim 256 --images 50 --repeat 1   # a smoke run
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import cpu_name
from explorer.analysis import probe as probe_mod
from explorer.analysis import similarity
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


def umap_fit(x: np.ndarray, umap_module, k: int = 15) -> tuple[float, float]:
    """The app's UMAP on (N,D) rows -> (seconds for the k-NN graph, seconds for the whole fit)."""
    t0 = time.perf_counter()
    xn = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    idx = similarity.cosine_neighbours(xn, k=k - 1)
    sim = _sims(xn, idx)
    n = len(xn)
    knn_idx = np.concatenate([np.arange(n)[:, None], idx], axis=1)
    knn_dist = np.concatenate([np.zeros((n, 1)), np.maximum(1.0 - sim, 0.0)], axis=1)
    t_knn = time.perf_counter() - t0
    reducer = umap_module.UMAP(
        n_neighbors=k,
        n_components=2,
        metric="cosine",
        init="spectral",
        random_state=0,
        n_jobs=1,
        precomputed_knn=(knn_idx, knn_dist.astype(np.float32), None),
    )
    reducer.fit_transform(xn)
    return t_knn, time.perf_counter() - t0


def _sims(xn: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(N,D) unit rows, (N,k) neighbour lists -> (N,k) cosine similarities, in row blocks."""
    out = np.empty(idx.shape, np.float32)
    for a in range(0, len(xn), 256):
        out[a : a + 256] = np.einsum("id,ikd->ik", xn[a : a + 256], xn[idx[a : a + 256]])
    return out


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="points in each space")
    ap.add_argument("--dim", type=int, default=2048, help="width of each space")
    ap.add_argument("--classes", type=int, default=15, help="clusters = labels")
    ap.add_argument("--k", type=int, default=10, help="neighbours for mutual k-NN / overlap")
    ap.add_argument("--images", type=int, default=1000, help="256 px images for the baselines")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each step (the best is kept)")
    ap.add_argument(
        "--compare-width",
        type=int,
        default=64,
        help="also time the group-aware probe at this PCA width (0: skip)",
    )
    args = ap.parse_args()
    rep = max(1, args.repeat)

    if not os.environ.get("NUMBA_CACHE_DIR"):  # the app's numba cache folder, if writable
        folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        folder = folder / "latent-space-explorer" / "numba"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            os.environ["NUMBA_CACHE_DIR"] = str(folder)
        except OSError:
            pass
    log("importing umap")
    import umap

    info = machine_info()
    start = time.perf_counter()
    log("umap warm-up fit (untimed: numba compiles or loads its cache)")
    warm_x, *_ = synthetic_spaces(300, 16, 3, seed=1)
    umap_fit(warm_x, umap)

    log(f"building two {args.n:,} × {args.dim} spaces")
    x, y, labels, groups = synthetic_spaces(args.n, args.dim, args.classes)
    rows: list[tuple[str, str, float]] = []  # (step, result, seconds)

    def conv(r) -> str:
        return "converged" if r.converged else f"NOT converged in {r.unconverged_folds} folds"

    log("probe (stratified folds)")
    p, t_probe = timed(lambda: probe_mod.probe(x, labels), rep)
    rows.append(
        (
            "linear probe, stratified 5-fold",
            f"{p.accuracy:.3f} ± {p.spread:.3f} (chance {p.chance:.3f}), "
            f"{p.n_components} PCA axes, {conv(p)}",
            t_probe,
        )
    )
    log(f"probe: {t_probe:.2f}s; probe (group-aware folds)")
    pg, t_probe_g = timed(lambda: probe_mod.probe(x, labels, groups=groups), rep)
    rows.append(
        (
            "linear probe, stratified group 5-fold (groups of 5)",
            f"{pg.accuracy:.3f} ± {pg.spread:.3f} (chance {pg.chance:.3f}), {conv(pg)}",
            t_probe_g,
        )
    )
    if args.compare_width and args.compare_width != probe_mod.PCA_WIDTH:
        log(f"probe grouped: {t_probe_g:.2f}s; the same at PCA width {args.compare_width}")
        policy_width = probe_mod.PCA_WIDTH
        probe_mod.PCA_WIDTH = args.compare_width  # the comparison row only; restored below
        try:
            pw, t_w = timed(lambda: probe_mod.probe(x, labels, groups=groups), rep)
        finally:
            probe_mod.PCA_WIDTH = policy_width
        rows.append(
            (
                f"(comparison, not the policy) the group-aware probe at PCA width "
                f"{args.compare_width}",
                f"{pw.accuracy:.3f} ± {pw.spread:.3f}, {pw.n_components} PCA axes, {conv(pw)}",
                t_w,
            )
        )
    log(f"probe grouped: {t_probe_g:.2f}s; linear CKA")
    cka, t_cka = timed(lambda: similarity.linear_cka(x, y), rep)
    rows.append(("linear CKA (debiased), A vs B", f"{cka:.4f}", t_cka))
    cka_self, t_cka_self = timed(lambda: similarity.linear_cka(x, x), rep)
    rows.append(("linear CKA (debiased), A vs A", f"{cka_self:.4f}", t_cka_self))

    log(f"cka: {t_cka:.2f}s; cosine {args.k}-NN lists of both spaces")
    (nx, ny), t_lists = timed(
        lambda: (
            similarity.cosine_neighbours(x, k=args.k),
            similarity.cosine_neighbours(y, k=args.k),
        ),
        rep,
    )
    rows.append(
        (
            f"exact cosine {args.k}-NN lists, both spaces (the atlas already computes these)",
            "",
            t_lists,
        )
    )
    mk, t_mutual = timed(
        lambda: similarity.mutual_knn(None, None, k=args.k, nbrs_x=nx, nbrs_y=ny), rep
    )
    rows.append(
        (
            f"mutual {args.k}-NN from the lists",
            f"{mk:.4f} (unrelated: {args.k / (args.n - 1):.4f})",
            t_mutual,
        )
    )
    overlap, t_overlap = timed(
        lambda: similarity.neighbour_overlap(None, None, k=args.k, nbrs_x=nx, nbrs_y=ny), rep
    )
    rows.append(
        (
            f"per-point {args.k}-NN overlap from the lists",
            f"({overlap.shape[0]:,},) in [{overlap.min():.2f}, {overlap.max():.2f}]",
            t_overlap,
        )
    )

    log("UMAP fit of space A")
    fits = [umap_fit(x, umap) for _ in range(rep)]
    t_umap_knn, t_umap = min(fits, key=lambda f: f[1])
    log(f"umap: {t_umap:.2f}s (k-NN graph {t_umap_knn:.2f}s)")

    log(f"baselines on {args.images:,} images of 256 px")
    images = sample_images(args.images)
    base_rows = []
    for name, meta in baselines.BASELINES.items():
        f, dt = timed(lambda name=name: baselines.baseline_features(name, images), rep)
        assert f.shape == (len(images), meta.dims)
        base_rows.append([name, str(meta.dims), fmt_s(dt), f"{dt / len(images) * 1000:.2f} ms"])
    total = time.perf_counter() - start
    load_end = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"

    # ------------------------------------------------------------------ report
    print(f"## Evidence cost at {args.n:,} points × {args.dim} dimensions\n")
    print(table(["", ""], [[k, v] for k, v in info]))
    print(f"\nload average at end: {load_end}; whole run {fmt_s(total)}.\n")
    print(
        f"Two synthetic spaces A and B ({args.classes} Gaussian clusters each, same labels, "
        f"independent centres), groups of 5 images sharing a class. Each time is the best of "
        f"{rep} runs. Probe policy: {probe_mod.POLICY}. UMAP: the app's fit (exact cosine "
        f"15-NN graph + umap-learn), {fmt_s(t_umap)} of which {fmt_s(t_umap_knn)} is its "
        "k-NN graph.\n"
    )
    print(
        table(
            ["step", "result", "time", "× one UMAP fit"],
            [[s_, r, fmt_s(t), f"{t / t_umap:.2f}"] for s_, r, t in rows]
            + [["one UMAP fit of A (incl. its k-NN graph)", "", fmt_s(t_umap), "1.00"]],
        )
    )
    per_space = t_probe_g + t_cka + t_mutual + t_overlap
    with_lists = per_space + t_lists
    print("\n### Ratios from this run\n")
    print(
        f"- Group-aware probe + CKA + mutual k-NN + per-point overlap (lists reused): "
        f"{fmt_s(per_space)} = **{per_space / t_umap:.2f}× one UMAP fit** (goal ≤ 0.5×)."
    )
    print(
        f"- The same with both spaces' neighbour lists computed here: {fmt_s(with_lists)} = "
        f"{with_lists / t_umap:.2f}× one UMAP fit."
    )
    print(
        f"- One probe: {fmt_s(t_probe_g / max(pg.n_folds, 1))} a fold "
        f"({pg.n_folds} folds); it runs once per (space, labelling)."
    )
    print(f"\n### Baseline spaces on {args.images:,} images of 256×256 px\n")
    print(table(["space", "dims", f"{args.images:,} images", "per image"], base_rows))


if __name__ == "__main__":
    main()
