"""From JPEG files to embeddings on a GPU, against the model alone: ``python -m bench.gpu_e2e
--out DIR [--n 2000] [--batch 256] [--smoke]`` (``bench/gpu.sh`` runs it first).

Writes ``n`` JPEG files of photo sizes (640×480, 500×375, 1024×768, ... in class folders), then
for CLIP ViT-B/32 and DINOv2-small (explicit configs, seeded random weights, the app's
``Embedder`` with the models' real preprocessing parameters) measures, in one run:

* **model only**: the forward pass at ``batch`` on pixel values already on the device (fp16);
* **end to end**: ``datasets.from_folder`` (parallel decode, downsize, content keys) then
  ``Embedder.embed_images`` at ``batch`` (the fast path: pinned uint8, resize on the device, the
  next batch packed while the GPU runs), with the split between reading and embedding;
* **before**: the same embedding through the processor (``recipe = None``, Pillow's resize
  one image at a time), and the reading on one thread (as the loaders read before);
* **equivalence** at the app's dtype: per-image cosine of the fast path against processor +
  model, the pixel values' largest difference, and how many of each image's 10 nearest
  neighbours agree.

Writes DIR/e2e.json and DIR/e2e.md. ``--smoke``: 64 small files, tiny models (runs on a CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from bench.common import RESULTS

SIZES = [(640, 480), (480, 640), (500, 375), (375, 500), (800, 600), (512, 512), (1024, 768)]
"""(width, height) of the files, in turn: common photo sizes, most above the loaders' 512 px."""


def write_jpegs(folder: Path, n: int, smoke: bool) -> list[Path]:
    """``n`` JPEG files (quality 90) in 10 class folders: smooth random colour fields with
    noise, like photos to a decoder and a resize."""
    from PIL import Image

    from explorer.core import pool

    sizes = [(64, 48), (48, 64), (80, 60)] if smoke else SIZES

    def one(i: int) -> Path:
        rng = np.random.default_rng(i)
        w, h = sizes[i % len(sizes)]
        base = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize(
            (w, h), Image.Resampling.BICUBIC
        )
        noise = rng.integers(-12, 13, (h, w, 3))
        im = Image.fromarray(np.clip(np.asarray(base, np.int16) + noise, 0, 255).astype(np.uint8))
        path = folder / f"class{i % 10}" / f"{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        im.save(path, "JPEG", quality=90)
        return path

    return list(pool.imap_ordered(one, range(n)))


def _sync(torch, dev) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _models(device, smoke: bool):
    import torch

    from bench.atlas_scale import clip_b32, dinov2_small

    out = {"CLIP ViT-B/32": clip_b32(device), "DINOv2-small": dinov2_small(device)}
    if smoke:  # two layers: the same code paths, a CPU-sized cost
        for emb in out.values():
            net = emb.model.net if hasattr(emb.model, "net") else emb.model
            layers = net.vision_model.encoder.layers if hasattr(net, "vision_model") else None
            layers = layers if layers is not None else net.encoder.layer
            del layers[2:]
    torch.manual_seed(0)
    return out


def _forward(emb, px):
    net = emb.model.net if hasattr(emb.model, "net") else emb.model
    out = net(pixel_values=px)
    return out.image_embeds if emb.family == "clip" else out.last_hidden_state[:, 0]


def model_only(torch, emb, batch: int, repeats: int) -> dict:
    """The forward pass alone at ``batch`` on random pixel values on the device."""
    dev = emb.device
    px = torch.randn(batch, 3, 224, 224, device=dev, dtype=emb.dtype)
    times = []
    with torch.no_grad():
        for r in range(repeats + 2):
            _sync(torch, dev)
            t = time.perf_counter()
            _forward(emb, px)
            _sync(torch, dev)
            if r >= 2:
                times.append(time.perf_counter() - t)
    return {"images_per_s": batch / statistics.median(times), "times_s": times}


def read(folder: Path, one_thread: bool) -> tuple[list, float]:
    """The files -> the set's images (``datasets.from_folder``: decode, downsize, content keys)
    and the seconds it took; ``one_thread``: as the loaders read before (no pool)."""
    from explorer import datasets
    from explorer.core import pool

    real_workers = pool.workers
    try:
        if one_thread:
            pool.workers = lambda limit=pool.MAX_WORKERS: 1
        t = time.perf_counter()
        image_set = datasets.from_folder(folder, max_images=100_000)
        return image_set.images, time.perf_counter() - t
    finally:
        pool.workers = real_workers


def embed(torch, emb, images: list, batch: int, fast: bool) -> tuple[np.ndarray, float]:
    """``Embedder.embed_images`` at ``batch`` -> rows and seconds; ``fast=False``: through the
    processor (``recipe = None``)."""
    recipe = emb.recipe
    try:
        if not fast:
            emb.recipe = None
        _sync(torch, emb.device)
        t = time.perf_counter()
        rows = emb.embed_images(images, batch_size=batch)
        _sync(torch, emb.device)
        return rows, time.perf_counter() - t
    finally:
        emb.recipe = recipe


