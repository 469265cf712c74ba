"""Memory held by open atlases: ``python -m bench.atlas_memory [--sessions 20]
[--images 1000]`` opens one uploaded set per session, each its own zip of distinct 512 px JPEG
photos, through the app's own path (``datasets.from_zip`` -> ``atlas.build`` in the VAE, CLIP and
DINOv2 test spaces -> the atlas store), two at a time as the app's queue runs them (public mode's
limits, the store's default cap). It samples this process's RSS every 0.1 s and reports the idle
footprint, the peak, the store's own figure and the goal: peak <= (cap + idle) x 1.25.

Prints Markdown for BENCHMARKS.md on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.load import MemorySampler, machine

SPACES = ["vae:test-tiny", "clip:test-clip", "dino:test-dino"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def photo_zip(path: Path, n: int, seed: int) -> None:
    """``n`` distinct 512 x 384 JPEGs (smooth gradients and noise: photo-like sizes) in 5 classes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:384, 0:512].astype(np.float32)
    grain = rng.normal(0, 12, (384, 512, 3)).astype(np.float32)  # one per set, shifted per image
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for i in range(n):
            a, b, c = rng.uniform(0.2, 1.0, 3)
            arr = np.stack([xx * a / 2, yy * b / 1.5, (xx + yy) * c / 4], -1)
            arr += np.roll(grain, (i * 7) % 384, axis=0)
            arr = np.clip(arr, 0, 255).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, "JPEG", quality=85)
            z.writestr(f"set/class{i % 5}/{i:04d}.jpg", buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2, help="builds at once (the app's concurrency)")
    args = ap.parse_args(argv)
    os.environ["EXPLORER_PUBLIC"] = "1"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="explorer-atlas-memory-") as tmp:
        folder = Path(tmp)
        os.environ["EXPLORER_CACHE_DIR"] = str(folder / "cache")
        from explorer import atlas, datasets
        from explorer.core import memory, settings
        from explorer.spaces import cache
        from tests import tiny_models

        tiny_models.register()
        zips = []
        for s in range(args.sessions):
            log(f"writing set {s + 1}/{args.sessions}")
            zips.append(folder / f"s{s:02d}.zip")
            photo_zip(zips[-1], args.images, seed=s)
        warm = folder / "warm.zip"
        photo_zip(warm, 12, seed=999)
        atlas.build(datasets.from_zip(warm), SPACES, "pca", None, cache.shared())  # models loaded
        memory.release_freed(collect=True)
        sampler = MemorySampler(os.getpid(), interval=0.1)
        idle = sampler.rss()
        store_peak = [0]
        lock = threading.Lock()

        def open_one(path: Path) -> float:
            t0 = time.perf_counter()
            a = atlas.build(datasets.from_zip(path), SPACES, "pca", None, cache.shared())
            atlas.STORE.put(a)
            with lock:
                store_peak[0] = max(store_peak[0], atlas.STORE.nbytes)
            log(f"  opened {path.name}: store {atlas.STORE.nbytes / 2**20:.0f} MiB")
            return time.perf_counter() - t0

        sampler.start()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.workers) as pool:
            times = list(pool.map(open_one, zips))
        wall = time.perf_counter() - t0
        memory.release_freed(collect=True)
        time.sleep(1.0)
        peak = sampler.stop()
        after = sampler.rss()
        cap = settings.get().atlas_memory_mb * 2**20
        goal = (cap + idle) * 1.25
        print(
            f"Command: `python -m bench.atlas_memory --sessions {args.sessions} --images {args.images}`\n"
        )
        print(f"Machine: {machine()}.\n")
        print(
            f"{args.sessions} sets of {args.images:,} distinct 512 x 384 JPEGs, opened "
            f"{args.workers} at a time in the VAE/CLIP/DINOv2 test spaces (PCA), public mode, "
            f"store cap {cap / 2**20:,.0f} MiB: {wall:.0f} s "
            f"({np.median(times):.1f} s a set, median).\n"
        )
        print("| | MiB |\n|---|---:|")
        print(f"| RSS idle (models loaded, before the first set) | {idle / 2**20:,.0f} |")
        print(f"| **RSS peak** | **{peak / 2**20:,.0f}** |")
        print(f"| RSS after (all {len(atlas.STORE)} atlases still open) | {after / 2**20:,.0f} |")
        print(f"| the store's own figure at its largest | {store_peak[0] / 2**20:,.1f} |")
        print(f"| the goal: (cap + idle) x 1.25 | {goal / 2**20:,.0f} |")
        met = "met" if peak <= goal else "NOT met"
        print(f"\nPeak / goal: {peak / goal:.2f} ({met}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
