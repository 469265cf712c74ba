"""A saved synthetic atlas of 10k / 100k / 1M points: the time to write it
(``bench.synthetic_atlas``, the app's own ``atlas.save``), the time to reopen it as the app's "Open the folder" does
(``atlas.load_saved``, then the outputs the handler builds from it), the folder's size, and the
peak RSS of each step, each in a fresh process.

    python -m bench.atlas_million [--out DIR] [--sizes 10000 100000 1000000] [--atlases DIR]

Writes ``results.md`` and ``results.json`` to ``--out`` (default ``bench/results/atlas_million``);
the atlas folders go to ``--atlases`` (default a temporary folder, removed afterwards unless
``--keep``). Past 50,000 points the neighbour lists come from the approximate index and the
metrics from a stratified sample of 20,000; the recall the open atlas reports is recorded.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import RESULTS, cpu_name

SIZES = (10_000, 100_000, 1_000_000)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def _folder_size(folder: Path) -> tuple[int, int]:
    total, count = 0, 0
    for root, _, names in os.walk(folder):
        for name in names:
            total += os.stat(os.path.join(root, name)).st_size
            count += 1
    return total, count


def step_write(n: int, folder: Path) -> dict:
    """Build the synthetic atlas of n points and save it (in this process)."""
    from bench import synthetic_atlas
    from explorer import atlas

    t0 = time.perf_counter()
    a = synthetic_atlas.synthetic_atlas(n)
    t1 = time.perf_counter()
    atlas.save(a, folder, "pca")
    t2 = time.perf_counter()
    size, count = _folder_size(folder)
    return {
        "build_s": t1 - t0,
        "save_s": t2 - t1,
        "folder_mb": size / 2**20,
        "files": count,
        "recall": {k: list(v) for k, v in a.neighbour_recall.items()},
        "rss_mb": _rss_mb(),
    }


def step_open(folder: Path) -> dict:
    """Reopen the folder as the app's "Open the folder" does (in this process)."""
    t0 = time.perf_counter()
    from explorer import atlas
    from explorer.ui.atlas import handlers, views

    t1 = time.perf_counter()
    a, method = atlas.load_saved(folder)
    t2 = time.perf_counter()
    table = atlas.metrics_table(a, method)
    similar = atlas.evidence.similarity_table(a)
    t3 = time.perf_counter()
    outputs = handlers._atlas_outputs(a, method, views.reopened_note(a.reopened))
    t4 = time.perf_counter()
    return {
        "import_s": t1 - t0,
        "load_saved_s": t2 - t1,
        "tables_s": t3 - t2,
        "outputs_s": t4 - t3,
        "recomputed": list(a.reopened.recomputed),
        "thumbs_checked": a.reopened.thumbs_checked,
        "sample": str(table["sample"].iloc[0]),
        "similarity_rows": len(similar),
        "status": str(outputs[3]),
        "rss_mb": _rss_mb(),
    }


def _child(args: list[str]) -> dict:
    cmd = [sys.executable, "-m", "bench.atlas_million", "--child", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        return {"error": (done.stderr or done.stdout)[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _markdown(rows: list[dict], when: str) -> str:
    lines = [
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{when}.",
        "",
        "| points | build (s) | save (s) | folder (MB) | files | write RSS (MB) | load_saved (s) "
        "| tables (s) | handler outputs (s) | open RSS (MB) | recall@10 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        w, o = r["write"], r["open"]
        if "error" in w or "error" in o:
            lines.append(f"| {r['n']:,} | failed: {(w.get('error') or o.get('error'))[-200:]!r} |")
            continue
        rec = [v[0] for v in w["recall"].values()]
        recall = f"{min(rec):.4f}–{max(rec):.4f}" if rec else "exact"
        lines.append(
            f"| {r['n']:,} | {w['build_s']:.1f} | {w['save_s']:.1f} | {w['folder_mb']:.0f} | "
            f"{w['files']:,} | {w['rss_mb']:.0f} | {o['load_saved_s']:.1f} | {o['tables_s']:.2f} "
            f"| {o['outputs_s']:.1f} | {o['rss_mb']:.0f} | {recall} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=RESULTS / "atlas_million")
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    p.add_argument("--atlases", type=Path, default=None, help="where the atlas folders go")
    p.add_argument("--keep", action="store_true", help="keep the atlas folders")
    p.add_argument("--child", nargs=3, metavar=("STEP", "N", "FOLDER"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        step, n, folder = args.child
        result = step_write(int(n), Path(folder)) if step == "write" else step_open(Path(folder))
        print(json.dumps(result))
        return
    root = args.atlases or Path(tempfile.mkdtemp(prefix="atlas-million-"))
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    for n in args.sizes:
        folder = root / f"atlas-{n}"
        shutil.rmtree(folder, ignore_errors=True)
        row = {"n": n, "write": _child(["write", str(n), str(folder)])}
        row["open"] = _child(["open", str(n), str(folder)]) if "error" not in row["write"] else {}
        rows.append(row)
        print(json.dumps(row), flush=True)
        (args.out / "results.json").write_text(json.dumps(rows, indent=2))
        (args.out / "results.md").write_text(_markdown(rows, when))
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    if not args.keep and args.atlases is None:
        shutil.rmtree(root, ignore_errors=True)
    print(_markdown(rows, when))


if __name__ == "__main__":
    main()
