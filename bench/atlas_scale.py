"""How the semantic atlas scales to 1k and 10k images on this machine: embedding, projection,
metrics and the embedding cache, side by side, as ratios. A benchmark, not a test.

Timing depends on the architecture, not the weights, so models whose weights cannot be
downloaded here are built from their published configs with random weights:

* CLIP ViT-B/32 vision tower (``CLIPVisionModelWithProjection``, the vision config of
  openai/clip-vit-base-patch32) behind the project's own ``embedders.Embedder`` (processor with
  that model's preprocessing values, batching, L2 normalisation);
* DINOv2-small (``Dinov2Model``, the config of facebook/dinov2-small, 224 px crops);
* the full SD VAE encoder (``AutoencoderKL``, sd-vae-ft-mse config) behind ``vae.VAE``;
* TAEF2 with its REAL checkpoint from ../shared/weights/taef2 through ``vae.load_vae`` and
  ``embeddings.vae_embedding`` (the project's CPU default family), at the default 64 px.

Embedding times for 1k and 10k images are EXTRAPOLATED from a measured sample (a few hundred
images per model); projections (PCA, UMAP, t-SNE), ``metrics.space_metrics`` and the embedding
cache are MEASURED at 1k and 10k points (random clustered embeddings of each space's width).
Prints Markdown tables (for BENCHMARKS.md) on stdout, progress on stderr.

    python -m bench.atlas_scale             # the full run (~15 min on 2 busy CPU cores)
    python -m bench.atlas_scale --quick     # a ~1 minute smoke run (1k only, small samples)
    python -m bench.atlas_scale --help      # sample sizes, t-SNE cap, cold numba cache, ...
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing as mp
import os
import platform
import queue
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from bench.common import cpu_name, sd_vae_module

TAEF2 = Path(__file__).resolve().parents[2] / "shared" / "weights" / "taef2"
N_CLASSES = 15  # like the bundled set
# Embedding widths the atlas stores per space: CLIP B/32 projection, DINOv2-S CLS token, and the
# flattened TAEF2 latent at 64 px (32 channels x 8 x 8).
SPACES = (("CLIP ViT-B/32", 512), ("DINOv2-small", 384), ("TAEF2 VAE, 64 px", 2048))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def noop(_f: float, _d: str) -> None:
    pass


def fmt_s(t: float | None) -> str:
    if t is None:
        return "not run"
    if t < 0.01:
        return f"{t * 1000:.2f} ms"
    if t < 1:
        return f"{t * 1000:.0f} ms"
    if t < 120:
        return f"{t:.2f} s"
    return f"{t / 60:.1f} min"


def fmt_x(r: float | None) -> str:
    if r is None:
        return "–"
    return f"{r:,.0f}×" if r >= 100 else f"{r:.1f}×"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- machine


def machine_info(device: str) -> list[tuple[str, str]]:
    import numpy as np
    import torch

    cpu = cpu_name()
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return [
        ("date", datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")),
        ("CPU", f"{cpu} ({os.cpu_count()} logical cores, {usable} usable by this process)"),
        ("RAM", ram),
        (
            "OS / Python",
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        ),
        (
            "torch",
            f"{torch.__version__}, {torch.get_num_threads()} intra-op threads, device {device}",
        ),
        ("numpy", np.__version__),
        ("load average at start (1/5/15 min)", load),
    ]


# --------------------------------------------------------------------------- images


def image_pool(n: int, size: int = 224):
    """``n`` varied RGB images, longer side ``size``: the bundled set's photos with seeded
    augmentations (crops, flips, hue, blur, brightness, colour), seeds added until ``n``."""
    from explorer.datasets import augmented_set

    out: list = []
    seed = 0
    while len(out) < n:
        out += augmented_set(n_aug=24, seed=seed, size=size).images
        seed += 1
    return out[:n]


def distinct_images(pool: list, n: int) -> list:
    """``n`` images with distinct pixels (so distinct cache hashes) cycled from ``pool``:
    mirrored on odd passes, the image's index stamped into its top-left pixel."""
    from PIL import ImageOps

    out = []
    for i in range(n):
        base = pool[i % len(pool)]
        im = ImageOps.mirror(base) if (i // len(pool)) % 2 else base.copy()
        im.putpixel((0, 0), (i & 255, (i >> 8) & 255, (i >> 16) & 255))
        out.append(im)
    return out


# --------------------------------------------------------------------------- models


class _ImageFeatures:
    """``CLIPVisionModelWithProjection`` seen as what ``embedders.Embedder`` calls on a CLIP model:
    ``get_image_features(pixel_values=...).pooler_output`` = the projected image embedding,
    the same computation as ``CLIPModel.get_image_features`` (vision tower + projection)."""

    def __init__(self, net):
        self.net, self.config = net, net.config

    def get_image_features(self, pixel_values):
        return SimpleNamespace(pooler_output=self.net(pixel_values=pixel_values).image_embeds)

    def parameters(self):  # where the embedder sends its inputs (models.device.param_device)
        return self.net.parameters()


def clip_b32(device):
    import torch
    import transformers as tf

    from explorer.models import device as devices
    from explorer.models import embedders, registry

    # the vision_config of openai/clip-vit-base-patch32
    cfg = tf.CLIPVisionConfig(
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        image_size=224,
        patch_size=32,
        projection_dim=512,
        hidden_act="quick_gelu",
    )
    torch.manual_seed(0)
    dtype = devices.embedder_dtype(device)
    net = tf.CLIPVisionModelWithProjection(cfg).to(device, dtype).eval().requires_grad_(False)
    # the preprocessor_config of openai/clip-vit-base-patch32 (CLIP mean/std are the defaults)
    proc = tf.CLIPImageProcessorPil(
        size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}, resample=3
    )
    spec = registry.EmbedderSpec("clip-vit-b32 architecture", "clip", None, "random weights")
    return embedders.Embedder(spec, _ImageFeatures(net), proc, None, device, dtype, "random")


