"""UMAP's cold start, end to end: the CLI's first UMAP atlas in a fresh process with an empty
numba cache (cold) vs the same command again with the cache in place (warm):
``python -m bench.umap_cold --out DIR [--pairs 2]``.

Each pair runs a cold process (a new, empty ``NUMBA_CACHE_DIR``) then a warm one (the folder the
cold run filled), so a busy machine slows both alike; the medians are compared. The command is
``python -m explorer atlas bundled --method umap`` with the tiny test models
(``EXPLORER_PLUGINS=tests.tiny_models``), so the models cost little and the time is Python start,
imports, numba compilation or cache loading, and the fits. Writes DIR/umap_cold.json and .md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(numba_dir: Path, work: Path, method: str = "umap") -> float:
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
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return took


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--pairs", type=int, default=2)
    p.add_argument("--no-pca", action="store_true", help="skip the --method pca runs")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cold, warm, pca, files = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run_cli(work / "numba-prime", work, "pca")  # embedding cache filled: models out of the way
        for i in range(args.pairs):
            numba_dir = work / f"numba-{i}"
            cold.append(run_cli(numba_dir, work))
            files.append(sum(1 for _ in numba_dir.rglob("*.nbi")))
            warm.append(run_cli(numba_dir, work))
            pca.append(math.nan if args.no_pca else run_cli(numba_dir, work, "pca"))
            print(
                f"pair {i}: cold {cold[-1]:.1f} s, warm {warm[-1]:.1f} s, pca {pca[-1]:.1f} s",
                flush=True,
            )
    c, w, q = statistics.median(cold), statistics.median(warm), statistics.median(pca)
    res = {
        "cold_s": cold,
        "warm_s": warm,
        "pca_s": pca,
        "numba_index_files": files,
        "ratio": c / w,
        "load_end": os.getloadavg(),
    }
    md = (
        "| run | end to end (median) | runs |\n|---|---|---|\n"
        f"| cold: empty numba cache | {c:.1f} s | {', '.join(f'{t:.1f}' for t in cold)} |\n"
        f"| warm: cache in place | {w:.1f} s | {', '.join(f'{t:.1f}' for t in warm)} |\n"
        f"| same command with --method pca (no UMAP) | {q:.1f} s | "
        f"{', '.join(f'{t:.1f}' for t in pca)} |\n\n"
        f"**cold / warm = {c / w:.2f}×**; numba index files after a cold run: {files}; "
        "load average at end " + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + ".\n"
    )
    (args.out / "umap_cold.json").write_text(json.dumps(res, indent=1))
    (args.out / "umap_cold.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
