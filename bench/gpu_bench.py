"""GPU benchmark and CUDA checks for the Latent Space Explorer, sized for one short GPU lease.

Run everything through ``bash bench/gpu.sh OUTDIR`` (it calls the parts below in order, each
under its own time limit, and installs carried wheels). Parts:

  info     machine, versions, measured matmul ceiling, FLOP counts (FlopCounterMode), SDPA
           backends for the VAE's mid-block attention
  vae      SD VAE (sd-vae-ft-mse architecture, random weights) encode/decode at 512x512:
           fp16/bf16 x NCHW/channels_last x cudnn.benchmark off/on x batch sizes, + classic
           attention vs SDPA; images/s and % of the card's dense half-precision peak
  embed    CLIP ViT-B/32 vision tower and DINOv2-small: batched fp16 forward vs a per-image
           loop, and the app's own Embedder.embed_images end to end (PIL preprocessing included)
  compile  torch.compile of the best eager encode (or decode) config, in its own process
  oom      the app's VAE wrapper on CUDA in fp16 under a REAL out-of-memory (a plain ballast
           allocation leaves too little free memory): tiled fallback and run_batched halving
  flops    FLOP counts only (``--device cpu`` counts on real CPU tensors; default meta tensors)
  report   results.md + results.json from results.jsonl

Every part appends JSON lines to OUTDIR/results.jsonl and rewrites OUTDIR/results.md and
OUTDIR/results.json, so a part killed by its time limit still leaves what it measured.
``--smoke`` runs tiny sizes (works on a CPU) to check the script before a lease.

Models are built from explicit configs with seeded random weights: speed depends on the
architecture and shapes, not on the weights. No network access is needed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import itertools
import json
import logging
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

# The SD 1.x VAE, as in stabilityai/sd-vae-ft-mse's config.json: four blocks of
# [128, 256, 512, 512] channels (three 2x downsamplings: /8), two resnets per block,
# GroupNorm(32), SiLU, one single-head attention in the mid block, 4 latent channels.
SD_VAE_CONFIG = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": 0.18215,
}
# CLIP ViT-B/32 vision tower (openai/clip-vit-base-patch32) and DINOv2-small (facebook/dinov2-small).
CLIP_B32_VISION = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "patch_size": 32,
    "image_size": 224,
    "projection_dim": 512,
    "hidden_act": "quick_gelu",
}
DINOV2_SMALL = {
    "hidden_size": 384,
    "num_hidden_layers": 12,
    "num_attention_heads": 6,
    "mlp_ratio": 4,
    "patch_size": 14,
    "image_size": 224,
}
# FLOPs per 512x512 image, counted earlier with torch's FlopCounterMode on this architecture.
BRIEF_FLOPS = {"encode": 1.08e12, "decode": 2.48e12}

# Dense (no sparsity) fp16/bf16 tensor-core peaks from the vendors' datasheets, TFLOP/s.
PEAKS = [
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),  # SXM ("NVIDIA H100 80GB HBM3")
    ("H200 NVL", 835.0),
    ("H200", 989.4),  # SXM ("NVIDIA H200")
    ("H800", 989.4),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("A10G", 70.0),
    ("L4", 121.0),
]

OUT: Path = Path(".")
SMOKE = False
log = logging.getLogger("gpu_bench")


# ------------------------------------------------------------------------------------ plumbing


def record(**row) -> dict:
    row.setdefault("t", round(time.time(), 1))
    with open(OUT / "results.jsonl", "a") as f:
        f.write(json.dumps(row, default=str) + "\n")
    return row


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def peak_tflops(name: str) -> float | None:
    for key, value in PEAKS:
        if key in name:
            return value
    return None


def device_and_torch(device: str | None = None):
    import torch

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return torch, dev


def sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def time_it(fn, dev, warmup: int = 2, iters: int = 5, min_time: float = 0.0) -> dict:
    """Median/min/max seconds of ``fn()`` after ``warmup`` untimed calls: CUDA events on a
    GPU (each iteration its own event pair), perf_counter after a sync elsewhere."""
    import torch

    for _ in range(warmup):
        fn()
    sync(dev)
    times: list[float] = []
    start_all = time.perf_counter()
    while len(times) < iters or (time.perf_counter() - start_all < min_time and len(times) < 50):
        if dev.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b) / 1e3)
        else:
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "iters": len(times),
    }


def deadline_from(args) -> float:
    return time.monotonic() + args.budget if args.budget else float("inf")


# ------------------------------------------------------------------------------------ models


def sd_vae(torch, dtype, dev, channels_last: bool = False, meta: bool = False):
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    if meta:
        with torch.device("meta"):
            return AutoencoderKL(**SD_VAE_CONFIG).eval().requires_grad_(False)
    with torch.device(dev):  # initialise on the device: faster than on the CPU and a copy
        m = AutoencoderKL(**SD_VAE_CONFIG)
    m = m.eval().requires_grad_(False).to(dev, dtype)
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
    return m


def attn_processors(vae) -> dict[str, int]:
    counts: dict[str, int] = {}
    for proc in vae.attn_processors.values():
        counts[type(proc).__name__] = counts.get(type(proc).__name__, 0) + 1
    return counts


# ------------------------------------------------------------------------------------ info


def machine_info(torch, dev) -> dict:
    info: dict = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "device": str(dev),
    }
    try:
        from bench.common import cpu_name

        info["cpu"] = cpu_name()
    except Exception:
        pass
    for pkg in ("diffusers", "transformers", "numpy", "safetensors", "huggingface_hub", "triton"):
        try:
            info[pkg] = importlib.import_module(pkg).__version__
        except Exception as exc:
            info[pkg] = f"missing ({type(exc).__name__})"
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        info.update(
            gpu=torch.cuda.get_device_name(dev),
            gpu_memory_gib=round(p.total_memory / 2**30, 1),
            sm_count=p.multi_processor_count,
            capability=f"{p.major}.{p.minor}",
            peak_dense_half_tflops=peak_tflops(torch.cuda.get_device_name(dev)),
        )
        with contextlib.suppress(Exception):
            q = subprocess.run(
                [
                    "nvidia-smi",
                    "--query-gpu=driver_version,clocks.sm,clocks.max.sm,power.limit,temperature.gpu",
                    "--format=csv,noheader",
                ],
                capture_output=True,
                text=True,
                timeout=20,
            )
            info["nvidia_smi"] = q.stdout.strip()
            info["driver"] = q.stdout.split(",")[0].strip()
    return info


def matmul_ceiling(torch, dev) -> list[dict]:
    """TFLOP/s of a large fp16/bf16 matrix product on random data (the practical ceiling)."""
    rows = []
    n = 256 if SMOKE else 8192
    for dtype in (torch.float16, torch.bfloat16):
        gens = [torch.randn(n, n, device=dev, dtype=dtype) for _ in range(4)]
        k = [0]

        def mm(gens=gens, k=k):
            k[0] += 1
            return gens[k[0] % 2] @ gens[2 + k[0] % 2]

        t = time_it(mm, dev, warmup=3, iters=3 if SMOKE else 20)
        tf = 2 * n**3 / t["median_s"] / 1e12
        rows.append(record(part="info", kind="matmul", dtype=str(dtype)[6:], n=n, tflops=tf, **t))
        say(f"matmul {n}^3 {dtype}: {tf:.1f} TFLOP/s")
        del gens
    return rows


def count_flops(torch, dev=None, meta: bool = True, size: int = 512) -> dict:
    """FLOPs of one encode and one decode at size x size, batch 1 (FlopCounterMode counts
    convolutions, matrix products and attention: the 'dense' work)."""
    from torch.utils.flop_counter import FlopCounterMode

    dev = torch.device("meta") if meta else (dev or torch.device("cpu"))
    vae = sd_vae(torch, torch.float32, dev, meta=meta)
    x = torch.randn(1, 3, size, size, device=dev)
    z = torch.randn(1, 4, size // 8, size // 8, device=dev)
    out = {}
    with torch.no_grad():
        for op, fn in (
            ("encode", lambda: vae.encode(x).latent_dist.mean),
            ("decode", lambda: vae.decode(z).sample),
        ):
            t = time.perf_counter()
            with FlopCounterMode(display=False) as fc:
                fn()
            total = fc.get_total_flops()
            per_op = {str(k): v for k, v in fc.get_flop_counts().get("Global", {}).items()}
            out[op] = total
            record(
                part="flops",
                op=op,
                flops=total,
                size=size,
                on="meta tensors" if meta else f"real tensors on {dev.type}",
                seconds=round(time.perf_counter() - t, 2),
                by_op=per_op,
            )
            say(f"FLOPs {op} {size}^2 b1 ({'meta' if meta else dev.type}): {total / 1e12:.4f} T")
    return out


def sdpa_backends(torch, dev) -> None:
    """Which SDPA kernels accept the VAE mid-block's attention (1 head of 512 dims over
    (H/8 * W/8) tokens) and how fast each is."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    b, tokens = (2, 64) if SMOKE else (16, 4096)
    for dtype in (torch.float16, torch.bfloat16):
        q, k, v = (torch.randn(b, 1, tokens, 512, device=dev, dtype=dtype) for _ in range(3))
        ref = None
        for backend in (
            None,
            SDPBackend.FLASH_ATTENTION,
            SDPBackend.EFFICIENT_ATTENTION,
            SDPBackend.CUDNN_ATTENTION,
            SDPBackend.MATH,
        ):
            name = "default dispatch" if backend is None else backend.name
            try:
                ctx = contextlib.nullcontext() if backend is None else sdpa_kernel([backend])
                with ctx:
                    out = F.scaled_dot_product_attention(q, k, v)
                    t = time_it(
                        lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v), dev, 1, 5
                    )
                if ref is None:
                    ref = out.float()
                err = ((out.float() - ref).norm() / ref.norm()).item()
                flops = 4 * b * tokens * tokens * 512
                record(
                    part="info",
                    kind="sdpa",
                    dtype=str(dtype)[6:],
                    backend=name,
                    shape=[b, 1, tokens, 512],
                    tflops=flops / t["median_s"] / 1e12,
                    rel_err_vs_default=err,
                    **t,
                )
                say(f"sdpa {name} {dtype}: {t['median_s'] * 1e3:.2f} ms")
            except Exception as exc:
                record(
                    part="info",
                    kind="sdpa",
                    dtype=str(dtype)[6:],
                    backend=name,
                    error=f"{type(exc).__name__}: {str(exc)[:200]}",
                )
                say(f"sdpa {name} {dtype}: unavailable ({type(exc).__name__})")