def dinov2_small(device):
    import torch
    import transformers as tf

    from explorer.models import device as devices
    from explorer.models import embedders, registry

    # the config of facebook/dinov2-small (position table for 518 px, interpolated to 224 crops)
    cfg = tf.Dinov2Config(
        hidden_size=384,
        num_hidden_layers=12,
        num_attention_heads=6,
        mlp_ratio=4,
        patch_size=14,
        image_size=518,
    )
    torch.manual_seed(0)
    dtype = devices.embedder_dtype(device)
    net = tf.Dinov2Model(cfg).to(device, dtype).eval().requires_grad_(False)
    # the preprocessor_config of facebook/dinov2-small
    proc = tf.BitImageProcessorPil(
        size={"shortest_edge": 256},
        crop_size={"height": 224, "width": 224},
        resample=3,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
    spec = registry.EmbedderSpec("dinov2-small architecture", "dino", None, "random weights")
    return embedders.Embedder(spec, net, proc, None, device, dtype, "random")


def sd_vae_arch(device):
    import torch

    from explorer.models import device as devices
    from explorer.models import registry
    from explorer.models.vae import VAE

    module = sd_vae_module()
    spec = registry.REGISTRY["sd-vae-ft-mse"]
    dtype = devices.vae_dtype(spec, device)
    module = module.to(device) if dtype == torch.float32 else module.to(device, dtype)
    module = module.eval().requires_grad_(False)
    return VAE(spec, module, device, dtype, 0.18215, 0.0, 4, stochastic=True)


# --------------------------------------------------------------------------- 1. throughput


def throughput(args, device, pool) -> list[dict]:
    """Per-image embedding time of each model on a measured sample (after a warm-up batch)."""
    import torch

    from explorer.models import device as devices
    from explorer.models.vae import load_vae
    from explorer.spaces import embed as embeddings

    entries = []
    if TAEF2.is_dir():
        entries.append(
            (
                "TAEF2 VAE (real weights), 64 px",
                "taef2",
                lambda: load_vae(str(TAEF2), device=device),
                args.vae_sample,
            )
        )
    if not args.no_sd_vae:
        entries.append(
            (
                "SD VAE encoder (sd-vae-ft-mse arch.), 64 px",
                "sd",
                lambda: sd_vae_arch(device),
                args.sd_sample,
            )
        )
    entries += [
        (
            "CLIP ViT-B/32 (arch., random weights), 224 px",
            "clip",
            lambda: clip_b32(device),
            args.sample,
        ),
        (
            "DINOv2-small (arch., random weights), 224 px",
            "dino",
            lambda: dinov2_small(device),
            args.sample,
        ),
    ]
    results = []
    for name, kind, build, n in entries:
        log(f"throughput: building {name}")
        t0 = time.perf_counter()
        model = build()
        t_build = time.perf_counter() - t0

        marks: list[tuple[float, float]] = []  # (time, fraction done) after each batch

        def mark(fraction: float, _desc: str, marks=marks) -> None:
            marks.append((time.perf_counter(), fraction))

        if kind in ("taef2", "sd"):

            def run(ims, model=model, mark=mark):
                return embeddings.vae_embedding(model, ims, 64, "flatten", None, mark)

        else:

            def run(ims, model=model, mark=mark):
                return model.embed_images(ims, None, mark)

        with torch.inference_mode():
            # warm-up: one full default batch (allocations, oneDNN kernels for that shape)
            run(pool[: min(n, devices.default_batch_size(device))])
            images = pool[:n]
            log(f"throughput: {name} on {n} images")
            marks.clear()
            t0 = time.perf_counter()
            x = run(images)
            elapsed = time.perf_counter() - t0
        per = elapsed / n
        # per-image time of each batch: its spread shows how steady the machine was
        prev_t, prev_f, per_batch = t0, 0.0, []
        for t, f in marks:
            per_batch.append((t - prev_t) / max(1e-9, (f - prev_f) * n))
            prev_t, prev_f = t, f
        results.append(
            dict(
                name=name,
                kind=kind,
                n=n,
                dim=x.shape[1],
                build=t_build,
                total=elapsed,
                per=per,
                spread=(min(per_batch), max(per_batch)) if per_batch else (per, per),
            )
        )
        log(f"throughput: {name}: {per * 1000:.1f} ms/image, dim {x.shape[1]}")
        del model
        devices.MODEL_CACHE.clear()
    return results


# --------------------------------------------------------------------------- 2. cache


def cache_bench(sizes, pool, device, cold_max: int) -> tuple[list[dict], str]:
    """Cold embed (compute + write) vs warm embed (read back) through an EmbeddingCache.

    Sizes up to ``cold_max`` run cold for real. Larger ones (TAEF2 at 10k would take minutes)
    get their shard written with ``put_many`` (the vectors of the measured cold run, tiled),
    one segment like a cold ``embed`` writes; their cold time is extrapolated."""
    import numpy as np

    from explorer.models import registry
    from explorer.models.vae import load_vae
    from explorer.spaces import embed as embeddings
    from explorer.spaces.cache import EmbeddingCache

    if TAEF2.is_dir():
        space, what = f"vae:{TAEF2}", "TAEF2 VAE (real weights), 64 px, 2048-d"
    else:
        from tests import tiny_models  # python -m bench.X puts the repository root on sys.path

        tiny_models.register()
        space, what = "vae:test-tiny", "test-tiny VAE (TAEF2 checkpoint absent), 64 px"
    _, ref = embeddings.parse_space(space)
    key = embeddings.vae_cache_key(registry.resolve(ref), 64, "flatten", device)
    t0 = time.perf_counter()
    load_vae(ref, device=device)  # once per process (as in the app): not in cold times
    t_load = time.perf_counter() - t0
    log(f"cache: building {max(sizes)} distinct images")
    images = distinct_images(pool, max(sizes))
    rows: list[dict] = []
    measured = None  # (n, seconds, vectors) of the largest real cold run
    with tempfile.TemporaryDirectory(prefix="atlas-scale-cache-") as tmp:
        for n in sizes:
            ims = images[:n]
            t0 = time.perf_counter()
            hashes = [embeddings.image_hash(im) for im in ims]
            t_hash = time.perf_counter() - t0
            root = Path(tmp) / f"n{n}"
            cache = EmbeddingCache(root)
            if n <= cold_max or measured is None:
                log(f"cache: cold embed of {n} images")
                t0 = time.perf_counter()
                cold = embeddings.embed(space, ims, hashes, cache, device=device)
                t_cold, cold_measured = time.perf_counter() - t0, True
                measured = (n, t_cold, cold)
            else:
                m_n, m_t, m_x = measured
                cold = np.resize(m_x, (n, m_x.shape[1]))
                cache.put_many(key, hashes, cold)
                t_cold, cold_measured = m_t / m_n * n, False
            t0 = time.perf_counter()
            warm_same = embeddings.embed(space, ims, hashes, cache, device=device)
            t_same = time.perf_counter() - t0
            t0 = time.perf_counter()
            warm_new = embeddings.embed(space, ims, hashes, EmbeddingCache(root), device=device)
            t_new = time.perf_counter() - t0
            ok = np.array_equal(cold, warm_same) and np.array_equal(cold, warm_new)
            size = sum(p.stat().st_size for p in root.rglob("*.vec"))
            rows.append(
                dict(
                    n=n,
                    hash=t_hash,
                    cold=t_cold,
                    cold_measured=cold_measured,
                    cold_from=measured[0],
                    same=t_same,
                    new=t_new,
                    ok=ok,
                    mb=size / 2**20,
                )
            )
            log(
                f"cache {n}: hash {t_hash:.2f}s cold {t_cold:.2f}s "
                f"({'measured' if cold_measured else 'extrapolated'}) warm {t_same:.3f}s / "
                f"{t_new:.3f}s, identical={ok}"
            )
    return rows, f"{what}; model load {fmt_s(t_load)} (once per process, not included)"


# --------------------------------------------------------------------------- 3. projections


def synthetic_embeddings(n: int, d: int, seed: int = 0):
    """(n, d) float32: ``N_CLASSES`` Gaussian clusters (unit-variance centres, noise std 2),
    and the cluster of each row as its label."""
    import numpy as np

    rng = np.random.default_rng([seed, n, d])
    centres = rng.standard_normal((N_CLASSES, d), dtype=np.float32)
    labels = rng.integers(0, N_CLASSES, n)
    x = centres[labels] + 2.0 * rng.standard_normal((n, d), dtype=np.float32)
    return x, labels


def _tsne_child(n: int, d: int, results) -> None:
    import sklearn.manifold  # noqa: F401  (imported here, so not timed)

    from explorer.analysis import projection

    x, _ = synthetic_embeddings(n, d)
    t0 = time.perf_counter()
    projection.project(x, "tsne", seed=0)
    results.put(time.perf_counter() - t0)


def tsne_capped(n: int, d: int, cap: float) -> tuple[float | None, str]:
    """``project(x, "tsne")`` in a child process (spawned: its imports are not timed), stopped
    after ``cap`` seconds. -> (seconds or None, note)."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=_tsne_child, args=(n, d, results), daemon=True)
    proc.start()
    deadline = time.monotonic() + cap + 60  # + the child's imports and data generation
    while time.monotonic() < deadline:
        try:
            t = results.get(timeout=1.0)
            proc.join(10)
            return (t, "") if t <= cap else (None, f"took {fmt_s(t)}, over the {cap:.0f} s cap")
        except queue.Empty:
            if not proc.is_alive() and results.empty():
                return None, f"failed (exit code {proc.exitcode})"
    proc.terminate()
    proc.join(10)
    return None, f"stopped after {cap:.0f} s"


def projection_bench(args, sizes) -> tuple[list[dict], dict]:
    import glob

    import sklearn.decomposition  # noqa: F401  (imported here, so the first PCA is not its import)

    from explorer.analysis import metrics, projection

    cache_dir = os.environ.get("NUMBA_CACHE_DIR", "")
    n_index = len(glob.glob(os.path.join(cache_dir, "**", "*.nbi"), recursive=True))
    state = f"warm ({n_index} index files)" if n_index else "cold (empty)"
    log(f"umap: import (numba cache {cache_dir or 'unset'}: {state})")
    t0 = time.perf_counter()
    import umap  # noqa: F401

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    projection.warm_up_umap(background=False)
    t_warm = time.perf_counter() - t0
    warm = dict(
        cache_dir=cache_dir,
        state=state,
        t_import=t_import,
        t_warm=t_warm,
        ready=projection.umap_ready(),
    )
    log(f"umap: import {t_import:.1f}s, warm-up fit {t_warm:.1f}s")

    rows = []
    for n in sizes:
        for space, d in SPACES:
            x, labels = synthetic_embeddings(n, d)
            row = dict(space=space, n=n, d=d)
            log(f"projection {space} n={n}: pca")
            t0 = time.perf_counter()
            xy = projection.project(x, "pca", seed=0)
            row["pca"] = time.perf_counter() - t0
            log(f"projection {space} n={n}: umap")
            t0 = time.perf_counter()
            projection.project(x, "umap", seed=0)
            row["umap"] = time.perf_counter() - t0
            log(f"projection {space} n={n}: space_metrics")
            t0 = time.perf_counter()
            m = metrics.space_metrics(x, xy, labels)
            row["metrics"] = time.perf_counter() - t0
            row["knn5"] = m["knn5"]
            first = space == SPACES[0][0]
            if n <= 1000 or args.tsne_10k == "all" or (args.tsne_10k == "one" and first):
                log(f"projection {space} n={n}: tsne (cap {args.tsne_cap:.0f} s)")
                row["tsne"], row["tsne_note"] = tsne_capped(n, d, args.tsne_cap)
            else:
                row["tsne"], row["tsne_note"] = None, "not run (time budget: see the first space)"
            log(
                f"projection {space} n={n}: pca {row['pca']:.2f}s umap {row['umap']:.2f}s "
                f"tsne {row['tsne']} metrics {row['metrics']:.2f}s"
            )
            rows.append(row)
    return rows, warm


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="~1 minute smoke run: 1k only, tiny samples"
    )
    ap.add_argument("--sample", type=int, default=256, help="CLIP / DINOv2 images timed")
    ap.add_argument("--vae-sample", type=int, default=512, help="TAEF2 images timed")
    ap.add_argument("--sd-sample", type=int, default=128, help="SD VAE encoder images timed")
    ap.add_argument("--no-sd-vae", action="store_true", help="skip the full SD VAE encoder")
    ap.add_argument("--sizes", default="1000,10000", help="atlas sizes measured")
    ap.add_argument(
        "--cache-cold-max",
        type=int,
        default=1000,
        help="largest cache test run cold for real (above: shard pre-filled, cold extrapolated)",
    )
    ap.add_argument("--tsne-cap", type=float, default=300.0, help="seconds per t-SNE run")
    ap.add_argument(
        "--tsne-10k",
        choices=("none", "one", "all"),
        default="all",
        help="t-SNE above 1k points for no space, the first (CLIP) only, or all",
    )
    ap.add_argument(
        "--cold-numba", action="store_true", help="use an empty numba cache (cold UMAP start)"
    )
    ap.add_argument("--device", default="cpu", help="torch device for the models (default cpu)")
    args = ap.parse_args()
    if args.quick:
        args.sample, args.vae_sample, args.sd_sample = 16, 64, 8
        args.sizes, args.tsne_10k = "1000", "none"
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})

    tmp_numba = None
    if args.cold_numba:
        tmp_numba = tempfile.TemporaryDirectory(prefix="numba-cold-")
        os.environ["NUMBA_CACHE_DIR"] = tmp_numba.name
    import torch  # does not import numba

    # Before anything imports numba: sets NUMBA_CACHE_DIR (see the projection module's docstring).
    from explorer.analysis import projection  # noqa: F401

    start = time.perf_counter()
    device = torch.device(args.device)
    info = machine_info(str(device))

    log("building the image pool")
    t0 = time.perf_counter()
    pool = image_pool(max(args.sample, args.vae_sample, args.sd_sample, 8))
    t_pool = time.perf_counter() - t0

    embed_rows = throughput(args, device, pool)
    cache_rows, cache_what = cache_bench(sizes, pool, device, args.cache_cold_max)
    proj_rows, warm = projection_bench(args, sizes)
    total = time.perf_counter() - start
    load_end = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"

    # ------------------------------------------------------------------ report
    print(f"## Atlas scale benchmark{' (--quick)' if args.quick else ''}\n")
    print(table(["", ""], [[k, v] for k, v in info]))
    print(f"\nload average at end: {load_end}; whole run {fmt_s(total)}.\n")

    print("### Embedding throughput (extrapolated to 1k / 10k)\n")
    print(
        f"Images: the bundled set's photos with seeded augmentations, longer side 224 px "
        f"({len(pool)} built in {fmt_s(t_pool)}); each model's default batch size (64 on a CPU), "
        "after one untimed warm-up batch. Preprocessing (resize/crop, normalisation) is included.\n"
    )
    base = next((r for r in embed_rows if r["kind"] == "taef2"), embed_rows[0])
    header = ["model", "dim", "measured on", "per image", "batches (min–max)", "images/s"]
    header += [f"{n:,} images (extrapolated)" for n in sizes] + [f"× {base['name'].split(' (')[0]}"]
    rows = []
    for r in embed_rows:
        row = [r["name"], r["dim"], f"{r['n']} images, {fmt_s(r['total'])}"]
        lo, hi = r["spread"]
        row += [f"{r['per'] * 1000:.1f} ms", f"{lo * 1000:.0f}–{hi * 1000:.0f} ms"]
        row += [f"{1 / r['per']:.1f}"]
        row += [fmt_s(r["per"] * n) for n in sizes] + [fmt_x(r["per"] / base["per"])]
        rows.append(row)
    print(table(header, rows))
    print(
        "\nModel build / load times (not included): "
        + "; ".join(f"{r['name'].split(' (')[0]} {fmt_s(r['build'])}" for r in embed_rows)
        + ".\n"
    )

    print("### Embedding cache (measured)\n")
    print(
        f"`embeddings.embed` with {cache_what}. Cold = the model runs and the vectors are "
        "written; warm = the second call on the same images, through the same `EmbeddingCache` "
        "object (index already in memory) and through a new one on the same folder (reads the "
        "segment files, from the OS page cache here). Image hashes are computed once and passed "
        "in (as `atlas.build` does); hashing is shown separately because a re-open pays it too. "
        "Above the measured cold size the shard is written with `put_many` (one segment, as a "
        "cold run writes) and the cold time is extrapolated from the measured run.\n"
    )
    header = ["images", "hash images", "cold (compute + write)", "warm, same object"]
    header += ["warm, new object", "on disk", "cold / warm (new)", "cold / (hash + warm)"]
    rows = []
    for r in cache_rows:
        rows.append(
            [
                f"{r['n']:,}",
                fmt_s(r["hash"]),
                fmt_s(r["cold"])
                + ("" if r["cold_measured"] else f" (extrapolated from {r['cold_from']:,})"),
                fmt_s(r["same"]),
                fmt_s(r["new"]),
                f"{r['mb']:.1f} MiB",
                fmt_x(r["cold"] / r["new"]),
                fmt_x(r["cold"] / (r["hash"] + r["new"])),
            ]
        )
    print(table(header, rows))
    if not all(r["ok"] for r in cache_rows):
        print("\n**Warning: the warm rows differed from the cold ones.**")

    print("\n### UMAP start-up\n")
    print(
        table(
            ["numba cache", "`import umap`", "`warm_up_umap(background=False)`", "ready"],
            [
                [
                    f"{warm['state']}: `{warm['cache_dir']}`",
                    fmt_s(warm["t_import"]),
                    fmt_s(warm["t_warm"]),
                    warm["ready"],
                ]
            ],
        )
    )

    print("\n### Projection and metrics (measured)\n")
    print(
        f"Random embeddings: {N_CLASSES} Gaussian clusters in each space's width, labels = "
        "cluster. `projection.project` (rows L2-normalised, cosine) and "
        "`metrics.space_metrics` (kNN-5/10, silhouette, trustworthiness vs the PCA map). UMAP "
        f"after the warm-up above. t-SNE in a spawned child process, capped at "
        f"{args.tsne_cap:.0f} s.\n"
    )
    header = ["space", "dim", "points", "PCA", "UMAP", "t-SNE", "space_metrics"]
    header += ["UMAP / PCA", "t-SNE / UMAP"]
    rows = []
    for r in proj_rows:
        tsne = fmt_s(r["tsne"]) if r["tsne"] is not None else r["tsne_note"]
        rows.append(
            [
                r["space"],
                r["d"],
                f"{r['n']:,}",
                fmt_s(r["pca"]),
                fmt_s(r["umap"]),
                tsne,
                fmt_s(r["metrics"]),
                fmt_x(r["umap"] / r["pca"]),
                fmt_x(r["tsne"] / r["umap"]) if r["tsne"] is not None else "–",
            ]
        )
    print(table(header, rows))

    # ------------------------------------------------------------------ headline ratios
    print("\n### Ratios from this run\n")
    lines = []
    by_kind = {r["kind"]: r for r in embed_rows}
    for kind in ("clip", "dino", "sd"):
        if kind in by_kind and base is not by_kind[kind]:
            r = by_kind[kind]
            lines.append(
                f"{r['name'].split(' (')[0]} is {fmt_x(r['per'] / base['per'])} slower per "
                f"image than {base['name'].split(' (')[0]} embedding."
            )
    if "clip" in by_kind and "dino" in by_kind:
        lines.append(
            f"DINOv2-small / CLIP ViT-B/32 per image: {fmt_x(by_kind['dino']['per'] / by_kind['clip']['per'])}."
        )
    for r in cache_rows:
        lines.append(
            f"{r['n']:,} images: a cache hit (new object) is {fmt_x(r['cold'] / r['new'])} "
            f"faster than recomputing with {base['name'].split(' (')[0]}"
            f"{'' if r['cold_measured'] else ' (recompute extrapolated)'} "
            f"({fmt_x(r['cold'] / (r['hash'] + r['new']))} counting the image hashing)"
            + (
                f"; against CLIP ViT-B/32's extrapolated {fmt_s(by_kind['clip']['per'] * r['n'])}: "
                f"{fmt_x(by_kind['clip']['per'] * r['n'] / (r['hash'] + r['new']))} (with hashing)."
                if "clip" in by_kind
                else "."
            )
        )
    for n in sizes:
        sub = [r for r in proj_rows if r["n"] == n]
        umap_pca = [r["umap"] / r["pca"] for r in sub]
        lines.append(
            f"{n:,} points: UMAP / PCA time {fmt_x(min(umap_pca))}–{fmt_x(max(umap_pca))}; "
            f"all three spaces: PCA {fmt_s(sum(r['pca'] for r in sub))}, UMAP "
            f"{fmt_s(sum(r['umap'] for r in sub))}, space_metrics "
            f"{fmt_s(sum(r['metrics'] for r in sub))}."
        )
        if "clip" in by_kind and "dino" in by_kind:
            emb = sum(by_kind[k]["per"] * n for k in ("clip", "dino", "taef2") if k in by_kind)
            lines.append(
                f"{n:,} images, the default three spaces end to end (uncached): embedding "
                f"~{fmt_s(emb)} (extrapolated) vs UMAP + metrics "
                f"{fmt_s(sum(r['umap'] + r['metrics'] for r in sub))} (measured)."
            )
    print("\n".join(f"- {line}" for line in lines))
    if tmp_numba is not None:
        tmp_numba.cleanup()


if __name__ == "__main__":
    main()
