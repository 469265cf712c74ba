"""Encode/decode speed of the VAE families on this machine, side by side, as ratios.

Timing depends on the architecture, not the weights, so the full SD VAE and TAESD are built from
their published configs with random weights (no download needed); TAEF2 uses the real checkpoint
from ../shared/weights/taef2 when it is there. Prints a Markdown table for BENCHMARKS.md.

    python -m bench.vae_speed [--size 512] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from bench.common import cpu_name, sd_vae_module
from explorer.models import checkpoints

TAEF2 = Path(__file__).resolve().parents[2] / "shared" / "weights" / "taef2"


def taesd_arch():
    from diffusers import AutoencoderTiny

    return AutoencoderTiny().eval()  # default config = madebyollin/taesd


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sd-repeats", type=int, default=1, help="the full SD VAE is slow on a CPU")
    args = ap.parse_args()
    x = torch.rand(1, 3, args.size, args.size)
    rows = []

    m = taesd_arch()
    z = m.encode(x * 2 - 1).latents
    rows.append(
        (
            "TAESD (AutoencoderTiny, 4 ch)",
            timed(lambda: m.encode(x * 2 - 1), args.repeats),
            timed(lambda: m.decode(z), args.repeats),
        )
    )
    if (TAEF2 / "taef2_encoder.pth").exists():
        t = checkpoints.load_tiny_autoencoder(
            TAEF2 / "taef2_encoder.pth", TAEF2 / "taef2_decoder.pth"
        )
        zt = t.encode(x)
        rows.append(
            (
                "TAEF2 (own module, real weights, 32 ch)",
                timed(lambda: t.encode(x), args.repeats),
                timed(lambda: t.decode(zt), args.repeats),
            )
        )
    sd = sd_vae_module()
    zs = sd.encode(x * 2 - 1).latent_dist.mean
    rows.append(
        (
            "SD VAE (AutoencoderKL, sd-vae-ft-mse config)",
            timed(lambda: sd.encode(x * 2 - 1), args.sd_repeats),
            timed(lambda: sd.decode(zs), args.sd_repeats),
        )
    )

    base = rows[0][1] + rows[0][2]
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"device cpu, image {args.size}x{args.size}, median of {args.repeats} "
        f"(SD VAE: {args.sd_repeats})\n"
    )
    print("| model | encode (s) | decode (s) | round trip (s) | × TAESD |")
    print("|---|---|---|---|---|")
    for name, e, d in rows:
        print(f"| {name} | {e:.3f} | {d:.3f} | {e + d:.3f} | {(e + d) / base:.1f}× |")


if __name__ == "__main__":
    main()