def part_info(args) -> None:
    torch, dev = device_and_torch(args.device)
    info = machine_info(torch, dev)
    record(part="info", kind="machine", **info)
    say("machine: " + json.dumps(info))
    if dev.type == "cuda":
        matmul_ceiling(torch, dev)
    count_flops(torch, meta=True, size=64 if SMOKE else 512)
    if dev.type == "cuda":  # real CUDA tensors: SDPA dispatches to a GPU kernel the counter knows
        count_flops(torch, dev, meta=False, size=512)
    vae = sd_vae(torch, torch.float16 if dev.type == "cuda" else torch.float32, dev)
    record(part="info", kind="attn_processors", processors=attn_processors(vae))
    say(f"VAE attention processors: {attn_processors(vae)}")
    del vae
    if dev.type == "cuda":
        sdpa_backends(torch, dev)


# ------------------------------------------------------------------------------------ VAE


def vae_case(torch, dev, vae, op, dtype, batch, size, channels_last, warmup, iters):
    """Time ``op`` (encode/decode) of ``batch`` images at size^2; rotates two input sets."""
    mf = torch.channels_last if channels_last else torch.contiguous_format
    if op == "encode":
        xs = [
            (torch.rand(batch, 3, size, size, device=dev, dtype=dtype) * 2 - 1).contiguous(
                memory_format=mf
            )
            for _ in range(2)
        ]

        inputs = itertools.cycle(xs)

        def fn():
            return vae.encode(next(inputs)).latent_dist.mean

    else:
        xs = [
            torch.randn(batch, 4, size // 8, size // 8, device=dev, dtype=dtype).contiguous(
                memory_format=mf
            )
            for _ in range(2)
        ]

        inputs = itertools.cycle(xs)

        def fn():
            return vae.decode(next(inputs)).sample

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    out = fn()
    finite = bool(torch.isfinite(out).all())
    t = time_it(fn, dev, warmup=warmup, iters=iters)
    peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None
    return t, finite, peak


