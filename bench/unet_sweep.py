"""The UNet sweep's forward passes, timed: `python -m bench.unet_sweep --out DIR [--smoke]`.

Runs the app's own sweep (:func:`explorer.atlas.sweep.sweep_features`, then the scoring) on the
112-image teaching set over 7 timesteps x every block x 4 noise draws x 3 prompts, with the
Stable Diffusion 1.5 architecture (UNet, CLIP ViT-L/14 text encoder, sd-vae-ft-mse VAE) built
from their configs with random weights, registered as plugins (no download: the device machine has
no internet; timing does not depend on the weights). First one (timestep, draw, prompt) pass over
the set is timed and the whole sweep extrapolated from it; then the whole sweep runs if
``--budget`` seconds allow. Writes DIR/unet_sweep.json and unet_sweep.md.

``--smoke``: the tiny test models (tests/tiny_models.py) on the CPU, 2 timesteps, 1 draw.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

from bench.common import RESULTS

# stable-diffusion-v1-5/stable-diffusion-v1-5 unet/config.json (the diffusers defaults are SD 1.x's
# but for the cross-attention width and the sample size)
SD15_UNET = {"cross_attention_dim": 768, "sample_size": 64}
# openai/clip-vit-large-patch14's text tower, SD 1.x's text encoder
CLIP_L14_TEXT = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
}


def register_sd15_random() -> str:
    """Register ``sd15-random`` (UNet space) over ``sd-vae-random`` (VAE): SD 1.5's architecture,
    random weights. Returns the UNet's name."""
    import torch
    import transformers as tf
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from bench.gpu_bench import SD_VAE_CONFIG
    from explorer.models.registry import UNetSpec, VAESpec, register_unet, register_vae
    from tests.tiny_models import clip_tokenizer

    @functools.cache
    def vae():
        torch.manual_seed(0)
        return AutoencoderKL(**SD_VAE_CONFIG)

    @functools.cache
    def unet():
        torch.manual_seed(0)
        tok = clip_tokenizer()
        text = tf.CLIPTextModel(
            tf.CLIPTextConfig(
                **CLIP_L14_TEXT,
                vocab_size=len(tok),
                bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id,
                pad_token_id=tok.eos_token_id,
            )
        )
        return UNet2DConditionModel(**SD15_UNET), text, tok

    register_vae(VAESpec("sd-vae-random", "kl", revision="random", description="bench"), vae)
    spec = UNetSpec(
        "sd15-random", None, "sd-vae-random", "SD 1.5 architecture, random weights (bench)",
        resolution=512, revision="random",
    )  # fmt: skip
    register_unet(spec, unet)
    return spec.name


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(RESULTS / "unet_sweep"), help="default: %(default)s")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--budget", type=float, default=240.0, help="seconds for the whole sweep")
    p.add_argument("--batch", type=int, default=None, help="images per batch (default the app's)")
    args = p.parse_args(argv)
    import torch

    from explorer import datasets
    from explorer.atlas import sweep
    from explorer.models.device import pick_device
    from explorer.spaces import unet

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        from tests import tiny_models

        tiny_models.register()
        name, device = tiny_models.UNET.name, torch.device("cpu")
        plan = sweep.make_plan(name, timesteps="0,200", seeds=1)
    else:
        name, device = register_sd15_random(), pick_device()
        plan = sweep.make_plan(name)  # 7 timesteps, every block, 4 draws, 3 prompts
    image_set = datasets.teaching_set()
    n = len(image_set)
    cost = sweep.sweep_cost(plan, n, device)
    row: dict = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else str(device),
        "torch": torch.__version__,
        "unet": name,
        "images": n,
        "plan": {
            "timesteps": plan.timesteps,
            "blocks": plan.blocks,
            "seeds": plan.seeds,
            "prompts": plan.prompts,
        },
        "passes": cost.passes,
        "flops_per_pass": cost.per_pass_flops,
        "flops": cost.flops,
    }
    t0 = time.perf_counter()
    unet.load_unet(name, device)
    row["load_s"] = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    one = sweep.make_plan(name, timesteps=str(plan.timesteps[len(plan.timesteps) // 2]),
                          blocks=list(plan.blocks), seeds=1, prompts="empty")  # fmt: skip
    sweep.sweep_features(image_set, one, device=device)  # warm-up: kernels, cuDNN plans
    t0 = time.perf_counter()
    sweep.sweep_features(image_set, one, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    one_s = time.perf_counter() - t0
    one_cost = sweep.sweep_cost(one, n, device)
    row.update(
        one_pass_s=one_s,
        one_pass_images_per_s=n / one_s,
        one_pass_tflops=one_cost.flops / one_s / 1e12,
        extrapolated_sweep_s=one_s * cost.passes / one_cost.passes,
    )
    if row["extrapolated_sweep_s"] <= args.budget:
        t0 = time.perf_counter()
        cells = sweep.sweep_features(image_set, plan, device=device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        row["sweep_s"] = time.perf_counter() - t0
        row["sweep_tflops"] = cost.flops / row["sweep_s"] / 1e12
        t0 = time.perf_counter()
        table = sweep.score_cells(cells, image_set, plan)
        row["score_s"] = time.perf_counter() - t0
        row["rows"] = len(table)
    else:
        row["sweep_s"] = None
        row["skipped"] = (
            f"extrapolated {row['extrapolated_sweep_s']:.0f} s > budget {args.budget:.0f} s"
        )
    if device.type == "cuda":
        row["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    (out / "unet_sweep.json").write_text(json.dumps(row, indent=1, default=str))
    lines = [
        f"# UNet sweep on {row['device']} ({name}, {n} images)",
        f"- {cost.passes:,} passes, {cost.per_pass_flops / 1e9:.1f} GFLOP each, "
        f"{cost.flops / 1e15:.3f} PFLOP in all",
        f"- model load {row['load_s']:.1f} s",
        f"- one (timestep, draw, prompt) over the set: {one_s:.2f} s "
        f"({row['one_pass_images_per_s']:.1f} img/s, {row['one_pass_tflops']:.1f} TFLOP/s)",
        f"- whole sweep extrapolated: {row['extrapolated_sweep_s']:.0f} s",
    ]
    if row.get("sweep_s") is not None:
        lines.append(
            f"- whole sweep measured: {row['sweep_s']:.1f} s ({row['sweep_tflops']:.1f} TFLOP/s); "
            f"scoring {row['rows']} rows: {row['score_s']:.1f} s"
        )
    if "peak_gib" in row:
        lines.append(f"- peak GPU memory {row['peak_gib']:.1f} GiB")
    (out / "unet_sweep.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
