"""The ZeroGPU split off ZeroGPU: the lab round trip and a 112-image atlas before and after, as
ratios within one run: ``python -m bench.zerogpu_split --out DIR [--before REV] [--rounds 3]``.

"Before" is the code at ``REV`` (default: where this branch left main), unpacked with
``git archive`` into a temporary folder; "after" is this working tree. Each round runs one fresh
process per tree, in alternating order (so a busy machine slows both alike), and each process:

* loads the models once and warms up (a first round trip and a first atlas, not timed);
* times ``--inner`` lab round trips of a 512² photo through ``lab.roundtrip`` (TAEF2, real
  weights from ../shared/weights/taef2; its encode cache cleared each time, so every round trip
  encodes and decodes) and ``--inner`` atlases of the teaching set (112 images: TAEF2 VAE at
  64 px, the tiny test CLIP and DINOv2, PCA; no embedding cache, so every image is embedded).

Both trees run with the same environment: CPU, no ``SPACE_ID`` (a local run, as on CPU Basic or
a T4 Space, where ``spaces.GPU`` is the identity). Wall time and the process's CPU time (less
sensitive to other jobs on a shared machine); medians of each process's median, per tree; the
ratio is after / before. Writes DIR/zerogpu_split.json and DIR/zerogpu_split.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("roundtrip_s", "roundtrip_cpu_s", "atlas_s", "atlas_cpu_s")
TAEF2 = ROOT.parent / "shared" / "weights" / "taef2"

CHILD = r"""
import json, os, statistics, sys, time
from explorer import atlas, datasets
from explorer.images import io as imaging
from explorer.lab import actions as lab

folder, inner = sys.argv[1], int(sys.argv[2])
photo = str(imaging.example_images()["astronaut"])
teaching = datasets.teaching_set()
spaces = ["vae:local:taef2", "clip:test-clip", "dino:test-dino"]


def timed(fn):
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t, time.process_time() - c, out


def roundtrip():
    lab._ENCODED.clear()
    return lab.roundtrip(photo, "local:taef2", 512, "square", "mean", 0, folder).psnr


def open_atlas():
    return float(atlas.build(teaching, spaces, "pca", folder, None).embeddings["vae"].sum())


timed(roundtrip), timed(open_atlas)  # models loaded, first passes done
rts = [timed(roundtrip) for _ in range(inner)]
ats = [timed(open_atlas) for _ in range(inner)]
print("RESULT " + json.dumps({
    "roundtrip_s": statistics.median(r[0] for r in rts),
    "roundtrip_cpu_s": statistics.median(r[1] for r in rts),
    "atlas_s": statistics.median(r[0] for r in ats),
    "atlas_cpu_s": statistics.median(r[1] for r in ats),
    "psnr": rts[0][2],
    "vae_sum": ats[0][2],
}))
"""


def unpack(rev: str, into: Path) -> Path:
    """The tree at ``rev`` (git archive) in ``into``."""
    archive = into / "before.tar"
    subprocess.run(["git", "archive", "-o", str(archive), rev], cwd=ROOT, check=True)
    tree = into / "before"
    tree.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def run_child(tree: Path, inner: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPACE", "EXPLORER_"))}
    env.update(EXPLORER_PLUGINS="tests.tiny_models", PYTHONPATH=str(tree), HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(TAEF2), str(inner)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{tree}: {done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--before", default=None, help="git revision (default: merge-base with main)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--inner", type=int, default=3)
    args = parser.parse_args()
    if not (TAEF2 / "taef2_encoder.pth").exists():
        sys.exit(f"needs the TAEF2 checkpoint in {TAEF2}")
    from bench.atlas_scale import machine_info

    rev = (
        args.before
        or subprocess.run(
            ["git", "merge-base", "HEAD", "main"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    after_rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    info = machine_info("cpu")
    start = time.time()
    results: dict[str, list[dict]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"before": unpack(rev, Path(tmp)), "after": ROOT}
        for r in range(args.rounds):
            order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
            for name in order:
                out = run_child(trees[name], args.inner)
                results[name].append(out)
                print(f"round {r + 1} {name}: {out}", flush=True)
    med = {
        name: {k: statistics.median(o[k] for o in runs) for k in KEYS}
        for name, runs in results.items()
    }
    same = all(
        results["before"][0][k] == results["after"][0][k] for k in ("psnr", "vae_sum")
    )  # the same numbers came out of both
    load_end = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    report = {
        "before": rev,
        "after": after_rev,
        "rounds": args.rounds,
        "inner": args.inner,
        "machine": dict(info),
        "load_average_end": load_end,
        "wall_s": round(time.time() - start),
        "results": results,
        "medians": med,
        "ratios": {k: med["after"][k] / med["before"][k] for k in KEYS},
        "same_outputs": same,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "zerogpu_split.json").write_text(json.dumps(report, indent=2))
    rows = [
        "| | before (" + rev[:7] + ") | after (" + after_rev + ") | after / before |",
        "|---|---|---|---|",
    ]
    for key, label in (
        ("roundtrip_s", "lab round trip, 512², TAEF2: wall (s)"),
        ("roundtrip_cpu_s", "lab round trip: CPU of the process (s)"),
        ("atlas_s", "teaching-set atlas, 112 images, 3 spaces, PCA: wall (s)"),
        ("atlas_cpu_s", "teaching-set atlas: CPU of the process (s)"),
    ):
        b, a = med["before"][key], med["after"][key]
        rows.append(f"| {label} | {b:.3f} | {a:.3f} | **{a / b:.3f}×** |")
    md = "\n".join(
        [
            "|  |  |",
            "|---|---|",
            *[f"| {k} | {v} |" for k, v in info],
            f"| load average at end | {load_end} |",
            "",
            *rows,
            "",
            f"{args.rounds} rounds × {args.inner} timed runs per process (medians), "
            f"{report['wall_s']} s in all; the same PSNR and VAE rows before and after: {same}.",
        ]
    )
    (args.out / "zerogpu_split.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
