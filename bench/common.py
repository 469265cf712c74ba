"""What the benchmarks share: where results go, the machine they ran on, and models built from
published configs."""

from __future__ import annotations

import platform
from pathlib import Path

# Each benchmark that writes files writes them to RESULTS / its name unless told otherwise.
RESULTS = Path(__file__).resolve().parent / "results"


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def sd_vae_module():
    """An AutoencoderKL with the config of stabilityai/sd-vae-ft-mse and seeded random weights
    (speed depends on the architecture, not the weights), in eval mode."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=512,
    ).eval()
