"""UMAP's cold start, end to end: the CLI's first UMAP atlas in a fresh process with an empty
numba cache (cold) vs the same command again with the cache in place (warm):
``python -m bench.umap_cold [--out DIR] [--pairs 2]``.

Each pair runs a cold process (a new, empty ``NUMBA_CACHE_DIR``) then a warm one (the folder the
cold run filled), so a busy machine slows both alike; the medians are compared. The command is
``python -m explorer atlas bundled --method umap`` with the tiny test models
(``EXPLORER_PLUGINS=tests.tiny_models``), so the models cost little and the time is Python start,
imports, numba compilation or cache loading, and the fits. Writes DIR/umap_cold.json and .md (DIR: bench/results/umap_cold
unless --out says).

In a cold run the CLI starts a low-priority child that compiles UMAP into the empty cache while
it imports and embeds (``projection.precompile_umap``); its CPU is counted in the cold run's CPU
column (children's rusage), so "CPU" shows the compile's full cost and "wall" what a user waits.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import RESULTS

ROOT = Path(__file__).resolve().parents[1]


def run_cli(numba_dir: Path, work: Path, method: str = "umap") -> tuple[float, float]:
    """-> (wall seconds, CPU seconds of the child: user + system)."""
    env = dict(os.environ)
    env.update(
        NUMBA_CACHE_DIR=str(numba_dir),
        EXPLORER_PLUGINS="tests.tiny_models",
        EXPLORER_CACHE_DIR=str(work / "cache"),
        PYTHONPATH=str(ROOT),
    )
    cmd = [
        sys.executable,
        "-m",
        "explorer",
        "atlas",
        "bundled",
        "--out",
        str(work / "out"),
        "--vae",
        "test-tiny",
        "--clip",
        "test-clip",
        "--dino",
        "test-dino",
        "--method",
        method,
    ]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    took = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return took, cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=RESULTS / "umap_cold", help="default: %(default)s")
    p.add_argument("--pairs", type=int, default=2)
    p.add_argument("--no-pca", action="store_true", help="skip the --method pca runs")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": [], "pca": []}
    files = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run_cli(work / "numba-prime", work, "pca")  # embedding cache filled: models out of the way
        for i in range(args.pairs):
            numba_dir = work / f"numba-{i}"
            runs["cold"].append(run_cli(numba_dir, work))
            files.append(sum(1 for _ in numba_dir.rglob("*.nbi")))
            runs["warm"].append(run_cli(numba_dir, work))
            if not args.no_pca:
                runs["pca"].append(run_cli(numba_dir, work, "pca"))
            print(
                f"pair {i}: "
                + ", ".join(
                    f"{k} {v[-1][0]:.1f} s wall / {v[-1][1]:.1f} s CPU"
                    for k, v in runs.items()
                    if v
                ),
                flush=True,
            )

    def med(name: str, j: int) -> float:
        return statistics.median(r[j] for r in runs[name]) if runs[name] else math.nan

    res = {k: [{"wall_s": a, "cpu_s": b} for a, b in v] for k, v in runs.items()}
    res.update(
        numba_index_files=files,
        ratio_wall=med("cold", 0) / med("warm", 0),
        ratio_cpu=med("cold", 1) / med("warm", 1),
        load_end=os.getloadavg(),
    )
    rows = [
        ("cold: empty numba cache", "cold"),
        ("warm: cache in place", "warm"),
        ("same command, --method pca (no UMAP)", "pca"),
    ]
    md = "| run | wall (median) | CPU user+sys (median) |\n|---|---|---|\n" + "".join(
        f"| {label} | {med(k, 0):.1f} s | {med(k, 1):.1f} s |\n" for label, k in rows if runs[k]
    )
    md += (
        f"\n**cold / warm = {res['ratio_wall']:.2f}× wall, {res['ratio_cpu']:.2f}× CPU**; numba "
        f"index files after a cold run: {files}; {args.pairs} pair(s); load average at end "
        + ", ".join(f"{v:.2f}" for v in os.getloadavg())
        + ".\n"
    )
    (args.out / "umap_cold.json").write_text(json.dumps(res, indent=1))
    (args.out / "umap_cold.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
