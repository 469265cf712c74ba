"""Time the autoencoder playground's trainings (ae, vae, vq with default configs) on this machine.

    python -m bench.playground [--repeats 3] [--epochs N]

Prints a markdown table: wall-clock seconds per model (median and min of the repeats), CPU
seconds of this process (which, unlike wall time, barely moves when other work shares the
machine) and the same for all three in a row (what the playground tab costs on a cold cache),
with the machine it ran on and its load average. Each run
trains for real (no cache). The first training in a process pays one-off warm-up (imports,
torch's first backward), so one untimed 1-epoch run goes first.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import replace

import torch

from bench.common import cpu_name
from explorer.playground import digits as pg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="default: TrainConfig's")
    args = parser.parse_args()

    configs = [pg.TrainConfig(model=m) for m in pg.MODELS]
    if args.epochs is not None:
        configs = [replace(c, epochs=args.epochs) for c in configs]
    pg.train(replace(configs[0], epochs=1))  # warm-up, untimed

    names = [c.model for c in configs] + ["all three"]
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.repeats):
        wall_all, cpu_all = time.perf_counter(), time.process_time()
        for cfg in configs:
            start, start_cpu = time.perf_counter(), time.process_time()
            pg.train(cfg)
            wall[cfg.model].append(time.perf_counter() - start)
            cpu[cfg.model].append(time.process_time() - start_cpu)
        wall["all three"].append(time.perf_counter() - wall_all)
        cpu["all three"].append(time.process_time() - cpu_all)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cfg = configs[0]
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; torch {torch.__version__}, ", end="")
    print(f"Python {platform.python_version()}; load average at the end: {load:.1f}")
    print(
        f"Config: epochs {cfg.epochs}, batch {cfg.batch_size} ({cfg.steps} Adam steps), "
        f"hidden {cfg.hidden}, K {configs[2].codebook_size}; 1 torch thread; "
        f"{args.repeats} repeats\n"
    )
    print("| training | wall s (median) | wall s (min) | CPU s (median) | CPU ms per step |")
    print("|---|---:|---:|---:|---:|")
    for name in names:
        steps = cfg.steps * (3 if name == "all three" else 1)
        median, cpu_median = statistics.median(wall[name]), statistics.median(cpu[name])
        print(
            f"| {name} | {median:.2f} | {min(wall[name]):.2f} | {cpu_median:.2f} "
            f"| {1000 * cpu_median / steps:.2f} |"
        )


if __name__ == "__main__":
    main()