def add_rates(row: dict, peak: float | None, flops: dict) -> dict:
    per_img = row["median_s"] / row["batch"]
    row["images_per_s"] = row["batch"] / row["median_s"]
    row["ms_per_image"] = per_img * 1e3
    for tag, fl in (("brief", BRIEF_FLOPS[row["op"]]), ("measured", flops.get(row["op"]))):
        if fl:
            scale = (row["size"] / 512) ** 2 if tag == "brief" else 1.0
            tf = fl * scale / per_img / 1e12
            row[f"tflops_{tag}"] = tf
            if peak:
                row[f"pct_peak_{tag}"] = 100 * tf / peak
    return row


def part_vae(args) -> None:
    torch, dev = device_and_torch(args.device)
    deadline = deadline_from(args)
    size = 64 if SMOKE else 512
    batches = [1, 2] if SMOKE else [int(b) for b in args.batches.split(",")]
    warmup, iters = (1, 2) if SMOKE else (2, 5)
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    peak = peak_tflops(gpu)
    flops = count_flops(torch, meta=True, size=size)
    dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16}
    if dev.type != "cuda":  # half precision convolutions crawl on a CPU: check the logic in fp32
        dtypes = {"fp32": torch.float32}
    # (cudnn.benchmark, dtype, channels_last, all batches?) in priority order: the budget may
    # cut the tail. The app runs fp16, NCHW, cudnn.benchmark off.
    plan = [
        (False, "fp16", False, True),
        (False, "fp16", True, True),
        (True, "fp16", True, True),
        (True, "bf16", True, True),
        (True, "fp16", False, False),
        (False, "bf16", False, False),
        (False, "bf16", True, False),
        (True, "bf16", False, False),
    ]
    if dev.type != "cuda":
        plan = [(b, "fp32", cl, True) for b, _, cl, _ in plan[:3]]
    say(f"VAE sweep on {gpu} (peak {peak} TFLOP/s), size {size}, batches {batches}")
    for bench, dname, cl, all_batches in plan:
        torch.backends.cudnn.benchmark = bench
        dtype = dtypes[dname]
        vae = sd_vae(torch, dtype, dev, channels_last=cl)
        for op in ("encode", "decode"):
            for batch in batches if all_batches else batches[-1:]:
                if time.monotonic() > deadline:
                    say("VAE sweep: time budget spent, skipping the rest")
                    record(part="vae", skipped="budget", bench=bench, dtype=dname, layout=cl)
                    return
                cfg = dict(
                    part="vae",
                    variant="eager",
                    op=op,
                    dtype=dname,
                    layout="channels_last" if cl else "nchw",
                    cudnn_benchmark=bench,
                    batch=batch,
                    size=size,
                    attn="sdpa",
                )
                try:
                    t, finite, pk = vae_case(
                        torch, dev, vae, op, dtype, batch, size, cl, warmup, iters
                    )
                except Exception as exc:
                    record(**cfg, error=f"{type(exc).__name__}: {str(exc)[:300]}")
                    say(f"{cfg} failed: {exc}")
                    if dev.type == "cuda":
                        torch.cuda.empty_cache()
                    continue
                row = add_rates(dict(cfg, **t, finite=finite, peak_mem_gib=pk), peak, flops)
                record(**row)
                say(
                    f"{op:6s} {dname} {cfg['layout']:13s} bench={bench!s:5s} b={batch:3d}: "
                    f"{row['images_per_s']:8.1f} img/s  "
                    f"{row.get('pct_peak_brief', float('nan')):5.1f}% peak  mem {pk}"
                )
        del vae
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    # classic (non-SDPA) attention vs SDPA on one config
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    dname = "fp16" if "fp16" in dtypes else next(iter(dtypes))
    batch = batches[len(batches) // 2]
    torch.backends.cudnn.benchmark = True
    for proc_name, proc in (("classic AttnProcessor", AttnProcessor), ("sdpa", AttnProcessor2_0)):
        if time.monotonic() > deadline:
            break
        vae = sd_vae(torch, dtypes[dname], dev, channels_last=True)
        vae.set_attn_processor(proc())
        for op in ("encode", "decode"):
            cfg = dict(
                part="vae",
                variant="attn",
                op=op,
                dtype=dname,
                layout="channels_last",
                cudnn_benchmark=True,
                batch=batch,
                size=size,
                attn=proc_name,
            )
            try:
                t, finite, pk = vae_case(
                    torch, dev, vae, op, dtypes[dname], batch, size, True, warmup, iters
                )
            except Exception as exc:
                record(**cfg, error=f"{type(exc).__name__}: {str(exc)[:300]}")
                continue
            row = add_rates(dict(cfg, **t, finite=finite, peak_mem_gib=pk), peak, flops)
            record(**row)
            say(f"attn {proc_name} {op} b={batch}: {row['images_per_s']:.1f} img/s")
        del vae


def best_eager(op: str) -> dict | None:
    rows = [
        r
        for r in load_rows()
        if r.get("part") == "vae"
        and r.get("variant") == "eager"
        and r.get("op") == op
        and "images_per_s" in r
    ]
    return max(rows, key=lambda r: r["images_per_s"]) if rows else None


def part_compile(args) -> None:
    """torch.compile of one op at the best eager config (or --dtype/--layout/--batch)."""
    torch, dev = device_and_torch(args.device)
    size = 64 if SMOKE else 512
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    peak = peak_tflops(gpu)
    flops = count_flops(torch, meta=True, size=size)
    for op in args.ops.split(","):
        best = best_eager(op) or {}
        dname = args.dtype or best.get("dtype", "fp16" if dev.type == "cuda" else "fp32")
        cl = (args.layout or best.get("layout", "channels_last")) == "channels_last"
        batch = args.batch or best.get("batch", 2 if SMOKE else 32)
        torch.backends.cudnn.benchmark = True
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[dname]
        vae = sd_vae(torch, dtype, dev, channels_last=cl)
        part = vae.encoder if op == "encode" else vae.decoder
        mode = None if args.mode == "default" else args.mode
        # CPU smoke: the eager backend checks the plumbing without a C++ build
        kw = {"backend": "eager"} if dev.type != "cuda" else {"mode": mode}
        if op == "encode":
            vae.encoder = torch.compile(part, dynamic=False, **kw)
        else:
            vae.decoder = torch.compile(part, dynamic=False, **kw)
        cfg = dict(
            part="vae",
            variant=f"compile:{args.mode}",
            op=op,
            dtype=dname,
            layout="channels_last" if cl else "nchw",
            cudnn_benchmark=True,
            batch=batch,
            size=size,
            attn="sdpa",
        )
        say(f"compiling {op} ({args.mode}) at {cfg}")
        t0 = time.perf_counter()
        try:
            mf = torch.channels_last if cl else torch.contiguous_format
            if op == "encode":
                x = (torch.rand(batch, 3, size, size, device=dev, dtype=dtype) * 2 - 1).contiguous(
                    memory_format=mf
                )
                vae.encode(x)
            else:
                x = torch.randn(batch, 4, size // 8, size // 8, device=dev, dtype=dtype)
                vae.decode(x.contiguous(memory_format=mf))
            sync(dev)
            compile_s = time.perf_counter() - t0
            say(f"compiled in {compile_s:.1f} s")
            t, finite, pk = vae_case(
                torch, dev, vae, op, dtype, batch, size, cl, 2, 3 if SMOKE else 5
            )
        except Exception as exc:
            record(**cfg, error=f"{type(exc).__name__}: {str(exc)[:400]}")
            say(f"compile {op} failed: {exc}")
            continue
        row = add_rates(
            dict(cfg, **t, finite=finite, peak_mem_gib=pk, compile_s=compile_s), peak, flops
        )
        record(**row)
        say(
            f"compiled {op}: {row['images_per_s']:.1f} img/s, "
            f"{row.get('pct_peak_brief', float('nan')):.1f}% peak"
        )
        del vae
        if dev.type == "cuda":
            torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------ embedders


def build_embedders(torch, dev, dtype):
    import transformers as tf

    torch.manual_seed(0)
    small = {"num_hidden_layers": 2} if SMOKE else {}
    clip = tf.CLIPVisionModelWithProjection(tf.CLIPVisionConfig(**{**CLIP_B32_VISION, **small}))
    dino = tf.Dinov2Model(tf.Dinov2Config(**{**DINOV2_SMALL, **small}))
    clip = clip.to(dev, dtype).eval().requires_grad_(False)
    dino = dino.to(dev, dtype).eval().requires_grad_(False)
    return {
        "clip-vit-b32": (clip, lambda px: clip(pixel_values=px).image_embeds),
        "dinov2-small": (dino, lambda px: dino(pixel_values=px).last_hidden_state[:, 0]),
    }


def part_embed(args) -> None:
    torch, dev = device_and_torch(args.device)
    deadline = deadline_from(args)
    dtype = torch.float16 if dev.type == "cuda" else torch.float32
    from explorer.models.device import default_batch_size

    app_batch = default_batch_size(dev)
    batches = [4, 8] if SMOKE else sorted({32, 64, app_batch})
    n_loop = 4 if SMOKE else 64
    record(part="embed", kind="app_batch_size", device=dev.type, batch=app_batch)
    dname = str(dtype).replace("torch.", "")
    models = build_embedders(torch, dev, dtype)
    with torch.no_grad():
        for name, (model, fwd) in models.items():
            impl = getattr(model.config, "_attn_implementation", None)
            px1 = [torch.randn(1, 3, 224, 224, device=dev, dtype=dtype) for _ in range(n_loop)]

            def loop(px1=px1, fwd=fwd):
                for p in px1:
                    fwd(p)

            t = time_it(loop, dev, warmup=1, iters=3)
            base = n_loop / t["median_s"]
            record(
                part="embed",
                dtype=dname,
                model=name,
                mode="per-image loop (batch 1)",
                batch=1,
                attn=impl,
                images_per_s=base,
                ratio=1.0,
                **t,
            )
            say(f"{name} loop b=1: {base:.1f} img/s (attn {impl})")
            for b in batches:
                if time.monotonic() > deadline:
                    break
                pxs = [torch.randn(b, 3, 224, 224, device=dev, dtype=dtype) for _ in range(2)]

                cycle = itertools.cycle(pxs)

                def batched(inputs=cycle, fwd=fwd):
                    return fwd(next(inputs))

                t = time_it(batched, dev, warmup=2, iters=10, min_time=0.2)
                ips = b / t["median_s"]
                record(
                    part="embed",
                    dtype=dname,
                    model=name,
                    mode="batched forward",
                    batch=b,
                    attn=impl,
                    images_per_s=ips,
                    ratio=ips / base,
                    **t,
                )
                say(f"{name} batch {b}: {ips:.1f} img/s ({ips / base:.1f}x the loop)")
            del px1
    # The app's own Embedder end to end (PIL preprocessing on the CPU included).
    try:
        app_embed_e2e(torch, dev, dtype, models, deadline)
    except Exception as exc:
        record(part="embed", mode="app e2e", error=f"{type(exc).__name__}: {str(exc)[:300]}")
        say(f"app e2e embed failed: {exc!r}")


def app_embed_e2e(torch, dev, dtype, models, deadline) -> None:
    import numpy as np
    import transformers as tf
    from PIL import Image

    from explorer.models.embedders import Embedder
    from explorer.models.specs import EMBEDDERS

    rng = np.random.default_rng(0)
    n = 16 if SMOKE else 256
    images = [
        Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)) for _ in range(n)
    ]
    torch.manual_seed(0)
    small = {"num_hidden_layers": 2} if SMOKE else {}
    clip_full = tf.CLIPModel(
        tf.CLIPConfig(
            vision_config={**CLIP_B32_VISION, **small}, text_config=small, projection_dim=512
        )
    ).to(dev, dtype)
    clip_full.eval().requires_grad_(False)
    processors = {
        "clip-vit-b32": tf.CLIPImageProcessorPil(),  # defaults = openai/clip-vit-base-patch32
        "dinov2-small": tf.BitImageProcessorPil(
            size={"shortest_edge": 256},
            crop_size={"height": 224, "width": 224},
            image_mean=[0.485, 0.456, 0.406],
            image_std=[0.229, 0.224, 0.225],
        ),
    }
    mods = {"clip-vit-b32": clip_full, "dinov2-small": models["dinov2-small"][0]}
    for name, model in mods.items():
        emb = Embedder(EMBEDDERS[name], model, processors[name], None, dev, dtype, "bench")
        emb.embed_images(images[:8], batch_size=8)  # warm-up
        for b in (1, max(1, n)):
            if time.monotonic() > deadline:
                return
            sub = images[: (32 if b == 1 and not SMOKE else n)]
            sync(dev)
            t = time.perf_counter()
            out = emb.embed_images(sub, batch_size=b)
            sync(dev)
            dt = time.perf_counter() - t
            # preprocessing alone, for the split
            t2 = time.perf_counter()
            emb.processor(images=sub, return_tensors="pt")
            pre = time.perf_counter() - t2
            record(
                part="embed",
                model=name,
                mode="app Embedder.embed_images e2e",
                batch=b,
                n=len(sub),
                images_per_s=len(sub) / dt,
                preprocess_images_per_s=len(sub) / pre,
                seconds=dt,
                out_shape=list(out.shape),
                finite=bool(np.isfinite(out).all()),
            )
            say(
                f"app e2e {name} batch {b}: {len(sub) / dt:.1f} img/s "
                f"(PIL preprocessing alone {len(sub) / pre:.1f} img/s)"
            )


