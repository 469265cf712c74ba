"""What the app's start-up imports cost: ``import explorer.ui.app`` in a fresh interpreter, as
the app starts it (scikit-learn and scikit-image imported on first use), against the same import
preceded by the two libraries (what every start paid when they were imported at the top):
``python -m bench.startup [--pairs 4]``.

Each pair runs the two commands back to back, in alternating order, so a busy machine slows both
alike; medians of CPU (user + system of the child) and wall are compared. Prints Markdown.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAZY = "import explorer.ui.app"
EAGER = "import sklearn.linear_model, sklearn.model_selection, skimage.metrics, explorer.ui.app"


def run(code: str) -> tuple[float, float]:
    """-> (wall seconds, CPU seconds of the child) for ``python -c code`` from the repository."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4, help="runs of each command (default 4)")
    args = parser.parse_args(argv)
    run(LAZY)  # untimed: .pyc files written, the OS page cache warm for both
    rows: dict[str, list[tuple[float, float]]] = {LAZY: [], EAGER: []}
    for i in range(args.pairs):
        for code in (LAZY, EAGER) if i % 2 == 0 else (EAGER, LAZY):
            rows[code].append(run(code))
    med = {
        c: (statistics.median(w for w, _ in r), statistics.median(u for _, u in r))
        for c, r in rows.items()
    }
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{args.pairs} runs each, alternating, medians"
    )
    print()
    print("| start-up | wall (s) | CPU (s) | CPU × today's |")
    print("|---|---|---|---|")
    base = med[LAZY][1]
    for code, label in (
        (LAZY, "today: `import explorer.ui.app`"),
        (EAGER, "with scikit-learn and scikit-image imported first"),
    ):
        wall, cpu = med[code]
        print(f"| {label} | {wall:.2f} | {cpu:.2f} | {cpu / base:.2f}× |")


if __name__ == "__main__":
    main()
