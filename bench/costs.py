"""The costs around the models, measured as ratios within one run:
``python -m bench.costs [--out DIR] [--parts reopen,metrics,lab] [--n 2000] [--points 10000]``.

* reopen: a set read from a folder of JPEG files, first embed (TAEF2 VAE, 64 px; measured on
  ``--cold`` images, extrapolated) vs re-opening it from the embedding cache: the keys (SHA-256 of
  the file bytes, ``datasets.file_key``; the decoded pixels' hash shown beside it) + reading the
  rows back, through the same ``EmbeddingCache`` object (the app's) and a new one.
* metrics: per space (CLIP 512-d, DINOv2 384-d, TAEF2 2048-d widths; synthetic clusters), UMAP
  alone vs UMAP + ``space_metrics``, in that order as the atlas runs them (the metrics reuse the
  UMAP graph's neighbours); also the metrics with the shared lists forgotten first.
* lab: one 512² round trip through ``lab.roundtrip`` (TAEF2, real weights; its encode cache
  cleared) vs the bare module's ``decoder(encoder(x))`` on the same tensor, interleaved.

Writes DIR/costs.json and DIR/costs.md (DIR: bench/results/costs unless --out says).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.atlas_scale import distinct_images, image_pool, machine_info, synthetic_embeddings
from bench.common import RESULTS
from bench.vs_reference import TAEF2, ab


def reopen(args) -> dict:
    from explorer import datasets
    from explorer.models import registry
    from explorer.models.vae import load_vae
    from explorer.spaces import embed as embeddings
    from explorer.spaces.cache import EmbeddingCache

    folder = str(args.taef2)
    space = "vae:local:taef2"
    load_vae("local:taef2", folder)  # once per process, as in the app
    key = embeddings.vae_cache_key(registry.resolve("local:taef2", folder), 64, "flatten")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "set"
        print(f"  reopen: writing {args.n} JPEG files", flush=True)
        for i, im in enumerate(distinct_images(image_pool(256), args.n)):
            d = root / f"class{i % 10}"
            d.mkdir(parents=True, exist_ok=True)
            im.save(d / f"{i:05d}.jpg", quality=90)
        t0 = time.perf_counter()
        s = datasets.from_folder(root, max_images=args.n)
        t_read = time.perf_counter() - t0
        files = [root / p for p in s.paths]
        data = [f.read_bytes() for f in files]
        t0 = time.perf_counter()
        keys = [datasets.file_key(b) for b in data]
        t_keys = time.perf_counter() - t0
        assert keys == s.keys
        t0 = time.perf_counter()
        [embeddings.image_hash(im) for im in s.images]
        t_pixels = time.perf_counter() - t0
        cache = EmbeddingCache(Path(tmp) / "cache")
        cold_n = min(args.cold, len(s))
        print(f"  reopen: cold embed of {cold_n} images", flush=True)
        t0 = time.perf_counter()
        cold = embeddings.embed(space, s.images[:cold_n], keys[:cold_n], cache, folder=folder)
        t_cold = (time.perf_counter() - t0) / cold_n * len(s)
        cache.put_many(key, keys, np.resize(cold, (len(s), cold.shape[1])))
        same = ab(
            {
                "same": lambda: embeddings.embed(space, s.images, keys, cache, folder=folder),
                "new": lambda: embeddings.embed(
                    space, s.images, keys, EmbeddingCache(cache.root), folder=folder
                ),
            },
            args.repeats,
        )
    t_same, t_new = same["same"]["median_s"], same["new"]["median_s"]
    return {
        "n": len(s),
        "read_set_s": t_read,
        "keys_s": t_keys,
        "pixel_hash_s": t_pixels,
        "cold_s": t_cold,
        "cold_measured_on": cold_n,
        "warm_same_s": t_same,
        "warm_new_s": t_new,
        "ratio_same": t_cold / (t_keys + t_same),
        "ratio_new": t_cold / (t_keys + t_new),
        "ratio_old_keys": t_cold / (t_pixels + t_same),
    }


def metrics_part(args) -> list[dict]:
    from explorer.analysis import knn, metrics, projection

    projection.warm_up_umap(background=False)
    rows = []
    for name, d in (("CLIP ViT-B/32", 512), ("DINOv2-small", 384), ("TAEF2 VAE, 64 px", 2048)):
        x, labels = synthetic_embeddings(args.points, d)
        print(f"  metrics: {name} {args.points} x {d}", flush=True)
        knn._MEMO.clear()
        t0 = time.perf_counter()
        xy = projection.project(x, "umap", seed=0)
        t_umap = time.perf_counter() - t0
        t0 = time.perf_counter()
        m = metrics.space_metrics(x, xy, labels)
        t_shared = time.perf_counter() - t0
        knn._MEMO.clear()
        t0 = time.perf_counter()
        m2 = metrics.space_metrics(x, xy, labels)
        t_alone = time.perf_counter() - t0
        assert m == m2 or all(np.isclose(m[k], m2[k], equal_nan=True) for k in m)
        # What the wide lists (kept for trustworthiness) add to the pass UMAP's graph needs:
        # the same blocked pass with only the sorted 50 (the old pass) vs with the wide lists,
        # interleaved, 3 rounds each.
        xn = metrics._unit_rows(x)
        passes = ab(
            {
                "narrow": lambda xn=xn: knn._neighbours(xn, knn.MEMO_K),
                "wide": lambda xn=xn: knn._lists(xn, knn.MEMO_K),
            },
            3,
        )
        t_narrow, t_wide = passes["narrow"]["median_s"], passes["wide"]["median_s"]
        rows.append(
            {
                "space": name,
                "dim": d,
                "points": args.points,
                "umap_s": t_umap,
                "metrics_s": t_shared,
                "metrics_unshared_s": t_alone,
                "pass_narrow_s": t_narrow,
                "pass_wide_s": t_wide,
                "metrics": m,
            }
        )
    return rows


def lab_part(args) -> dict:
    import torch
    from PIL import Image

    from explorer.images import io as imaging
    from explorer.lab import actions as lab
    from explorer.models.vae import load_vae

    folder = str(args.taef2)
    vae = load_vae("local:taef2", folder)
    img = image_pool(1, size=512)[0].resize((512, 512), Image.LANCZOS)
    x = imaging.to_tensor(lab.prepare_input(img, 512))
    mod = vae.module

    def app():
        lab._ENCODED.clear()
        return lab.roundtrip(img, "local:taef2", 512, folder=folder)

    def bare():
        with torch.no_grad():
            return mod.decoder(mod.encoder(x))

    res = ab({"app": app, "bare": bare}, args.repeats)
    a, b = res["app"]["median_s"], res["bare"]["median_s"]
    return {
        "app_s": a,
        "bare_s": b,
        "ratio": a / b,
        "app_times": res["app"]["times"],
        "bare_times": res["bare"]["times"],
    }


def markdown(out: dict, info, args) -> str:
    lines = ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in info] + [""]
    if "reopen" in out:
        r = out["reopen"]
        lines += [
            f"**Re-opening a cached set** ({r['n']:,} JPEG files, TAEF2 VAE 64 px; first embed "
            f"measured on {r['cold_measured_on']} images and extrapolated):",
            "",
            "| first embed | keys: file bytes | (old keys: decoded pixels) | read back, same "
            "cache object | read back, new object | first / (keys + same) | first / (keys + new) "
            "| (old: first / (pixels + same)) |",
            "|---|---|---|---|---|---|---|---|",
            f"| {r['cold_s']:.1f} s | {r['keys_s'] * 1e3:.0f} ms | {r['pixel_hash_s'] * 1e3:.0f} ms "
            f"| {r['warm_same_s'] * 1e3:.0f} ms | {r['warm_new_s'] * 1e3:.0f} ms | "
            f"**{r['ratio_same']:,.0f}×** | {r['ratio_new']:,.0f}× | {r['ratio_old_keys']:,.0f}× |",
            "",
            f"Reading the set from its folder (decode + downsize + keys): {r['read_set_s']:.1f} s.",
            "",
        ]
    if "metrics" in out:
        rows = out["metrics"]
        u = sum(r["umap_s"] for r in rows)
        m = sum(r["metrics_s"] for r in rows)
        m2 = sum(r["metrics_unshared_s"] for r in rows)
        extra = sum(r["pass_wide_s"] - r["pass_narrow_s"] for r in rows)

        def row(r: dict) -> str:
            add = r["pass_wide_s"] - r["pass_narrow_s"]
            return (
                f"{r['umap_s']:.2f} s | {r['metrics_s']:.2f} s | {r['metrics_unshared_s']:.2f} s "
                f"| {r['pass_narrow_s']:.2f} s / {r['pass_wide_s']:.2f} s | "
                f"**{(r['umap_s'] + r['metrics_s']) / r['umap_s']:.3f}×** | "
                f"{(r['umap_s'] + r['metrics_s']) / (r['umap_s'] - add):.3f}× |"
            )

        lines += (
            [
                f"**Metrics beside UMAP** ({rows[0]['points']:,} points, synthetic clusters):",
                "",
                "| space | dim | UMAP | metrics after UMAP (shared neighbours) | metrics alone "
                "(nothing shared) | neighbour pass: sorted 50 only / with the wide lists | "
                "(UMAP + metrics) / UMAP | the same over UMAP without the wide lists |",
                "|---|---|---|---|---|---|---|---|",
            ]
            + [f"| {r['space']} | {r['dim']} | " + row(r) for r in rows]
            + [
                f"| **all three** | | {u:.2f} s | {m:.2f} s | {m2:.2f} s | +{extra:.2f} s | "
                f"**{(u + m) / u:.3f}×** | {(u + m) / (u - extra):.3f}× |",
                "",
            ]
        )
    if "lab" in out:
        r = out["lab"]
        lines += [
            "**One 512² lab round trip** (TAEF2, real weights):",
            "",
            "| `lab.roundtrip` (prepare, encode, decode, PSNR, SSIM, error map) | bare "
            "`decoder(encoder(x))` | ratio |",
            "|---|---|---|",
            f"| {r['app_s']:.3f} s | {r['bare_s']:.3f} s | **{r['ratio']:.3f}×** |",
            "",
        ]
    lines.append("Load average at end: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + ".")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=RESULTS / "costs", help="default: %(default)s")
    p.add_argument("--parts", default="reopen,metrics,lab")
    p.add_argument("--n", type=int, default=2000, help="images in the re-open set")
    p.add_argument("--cold", type=int, default=200, help="images the first embed is timed on")
    p.add_argument("--points", type=int, default=10000, help="points for the metrics part")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--taef2", type=Path, default=TAEF2)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    info = machine_info("cpu")
    out: dict = {}
    for part, fn in (("reopen", reopen), ("metrics", metrics_part), ("lab", lab_part)):
        if part in args.parts.split(","):
            t0 = time.perf_counter()
            out[part] = fn(args)
            print(f"{part} done in {time.perf_counter() - t0:.0f} s", flush=True)
    md = markdown(out, info, args)
    (args.out / "costs.md").write_text(md)
    (args.out / "costs.json").write_text(
        json.dumps({"machine": dict(info), **out}, indent=1, default=float)
    )
    print(md)


if __name__ == "__main__":
    main()
