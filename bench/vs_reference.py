"""The app's encode, decode and embedding paths against the bare library call on the same model,
batch, dtype and device: ``python -m bench.vs_reference [--out DIR] [--device cpu] [--repeats 5]``.

Each comparison runs the app path (A) and the reference (B) interleaved in one loop, in
alternating order (ABBA...), after one untimed warm-up of each; the medians are compared, so a
machine busy with other work slows both sides alike. ``ratio`` = app throughput / reference
throughput = reference time / app time (goal >= 0.95). Also: batched vs one image at a time for
atlas embedding. Writes DIR/vs_reference.json and DIR/vs_reference.md (DIR: bench/results/vs_reference
unless --out says).

Models: diffusers AutoencoderKL with the sd-vae-ft-mse config and diffusers AutoencoderTiny
(default = TAESD config), both seeded random weights, built from config (no Hub); the project's
TAESD-family module with the real TAEF2 weights (``--taef2``); transformers
CLIPVisionModelWithProjection (ViT-B/32 config) and Dinov2Model (dinov2-small config), random.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from bench.atlas_scale import clip_b32, dinov2_small, image_pool, machine_info, table
from bench.common import RESULTS, sd_vae_module

TAEF2 = Path(__file__).resolve().parents[1].parent / "shared" / "weights" / "taef2"


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def ab(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict]:
    """Run every fn once untimed, then ``repeats`` rounds in alternating order -> per name
    {median_s, min_s, max_s, times}."""
    names = list(fns)
    for name in names:
        fns[name]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            fns[name]()
            _sync()
            times[name].append(time.perf_counter() - t0)
    return {
        n: {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t), "times": t}
        for n, t in times.items()
    }


def _diff(a, b) -> float:
    a = torch.as_tensor(np.asarray(a) if not torch.is_tensor(a) else a).float().cpu()
    b = torch.as_tensor(np.asarray(b) if not torch.is_tensor(b) else b).float().cpu()
    return float((a - b).abs().max())


def compare(rows, case, what, n, app, ref, repeats, check=None, **extra) -> None:
    """Time ``app`` vs ``ref`` (zero-argument callables, ``n`` items per call) and add a row."""
    print(f"  {case}: {what} ...", flush=True)
    with torch.no_grad():
        res = ab({"app": app, "ref": ref}, repeats)
        diff = check() if check is not None else None
    a, r = res["app"]["median_s"], res["ref"]["median_s"]
    row = {
        "case": case,
        "what": what,
        "items": n,
        "app_s": a,
        "ref_s": r,
        "app_per_s": n / a,
        "ref_per_s": n / r,
        "ratio": r / a,
        "max_abs_diff": diff,
        "app_times": res["app"]["times"],
        "ref_times": res["ref"]["times"],
        **extra,
    }
    print(f"    app {a:.3f} s, ref {r:.3f} s, ratio {r / a:.3f}, max|diff| {diff}", flush=True)
    rows.append(row)


# --------------------------------------------------------------------------- the cases


def vae_cases(rows, args, device) -> None:
    from diffusers import AutoencoderTiny

    from explorer.models import checkpoints, registry
    from explorer.models import device as devices
    from explorer.models.vae import VAE, load_vae

    torch.manual_seed(0)
    n, s = args.vae_batch, args.vae_size
    x = torch.rand(n, 3, s, s).to(device)
    xpm = x * 2 - 1

    # diffusers AutoencoderKL, sd-vae-ft-mse architecture
    ks = args.kl_size
    spec = registry.REGISTRY["sd-vae-ft-mse"]
    dt = devices.vae_dtype(spec, device)  # the app's dtype on this device, for both sides
    xk, xkpm = x[:, :, :ks, :ks].contiguous(), xpm[:, :, :ks, :ks].to(dt).contiguous()
    kl = sd_vae_module().to(device, dt).requires_grad_(False)
    app_kl = VAE(spec, kl, device, dt, 0.18215, 0, 4, True)
    zk = app_kl.encode(xk).mean
    zk_raw = (zk / 0.18215).to(device, dt)
    shape = f"{n}x3x{ks}x{ks} {str(dt)[6:]}"
    compare(
        rows,
        "AutoencoderKL (sd-vae-ft-mse arch.)",
        "encode",
        n,
        lambda: app_kl.encode(xk),
        lambda: kl.encode(xkpm).latent_dist.mean,
        args.repeats,
        lambda: _diff(app_kl.encode(xk).mean / 0.18215, kl.encode(xkpm).latent_dist.mean),
        shape=shape,
    )
    compare(
        rows,
        "AutoencoderKL (sd-vae-ft-mse arch.)",
        "decode",
        n,
        lambda: app_kl.decode(zk),
        lambda: kl.decode(zk_raw).sample,
        args.repeats,
        lambda: _diff(app_kl.decode(zk), ((kl.decode(zk_raw).sample + 1) / 2).clamp(0, 1)),
        shape=shape,
    )

    # diffusers AutoencoderTiny (TAESD config), random: the app loads its weights into its own
    # module through its AutoencoderTiny-folder loader
    torch.manual_seed(0)
    tiny = AutoencoderTiny().eval().requires_grad_(False)
    with tempfile.TemporaryDirectory() as tmp:
        tiny.save_pretrained(tmp, safe_serialization=True)
        own, _ = checkpoints.load_diffusers_tiny(
            Path(tmp) / "config.json", Path(tmp) / "diffusion_pytorch_model.safetensors"
        )
    dt = devices.vae_dtype(registry.REGISTRY["taesd"], device)
    tiny = tiny.to(device, dt)
    x, xpm = x.to(dt), xpm.to(dt)
    app_t = VAE(registry.REGISTRY["taesd"], own.to(device, dt), device, dt, 1.0, 0.0, 4, False)
    zt = app_t.encode(x).mean
    shape = f"{n}x3x{s}x{s} {str(dt)[6:]}"
    zt = zt.to(device, dt)
    compare(
        rows,
        "AutoencoderTiny (taesd config)",
        "encode",
        n,
        lambda: app_t.encode(x),
        lambda: tiny.encode(xpm).latents,
        args.repeats,
        lambda: _diff(app_t.encode(x).mean, tiny.encode(xpm).latents),
        shape=shape,
    )
    compare(
        rows,
        "AutoencoderTiny (taesd config)",
        "decode",
        n,
        lambda: app_t.decode(zt),
        lambda: tiny.decode(zt).sample,
        args.repeats,
        lambda: _diff(app_t.decode(zt), ((tiny.decode(zt).sample + 1) / 2).clamp(0, 1)),
        shape=shape,
    )

    # our TAESD-family module with the real TAEF2 weights: app wrapper vs module.encoder/decoder
    if args.taef2.is_dir():
        taef2 = load_vae("local:taef2", str(args.taef2), device)
        mod = taef2.module
        x = x.to(device, taef2.dtype)
        z2 = taef2.encode(x).mean.to(device, taef2.dtype)
        shape = f"{n}x3x{s}x{s} {str(taef2.dtype)[6:]}"
        compare(
            rows,
            "TAEF2 (own module, real weights)",
            "encode",
            n,
            lambda: taef2.encode(x),
            lambda: mod.encoder(x),
            args.repeats,
            lambda: _diff(taef2.encode(x).mean, mod.encoder(x)),
            shape=shape,
        )
        compare(
            rows,
            "TAEF2 (own module, real weights)",
            "decode",
            n,
            lambda: taef2.decode(z2),
            lambda: mod.decoder(z2),
            args.repeats,
            lambda: _diff(taef2.decode(z2), mod.decoder(z2).clamp(0, 1)),
            shape=shape,
        )


def embedder_cases(rows, args, device, pool) -> None:
    images = pool[: args.embed_batch]
    n = len(images)
    for build, family in (
        (clip_b32, "CLIP ViT-B/32 (CLIPVisionModelWithProjection)"),
        (dinov2_small, "DINOv2-small (Dinov2Model)"),
    ):
        emb = build(device)
        net = emb.model.net if hasattr(emb.model, "net") else emb.model
        pixels = emb.processor(images=images, return_tensors="pt")["pixel_values"]
        pixels = pixels.to(device, emb.dtype)

        def ref_model(net=net, pixels=pixels, family=family):
            out = net(pixel_values=pixels)
            return out.image_embeds if "CLIP" in family else out.last_hidden_state[:, 0]

        def ref_pipeline(emb=emb, ref_model=ref_model):
            nonlocal pixels
            pixels = emb.processor(images=images, return_tensors="pt")["pixel_values"]
            pixels = pixels.to(device, emb.dtype)
            return ref_model()

        def check(emb=emb, ref_model=ref_model):
            want = torch.nn.functional.normalize(ref_model().float(), dim=-1)
            return _diff(emb.embed_images(images), want)

        t0 = time.perf_counter()
        for _ in range(3):
            emb.processor(images=images, return_tensors="pt")
        prep = (time.perf_counter() - t0) / 3
        compare(
            rows,
            family,
            "embed (PIL in) vs model(pixel_values)",
            n,
            lambda emb=emb: emb.embed_images(images),
            ref_model,
            args.repeats,
            check,
            shape=f"{n} images -> {tuple(pixels.shape)} fp32",
            preprocess_s=prep,
        )
        compare(
            rows,
            family,
            "embed (PIL in) vs processor + model",
            n,
            lambda emb=emb: emb.embed_images(images),
            ref_pipeline,
            args.repeats,
            None,
            shape=f"{n} images -> {tuple(pixels.shape)} fp32",
        )


def batched_vs_loop(rows, args, device, pool) -> None:
    """Atlas embedding: the app's batched path vs the same path one image at a time."""
    from explorer.models.vae import load_vae
    from explorer.spaces import embed as embeddings

    images = pool[: args.embed_batch]
    emb = clip_b32(device)
    compare(
        rows,
        "CLIP ViT-B/32 (arch.)",
        "atlas embedding: batched vs one at a time",
        len(images),
        lambda: emb.embed_images(images),
        lambda: np.concatenate([emb.embed_images([im]) for im in images]),
        max(1, args.repeats // 2),
        lambda: _diff(
            emb.embed_images(images), np.concatenate([emb.embed_images([im]) for im in images])
        ),
        shape="224 px",
        kind="batched",
    )
    if args.taef2.is_dir():
        vae = load_vae("local:taef2", str(args.taef2), device)
        many = pool[: 4 * args.embed_batch]
        compare(
            rows,
            "TAEF2 VAE (real weights), 64 px",
            "atlas embedding: batched vs one at a time",
            len(many),
            lambda: embeddings.vae_embedding(vae, many),
            lambda: np.concatenate([embeddings.vae_embedding(vae, [im]) for im in many]),
            max(1, args.repeats // 2),
            lambda: _diff(
                embeddings.vae_embedding(vae, many),
                np.concatenate([embeddings.vae_embedding(vae, [im]) for im in many]),
            ),
            shape="64 px, flatten",
            kind="batched",
        )


# --------------------------------------------------------------------------- report


def markdown(rows, info, args, elapsed) -> str:
    out = ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in info]
    out += [
        "",
        f"Interleaved A/B, {args.repeats} timed rounds each after one warm-up, medians; "
        f"whole run {elapsed / 60:.1f} min; load average at end "
        + ", ".join(f"{v:.2f}" for v in os.getloadavg())
        + ".",
        "",
    ]
    par = [r for r in rows if r.get("kind") != "batched"]
    out.append(
        table(
            [
                "model",
                "path",
                "input",
                "app (s)",
                "reference (s)",
                "app / ref throughput",
                "max abs diff",
            ],
            [
                [
                    r["case"],
                    r["what"],
                    r["shape"],
                    f"{r['app_s']:.3f}",
                    f"{r['ref_s']:.3f}",
                    f"**{r['ratio']:.3f}**",
                    "" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.1e}",
                ]
                for r in par
            ],
        )
    )
    bat = [r for r in rows if r.get("kind") == "batched"]
    if bat:
        out += ["", "Atlas embedding, batched (default batch size) vs one image at a time:", ""]
        out.append(
            table(
                [
                    "model",
                    "images",
                    "batched (s)",
                    "one at a time (s)",
                    "batched speed-up",
                    "max abs diff",
                ],
                [
                    [
                        r["case"],
                        str(r["items"]),
                        f"{r['app_s']:.3f}",
                        f"{r['ref_s']:.3f}",
                        f"{r['ratio']:.2f}×",
                        f"{r['max_abs_diff']:.1e}",
                    ]
                    for r in bat
                ],
            )
        )
    return "\n".join(out) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--out", type=Path, default=RESULTS / "vs_reference", help="default: %(default)s"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--vae-size", type=int, default=512, help="TAESD / TAEF2 image side")
    p.add_argument("--kl-size", type=int, default=256, help="SD VAE image side")
    p.add_argument("--vae-batch", type=int, default=2)
    p.add_argument("--embed-batch", type=int, default=16)
    p.add_argument("--taef2", type=Path, default=TAEF2)
    p.add_argument("--parts", default="vae,embed,batched")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    start = time.perf_counter()
    info = machine_info(args.device)
    rows: list[dict] = []
    parts = args.parts.split(",")
    pool = image_pool(4 * args.embed_batch) if {"embed", "batched"} & set(parts) else []
    if "vae" in parts:
        vae_cases(rows, args, device)
    if "embed" in parts:
        embedder_cases(rows, args, device, pool)
    if "batched" in parts:
        batched_vs_loop(rows, args, device, pool)
    elapsed = time.perf_counter() - start
    md = markdown(rows, info, args, elapsed)
    (args.out / "vs_reference.md").write_text(md)
    meta = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "machine": dict(info),
        "python": platform.python_version(),
        "elapsed_s": elapsed,
    }
    (args.out / "vs_reference.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(md)


if __name__ == "__main__":
    main()