# ------------------------------------------------------------------------------------ OOM path


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, rec):
        self.messages.append(rec.getMessage())


def _rel(a, b) -> float:
    a, b = a.float(), b.float()
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def part_oom(args) -> None:
    """The app's VAE wrapper in fp16 on CUDA under a real out-of-memory.

    A plain ``torch.empty`` ballast (the caching allocator's cudaMalloc) leaves less free
    memory than a whole-batch pass needs but more than a tiled one does. Then:
      1. ``vae.encode(x)`` (tiled=None) must OOM, fall back to tiles, and match the tiled
         result computed without the ballast;
      2. ``vae.decode(z)`` likewise;
      3. ``run_batched`` over ``vae.encode(..., tiled=False)`` must OOM, halve its batch, and
         match the per-image reference.
    ``torch.cuda.memory_stats()['num_ooms']`` proves the OOMs were real. On a CPU (--smoke)
    the OOMs are injected instead, to check the logic only.
    """
    from explorer.models.device import run_batched
    from explorer.models.vae import load_vae
    from tests import tiny_models  # the test models test-kl and test-tiny

    tiny_models.register()
    torch, dev = device_and_torch(args.device)
    cap = _Capture()
    logging.getLogger("explorer").addHandler(cap)
    logging.getLogger("explorer").setLevel(logging.WARNING)
    for name in ("test-kl", "test-tiny"):
        _oom_one(torch, dev, name, cap, load_vae, run_batched)


