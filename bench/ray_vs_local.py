"""The atlas embedding step, local engine vs Ray engine, on the same set and models. A benchmark,
not a test.

Set: the teaching set (112 images, 128 px). Spaces: TAEF2 with its REAL checkpoint from
../shared/weights/taef2 (``vae:local:taef2``, 64 px, flattened) and the tiny random test CLIP
(``clip:test-clip``, tests/tiny_models.py). No embedding cache, so every row is computed.

Measured in one process, in this order: the local engine (``embeddings.embed`` in this process,
model load included), Ray's start-up (``ray.init`` of a local Ray with ``--cpus`` CPUs) on its own,
then the Ray engine (``RayEngine``: actor start, model load per actor, the batches, gathering).
Also the largest difference between the two engines' rows. Writes ``ray_vs_local.json`` and
``ray_vs_local.md`` to the folder given::

    python -m bench.ray_vs_local [OUT] [--cpus 2] [--repeat 2]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("EXPLORER_PLUGINS", "tests.tiny_models")
os.chdir(ROOT)  # the Ray workers import tests.tiny_models from here

from bench.common import RESULTS, cpu_name  # noqa: E402

TAEF2 = ROOT.parent / "shared" / "weights" / "taef2"
SPACES = ("vae:local:taef2", "clip:test-clip")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "out",
        type=Path,
        nargs="?",
        default=RESULTS / "ray_vs_local",
        help="folder for ray_vs_local.json and .md (default: %(default)s)",
    )
    p.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray (default 2)")
    p.add_argument("--repeat", type=int, default=2, help="Ray runs per space (default 2)")
    args = p.parse_args()
    if not (TAEF2 / "taef2_encoder.pth").exists():
        sys.exit(f"needs the TAEF2 checkpoint in {TAEF2}")

    import numpy as np
    import ray
    import torch

    from explorer.datasets import teaching
    from explorer.spaces import embed as embeddings
    from explorer.spaces.ray_engine import RayEngine

    images = teaching.teaching_set().images
    folder = str(TAEF2)
    rows: list[dict] = []
    local: dict[str, np.ndarray] = {}
    for space in SPACES:
        t = time.perf_counter()
        local[space] = embeddings.embed(space, images, folder=folder, device="cpu")
        rows.append({"space": space, "engine": "local", "run": 1, "s": time.perf_counter() - t})
        print(f"local {space}: {rows[-1]['s']:.2f} s", file=sys.stderr)

    t = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - t
    print(f"ray.init: {startup:.2f} s", file=sys.stderr)
    engine = RayEngine()
    diffs = {}
    for space in SPACES:
        for run in range(1, args.repeat + 1):
            t = time.perf_counter()
            got = embeddings.embed(space, images, folder=folder, device="cpu", runner=engine)
            rows.append({"space": space, "engine": "ray", "run": run, "s": time.perf_counter() - t})
            diffs[space] = float(np.abs(got - local[space]).max())
            print(f"ray {space} run {run}: {rows[-1]['s']:.2f} s", file=sys.stderr)
    ray.shutdown()

    info = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "load_avg_1min_at_end": os.getloadavg()[0],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ray": ray.__version__,
        "images": len(images),
        "ray_cpus": args.cpus,
        "ray_startup_s": startup,
        "max_abs_diff": diffs,
        "runs": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ray_vs_local.json").write_text(json.dumps(info, indent=2))
    lines = [
        "| space | local (s) | Ray, 1st run (s) | Ray, 2nd run (s) | max abs diff |",
        "|---|---|---|---|---|",
    ]
    for space in SPACES:
        loc = next(r["s"] for r in rows if r["space"] == space and r["engine"] == "local")
        ray_s = [r["s"] for r in rows if r["space"] == space and r["engine"] == "ray"]
        later = f"{ray_s[1]:.1f}" if len(ray_s) > 1 else "-"
        lines.append(f"| `{space}` | {loc:.1f} | {ray_s[0]:.1f} | {later} | {diffs[space]:.1e} |")
    lines += [
        "",
        f"Ray start-up (`ray.init`, local, {args.cpus} CPUs): {startup:.1f} s. {len(images)} "
        f"images; {info['cpu']}, {info['cores']} cores, load average {info['load_avg_1min_at_end']:.1f} "
        f"at the end; torch {torch.__version__}, Ray {ray.__version__}.",
    ]
    (args.out / "ray_vs_local.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