def equivalence(torch, emb, images: list, fast_rows: np.ndarray) -> dict:
    """The fast path against processor + model on the same images, at the app's dtype."""
    from explorer.analysis import metrics
    from explorer.images import preprocess

    px_ref = emb.processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        ref = torch.cat(
            [
                _forward(emb, px_ref[i : i + 256].to(emb.device, emb.dtype)).float().cpu()
                for i in range(0, len(images), 256)
            ]
        )
    ref = torch.nn.functional.normalize(ref, dim=-1).numpy()
    cos = (fast_rows * ref).sum(axis=1)
    k = min(10, len(images) - 1)
    fi, _ = metrics.neighbour_lists(fast_rows, k)
    ri, _ = metrics.neighbour_lists(ref, k)
    same = np.mean([len(set(a) & set(b)) / k for a, b in zip(fi, ri, strict=True)])
    identical = float(np.mean([list(a) == list(b) for a, b in zip(fi, ri, strict=True)]))
    sub = images[:64]
    if emb.device.type == "cuda":
        px = preprocess.pixel_values_on(
            preprocess.pack(sub, emb.recipe), emb.recipe, emb.device, torch.float32
        )
    else:
        px = preprocess.pixel_values(sub, emb.recipe)
    return {
        "cosine_min": float(cos.min()),
        "cosine_median": float(np.median(cos)),
        "pixel_values_max_abs_diff": float((px.cpu() - px_ref[:64]).abs().max()),
        "knn10_overlap": float(same),
        "knn10_lists_identical": identical,
        "images": len(images),
    }


def machine(torch, dev) -> dict:
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "device": dev.type,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average": ", ".join(f"{v:.1f}" for v in os.getloadavg()),
    }
    if dev.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(dev)
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    return info


def markdown(info: dict, results: dict, batch: int) -> str:
    lines = [
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in info.items()],
        "",
        f"Batch {batch}; {results['files']} JPEG files ({results['bytes'] / 2**20:.0f} MiB), "
        f"written in {results['write_s']:.1f} s. Rates in images/s.",
        "",
        "| model | model only | end to end (files → rows) | e2e / model | reading the files | "
        "embedding decoded images | before: embedding | before: reading (1 thread) | "
        "before: e2e | e2e speed-up | rows fast vs before, max abs diff |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results["models"].items():
        fast, old = r["fast"], r["before"]
        lines.append(
            f"| {name} | {r['model_only']['images_per_s']:,.0f} | {fast['images_per_s']:,.0f} | "
            f"**{fast['images_per_s'] / r['model_only']['images_per_s']:.0%}** | "
            f"{fast['read_images_per_s']:,.0f} | {fast['embed_images_per_s']:,.0f} | "
            f"{old['embed_images_per_s']:,.0f} | {old['read_images_per_s']:,.0f} | "
            f"{old['images_per_s']:,.0f} | {fast['images_per_s'] / old['images_per_s']:.1f}× | "
            f"{r['fast_vs_before_max_abs_diff']:.1e} |"
        )
    lines += [
        "",
        "Equivalence with processor + model on the same images (the app's dtype):",
        "",
        "| model | images | cosine min | cosine median | pixel values max abs diff | "
        "10-NN overlap | identical 10-NN lists |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results["models"].items():
        e = r["equivalence"]
        lines.append(
            f"| {name} | {e['images']} | {e['cosine_min']:.5f} | {e['cosine_median']:.5f} | "
            f"{e['pixel_values_max_abs_diff']:.1e} | {e['knn10_overlap']:.4f} | "
            f"{e['knn10_lists_identical']:.1%} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=RESULTS / "gpu_e2e", help="default: %(default)s")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--device", default=None)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--files", type=Path, default=None, help="where to write the JPEGs")
    args = ap.parse_args()
    import torch

    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    n, batch = (64, 16) if args.smoke else (args.n, args.batch)
    args.out.mkdir(parents=True, exist_ok=True)
    folder = args.files or (args.out / "jpegs")
    info = machine(torch, dev)
    t = time.perf_counter()
    paths = write_jpegs(folder, n, args.smoke)
    results = {
        "files": len(paths),
        "bytes": sum(p.stat().st_size for p in paths),
        "write_s": time.perf_counter() - t,
        "models": {},
    }
    print(f"wrote {len(paths)} files in {results['write_s']:.1f} s", flush=True)
    images, read_fast = read(folder, one_thread=False)
    images, read_fast = read(folder, one_thread=False)  # the second read: a warm page cache
    _, read_old = read(folder, one_thread=True)
    results["read_s"] = {"threads": read_fast, "one_thread": read_old}
    print(f"read: {read_fast:.2f} s on threads, {read_old:.2f} s on one", flush=True)
    m = len(images)
    for name, emb in _models(dev, args.smoke).items():
        print(f"== {name}", flush=True)
        embed(torch, emb, images[:batch], batch, True)  # warm-ups: CUDA, cuBLAS, both paths
        embed(torch, emb, images[:batch], batch, False)
        r = {"model_only": model_only(torch, emb, batch, 3 if args.smoke else 10)}
        rows, embed_fast = embed(torch, emb, images, batch, True)
        old_rows, embed_old = embed(torch, emb, images, batch, False)
        r["fast"] = {
            "read_s": read_fast,
            "embed_s": embed_fast,
            "images_per_s": m / (read_fast + embed_fast),
            "read_images_per_s": m / read_fast,
            "embed_images_per_s": m / embed_fast,
        }
        r["before"] = {
            "read_s": read_old,
            "embed_s": embed_old,
            "images_per_s": m / (read_old + embed_old),
            "read_images_per_s": m / read_old,
            "embed_images_per_s": m / embed_old,
        }
        r["fast_vs_before_max_abs_diff"] = float(np.abs(rows - old_rows).max())
        r["equivalence"] = equivalence(torch, emb, images[:512], rows[:512])
        results["models"][name] = r
        print(json.dumps(r, default=str)[:800], flush=True)
        (args.out / "e2e.json").write_text(json.dumps({"info": info, **results}, indent=1))
    md = markdown(info, results, batch)
    (args.out / "e2e.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