def _oom_one(torch, dev, name, cap, load_vae, run_batched) -> None:
    vae = load_vae(name, device=dev.type)
    size = 128 if SMOKE else 2048
    n = 4 if SMOKE else 8
    g = torch.Generator().manual_seed(0)
    # smooth-ish random images in [0,1]
    x = torch.nn.functional.interpolate(
        torch.rand(n, 3, size // 8, size // 8, generator=g), size=(size, size), mode="bilinear"
    )
    row = dict(part="oom", model=name, dtype=str(vae.dtype)[6:], device=str(vae.device))
    row["images"] = [n, 3, size, size]
    say(f"OOM check with {name} ({vae.describe()}), {n}x{size}^2")
    # references without memory pressure
    ref_whole = vae.encode(x, tiled=False)
    ref_tiled = vae.encode(x, tiled=True)
    z = ref_whole.mean
    dec_whole = vae.decode(z, tiled=False)
    dec_tiled = vae.decode(z, tiled=True)
    row["tiled_vs_untiled_encode_rel"] = _rel(ref_tiled.mean, ref_whole.mean)
    row["tiled_vs_untiled_decode_rel"] = _rel(dec_tiled, dec_whole)
    ballast = None
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(dev)
        peaks = {}
        for key, fn in (
            ("enc_whole", lambda: vae.encode(x, tiled=False)),
            ("enc_one", lambda: vae.encode(x[:1], tiled=False)),
            ("enc_tiled", lambda: vae.encode(x, tiled=True)),
            ("dec_whole", lambda: vae.decode(z, tiled=False)),
            ("dec_tiled", lambda: vae.decode(z, tiled=True)),
        ):
            torch.cuda.reset_peak_memory_stats(dev)
            fn()
            peaks[key] = torch.cuda.max_memory_allocated(dev) - base
        row["peak_mib"] = {k: round(v / 2**20, 1) for k, v in peaks.items()}
        # headroom: enough for one image / tiles, too little for the whole batch
        need = max(peaks["enc_one"], peaks["enc_tiled"], peaks["dec_tiled"]) * 1.5
        headroom = int(min(need, 0.7 * min(peaks["enc_whole"], peaks["dec_whole"])))
        row["headroom_mib"] = round(headroom / 2**20, 1)
        torch.cuda.empty_cache()
        free, _total = torch.cuda.mem_get_info(dev)
        ooms0 = torch.cuda.memory_stats(dev).get("num_ooms", 0)
        ballast = torch.empty(free - headroom, dtype=torch.uint8, device=dev)
        row["ballast_gib"] = round(ballast.numel() / 2**30, 2)
        row["free_after_ballast_mib"] = round(torch.cuda.mem_get_info(dev)[0] / 2**20, 1)
    else:
        ooms0 = 0
        _inject_ooms(torch, vae, n)
    t = time.perf_counter()
    results = {}
    try:
        cap.messages.clear()
        enc = vae.encode(x)  # tiled=None: whole, then tiles on OOM
        results["encode_tiled_fallback"] = {
            "rel_vs_tiled_ref": _rel(enc.mean, ref_tiled.mean),
            "rel_vs_untiled_ref": _rel(enc.mean, ref_whole.mean),
            "std_rel": None if enc.std is None else _rel(enc.std, ref_tiled.std),
            "warnings": list(cap.messages),
        }
        cap.messages.clear()
        dec = vae.decode(z)
        results["decode_tiled_fallback"] = {
            "rel_vs_tiled_ref": _rel(dec, dec_tiled),
            "rel_vs_untiled_ref": _rel(dec, dec_whole),
            "warnings": list(cap.messages),
        }
        cap.messages.clear()
        parts = run_batched(
            lambda a, b: vae.encode(x[a:b], tiled=False).mean,
            n,
            n,
            desc="encoding (bench OOM check)",
        )
        got = torch.cat(parts)
        results["run_batched_halving"] = {
            "batches": [int(p.shape[0]) for p in parts],
            "rel_vs_whole_ref": _rel(got, ref_whole.mean),
            "warnings": list(cap.messages),
        }
    except Exception as exc:
        results["error"] = f"{type(exc).__name__}: {str(exc)[:400]}"
        say(f"OOM path raised: {exc!r}")
    finally:
        if ballast is not None:
            del ballast
            torch.cuda.empty_cache()
        _uninject(vae)
    row["seconds_under_pressure"] = round(time.perf_counter() - t, 2)
    if dev.type == "cuda":
        row["real_ooms"] = torch.cuda.memory_stats(dev).get("num_ooms", 0) - ooms0
        row["allocated_after_mib"] = round(torch.cuda.memory_allocated(dev) / 2**20, 1)
    # after: a normal pass still works and matches
    after = vae.encode(x[:2], tiled=False).mean
    row["after_recovery_rel"] = _rel(after, ref_whole.mean[:2])
    row.update(results)
    ok = (
        "error" not in results
        and results["encode_tiled_fallback"]["rel_vs_tiled_ref"] < 2e-2
        and results["decode_tiled_fallback"]["rel_vs_tiled_ref"] < 2e-2
        and results["run_batched_halving"]["rel_vs_whole_ref"] < 2e-2
        and len(results["run_batched_halving"]["batches"]) > 1
        and any("out of memory" in m for m in results["encode_tiled_fallback"]["warnings"])
        and any("out of memory" in m for m in results["decode_tiled_fallback"]["warnings"])
        and row["after_recovery_rel"] < 2e-2
        and (dev.type != "cuda" or row["real_ooms"] >= 3)
    )
    row["ok"] = ok
    record(**row)
    say(f"OOM check {name}: {'OK' if ok else 'FAILED'} " + json.dumps(row, default=str))


def _inject_ooms(torch, vae, n) -> None:
    """CPU smoke only: a whole-batch pass larger than one image raises OOM once per call."""
    mod = vae.module
    orig_enc, orig_dec = mod.encode, mod.decode

    def guard(t):
        if t.shape[0] > n // 2 and not getattr(mod, "use_tiling", False):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. (injected, smoke test)")

    def enc(t, *a, **k):
        guard(t)
        return orig_enc(t, *a, **k)

    def dec(t, *a, **k):
        guard(t)
        return orig_dec(t, *a, **k)

    mod._bench_orig = (orig_enc, orig_dec)
    mod.encode, mod.decode = enc, dec


def _uninject(vae) -> None:
    mod = vae.module
    if hasattr(mod, "_bench_orig"):
        mod.encode, mod.decode = mod._bench_orig
        del mod._bench_orig


# ------------------------------------------------------------------------------------ report


def load_rows() -> list[dict]:
    path = OUT / "results.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            rows.append(json.loads(line))
    return rows


def fmt(v, nd=1):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def test_summary(text: str) -> str:
    """The device line, the FAILED/ERROR lines, and pytest's closing sections."""
    lines = text.splitlines()
    keep = [ln for ln in lines if ln.startswith("tests will run on")]
    keep += [ln for ln in lines if " FAILED" in ln or " ERROR" in ln][:60]
    start = next(
        (i for i, ln in enumerate(lines) if "slowest" in ln or "short test summary" in ln),
        max(0, len(lines) - 15),
    )
    keep += ["...", *lines[start:]]
    if not any("passed" in ln or "failed" in ln for ln in lines[start:]):
        keep.append("(no pytest closing line: the run was cut by its time limit)")
    return "\n".join(keep)[-8000:]


def part_report(args) -> None:
    rows = load_rows()
    lines: list[str] = ["# GPU benchmark: Latent Space Explorer", ""]
    machine = next((r for r in rows if r.get("kind") == "machine"), {})
    lines += ["## Machine", "", "| | |", "|---|---|"]
    for k in (
        "gpu",
        "gpu_memory_gib",
        "sm_count",
        "capability",
        "driver",
        "nvidia_smi",
        "peak_dense_half_tflops",
        "torch",
        "torch_cuda",
        "cudnn",
        "diffusers",
        "transformers",
        "triton",
        "numpy",
        "python",
        "cpu",
        "cpu_count",
        "platform",
    ):
        if k in machine:
            lines.append(f"| {k} | {machine[k]} |")
    peak = machine.get("peak_dense_half_tflops")
    mm = [r for r in rows if r.get("kind") == "matmul"]
    if mm:
        lines += ["", "Measured ceiling (random data, median of 20 products, CUDA events):", ""]
        for r in mm:
            pct = f" = {100 * r['tflops'] / peak:.0f}% of the datasheet peak" if peak else ""
            lines.append(f"- {r['n']}³ {r['dtype']} matmul: {r['tflops']:.0f} TFLOP/s{pct}")
    fl = [r for r in rows if r.get("part") == "flops"]
    if fl:
        lines += ["", "## FLOPs per image (FlopCounterMode, batch 1)", ""]
        lines += ["| op | size | counted on | TFLOP | brief's figure |", "|---|---|---|---|---|"]
        seen = set()
        for r in fl:
            key = (r["op"], r["size"], r["on"])
            if key in seen:
                continue
            seen.add(key)
            brief = BRIEF_FLOPS[r["op"]] * (r["size"] / 512) ** 2 / 1e12
            lines.append(
                f"| {r['op']} | {r['size']}² | {r['on']} | {r['flops'] / 1e12:.4f} | {brief:.4f} |"
            )
    attn = [r for r in rows if r.get("kind") == "attn_processors"]
    if attn:
        lines += ["", f"VAE attention processors (diffusers default): {attn[-1]['processors']}"]
    sd = [r for r in rows if r.get("kind") == "sdpa"]
    if sd:
        lines += [
            "",
            "## SDPA kernels for the VAE mid-block attention (1 head × 512 dims)",
            "",
            "| dtype | backend | shape | ms | TFLOP/s | rel. err vs default |",
            "|---|---|---|---|---|---|",
        ]
        for r in sd:
            if "error" in r:
                lines.append(
                    f"| {r['dtype']} | {r['backend']} | | unavailable: {r['error'][:80]} | | |"
                )
            else:
                lines.append(
                    f"| {r['dtype']} | {r['backend']} | {r['shape']} | {r['median_s'] * 1e3:.2f} | "
                    f"{r['tflops']:.0f} | {r['rel_err_vs_default']:.1e} |"
                )
    vae = [r for r in rows if r.get("part") == "vae" and "op" in r]
    if vae:
        lines += [
            "",
            "## SD VAE (sd-vae-ft-mse architecture, random weights) at 512×512",
            "",
            "Median of timed iterations after warm-ups (CUDA events); % of peak uses the brief's "
            "1.08 / 2.48 TFLOP per encode / decode and the datasheet dense fp16/bf16 peak "
            f"({peak} TFLOP/s); 'measured FLOPs' uses this run's FlopCounterMode count.",
            "",
            "| op | variant | dtype | layout | cudnn.benchmark | attention | batch | images/s | ms/image | TFLOP/s | % peak | % peak (measured FLOPs) | peak mem GiB | note |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in sorted(vae, key=lambda r: (r["op"], r.get("variant", ""), r.get("dtype", ""))):
            note = r.get("error", "")[:90]
            if "compile_s" in r:
                note = f"compile {r['compile_s']:.0f} s"
            if r.get("finite") is False:
                note += " NON-FINITE OUTPUT"
            lines.append(
                f"| {r['op']} | {r.get('variant')} | {r.get('dtype')} | {r.get('layout')} | "
                f"{r.get('cudnn_benchmark')} | {r.get('attn')} | {r.get('batch')} | "
                f"{fmt(r.get('images_per_s'))} | {fmt(r.get('ms_per_image'), 2)} | "
                f"{fmt(r.get('tflops_brief'), 0)} | {fmt(r.get('pct_peak_brief'))} | "
                f"{fmt(r.get('pct_peak_measured'))} | {fmt(r.get('peak_mem_gib'), 1)} | {note} |"
            )
        for op in ("encode", "decode"):
            ok = [r for r in vae if r["op"] == op and "images_per_s" in r]
            if ok:
                b = max(ok, key=lambda r: r["images_per_s"])
                lines.append(
                    f"\n**Best {op}:** {b['images_per_s']:.1f} images/s = "
                    f"{fmt(b.get('pct_peak_brief'))}% of peak ({b.get('variant')}, {b['dtype']}, "
                    f"{b['layout']}, cudnn.benchmark={b['cudnn_benchmark']}, batch {b['batch']})"
                )
    emb = [r for r in rows if r.get("part") == "embed" and "model" in r]
    if emb:
        lines += [
            "",
            f"## Image embedders, {emb[0].get('dtype', '')} (random weights, explicit configs)",
            "",
            "| model | mode | batch | images/s | × per-image loop | attention | note |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in emb:
            note = r.get("error", "")
            if "preprocess_images_per_s" in r:
                note = (
                    f"PIL preprocessing alone {r['preprocess_images_per_s']:.0f} img/s; n={r['n']}"
                )
            lines.append(
                f"| {r['model']} | {r['mode']} | {r.get('batch')} | {fmt(r.get('images_per_s'))} | "
                f"{fmt(r.get('ratio'))} | {r.get('attn', '')} | {note} |"
            )
    bs = [r for r in rows if r.get("kind") == "app_batch_size"]
    if bs:
        lines.append(f"\nThe app's default_batch_size on {bs[-1]['device']}: {bs[-1]['batch']}")
    errs = [r for r in rows if r.get("part") == "embed" and "error" in r and "model" not in r]
    for r in errs:
        lines.append(f"\napp e2e embed: {r['error']}")
    oom = [r for r in rows if r.get("part") == "oom" and "model" in r]
    oom_errors = [r for r in rows if r.get("part") == "oom" and "model" not in r]
    if oom:
        lines += ["", "## Out-of-memory path of the app's VAE wrapper (real OOMs on CUDA)", ""]
        for r in oom:
            lines.append(
                f"### {r['model']} ({r['dtype']} on {r['device']}): **{'OK' if r.get('ok') else 'FAILED'}**"
            )
            lines.append("")
            lines.append("```json")
            lines.append(json.dumps(r, indent=1, default=str))
            lines.append("```")
    for r in oom_errors:
        lines.append(f"\nOOM check error: {r.get('error')}")
    tests = [r for r in rows if r.get("part") == "tests"]
    for r in tests[-1:]:
        lines += [
            "",
            "## Test suite (CUDA-relevant files)",
            "",
            f"`{r.get('command', '')}`",
            "",
            "```",
        ]
        lines += [r.get("summary", "")]
        lines += ["```"]
    (OUT / "results.md").write_text("\n".join(lines) + "\n")
    (OUT / "results.json").write_text(json.dumps(rows, indent=1, default=str))


# ------------------------------------------------------------------------------------ main


def main() -> None:
    global OUT, SMOKE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument(
        "--part", default="info,vae,embed,oom", help="comma list of the parts in the docstring"
    )
    ap.add_argument("--smoke", action="store_true", help="tiny sizes; runs on a CPU")
    ap.add_argument("--device", default=None)
    ap.add_argument("--budget", type=float, default=0, help="seconds this part may take (soft)")
    ap.add_argument("--batches", default="8,16,32")
    ap.add_argument("--mode", default="default", help="torch.compile mode for --part compile")
    ap.add_argument("--ops", default="encode")
    ap.add_argument("--dtype", default=None)
    ap.add_argument("--layout", default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--summary", default=None, help="--part tests: the pytest summary file")
    ap.add_argument("--command", default="", help="--part tests: the pytest command")
    args = ap.parse_args()
    OUT = Path(args.out)
    OUT.mkdir(parents=True, exist_ok=True)
    SMOKE = args.smoke
    logging.basicConfig(level=logging.WARNING)
    for part in args.part.split(","):
        t = time.perf_counter()
        try:
            if part == "tests":
                text = Path(args.summary).read_text() if args.summary else ""
                record(part="tests", command=args.command, summary=test_summary(text))
            elif part == "flops":
                import torch

                count_flops(torch, torch.device(args.device or "cpu"), meta=args.device is None)
            elif part != "report":
                {
                    "info": part_info,
                    "vae": part_vae,
                    "embed": part_embed,
                    "oom": part_oom,
                    "compile": part_compile,
                }[part](args)
        except Exception as exc:
            import traceback

            traceback.print_exc()
            record(part=part, error=f"{type(exc).__name__}: {str(exc)[:400]}")
        say(f"part {part} took {time.perf_counter() - t:.1f} s")
        part_report(args)


if __name__ == "__main__":
    main()
