"""Stable Diffusion UNet bottleneck features: images -> (N, D) float32 rows of the ``unet`` space.

Each image is centre-cropped to the pipeline's resolution, encoded with its VAE (the scaled
posterior mean), noised to timestep ``t`` with the DDPM forward process
(``sqrt(a_t) * z + sqrt(1 - a_t) * noise``, SD's scaled-linear schedule: beta 0.00085..0.012 over
1000 steps), and passed through the UNet with the **empty prompt**'s text embedding (its own CLIP
text encoder, the prompt padded to the tokenizer's maximum length as the SD pipelines do). A
forward hook takes the **mid-block output** ``(N, C, h, w)`` and stops the pass there (the up
blocks are never run); pooling ``"mean"`` averages it over space -> ``(N, C)``, ``"mean+down"``
appends the spatial mean of every down block's output.

The noise is fixed per image: its seed is the first 60 bits of the image's content hash
(:func:`explorer.spaces.keys.image_hash`), so a result repeats, and two copies of an image get the
same noise. The model part of a space ref may carry the timestep: ``unet:sd15-unet@t200``
(:func:`split_model`; default :data:`DEFAULT_TIMESTEP`). Other blocks, several timesteps, the
mean over noise draws and captions (``unet:sd15-unet@t100/up1/s4``) are in
:mod:`explorer.spaces.unet_blocks`; a plain ref keeps this module's features and cache key.

GPU by default: on a CPU the SD 1.5 UNet takes seconds per image, so :func:`cpu_estimate_note`
says how long before a run, and in public mode :func:`check_cpu_budget` refuses sets whose
estimate exceeds :data:`CPU_BUDGET_S`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from explorer.core import public
from explorer.core.errors import ExplorerError, ModelUnavailableError
from explorer.core.progress import Progress
from explorer.images import io as imaging
from explorer.models import hub, registry
from explorer.models.device import (
    cached_model,
    default_batch_size,
    embedder_dtype,
    param_device,
    pick_device,
    run_batched,
)
from explorer.models.registry import UNetSpec
from explorer.models.vae import VAE, load_vae

__all__ = [
    "CPU_BUDGET_S",
    "DEFAULT_TIMESTEP",
    "POOLINGS",
    "TIMESTEPS",
    "UNetSpace",
    "bottleneck_features",
    "check_cpu_budget",
    "check_pooling",
    "cpu_estimate_note",
    "empty_prompt_states",
    "estimate_seconds",
    "hooked_outputs",
    "load_unet",
    "model_ref",
    "noised",
    "sd_scheduler",
    "seed_from_hash",
    "seeded_noise",
    "split_model",
    "unet_cache_key",
]

TIMESTEPS = (50, 200, 500)
DEFAULT_TIMESTEP = 200
POOLINGS = ("mean", "mean+down")
CPU_BUDGET_S = 120.0
"""Public mode on a CPU: the largest estimated run (seconds) a visitor may start."""
_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- refs and options


def split_model(model: str) -> tuple[str, int]:
    """``"sd15-unet@t200"`` -> ``("sd15-unet", 200)``; no ``@``: the default timestep."""
    name, sep, t = (model or "").partition("@")
    if not sep:
        return name.strip(), DEFAULT_TIMESTEP
    text = t.strip().lower().removeprefix("t").removeprefix("=")
    if not text.isdigit() or not 0 <= int(text) < 1000:
        raise ExplorerError(
            f"Timestep {t!r} in {model!r} is not a whole number from 0 to 999; write e.g. "
            f"'{name.strip()}@t200' (choices shown in the app: {', '.join(map(str, TIMESTEPS))})."
        )
    return name.strip(), int(text)


def model_ref(name: str, timestep: int) -> str:
    """``("sd15-unet", 200)`` -> ``"sd15-unet@t200"`` (the inverse of :func:`split_model`); a
    name that already carries its timestep (``"sd15-unet@t100/up1/s4"``, see
    :mod:`explorer.spaces.unet_blocks`) is returned as it is."""
    if "@" in (name or ""):
        return name.strip()
    return f"{name}@t{int(timestep)}"


def check_pooling(pooling: str | None) -> str:
    pooling = pooling or POOLINGS[0]
    if pooling not in POOLINGS:
        raise ExplorerError(
            f"Unknown UNet pooling {pooling!r}; choose one of {', '.join(POOLINGS)}."
        )
    return pooling


# --------------------------------------------------------------------------- pure tensors


def seed_from_hash(image_hash: str) -> int:
    """A hex content hash -> a noise seed in [0, 2**60) (its first 15 hex digits)."""
    return int(image_hash[:15], 16)


def seeded_noise(shape: Sequence[int], seeds: Sequence[int]) -> torch.Tensor:
    """(C,h,w) and N seeds -> (N,C,h,w) float32 standard normal noise, one generator per seed
    (on the CPU, so the noise is the same on every device)."""
    out = []
    for s in seeds:
        g = torch.Generator().manual_seed(int(s))
        out.append(torch.randn(tuple(shape), generator=g))
    return torch.stack(out) if out else torch.zeros((0, *shape))


def sd_scheduler():
    """The DDPM forward process of Stable Diffusion 1.x/2.x (scaled-linear betas, 1000 steps)."""
    from diffusers import DDPMScheduler  # heavy: imported on first use

    return DDPMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"
    )


def noised(
    latents: torch.Tensor, noise: torch.Tensor, timestep: int, scheduler=None
) -> torch.Tensor:
    """(N,C,h,w) scaled latents + same-shape noise -> the latents noised to ``timestep``."""
    scheduler = scheduler or sd_scheduler()
    t = torch.full((latents.shape[0],), int(timestep), dtype=torch.long)
    return scheduler.add_noise(latents.float(), noise.float(), t)


class _Stop(Exception):
    """Raised by the mid-block hook: the up blocks are not needed."""


def hooked_outputs(
    unet: torch.nn.Module,
    sample: torch.Tensor,
    timestep: int,
    text_states: torch.Tensor,
    downs: bool = False,
) -> dict[str, torch.Tensor]:
    """(N,C,h,w) noisy latents, a timestep, (N or 1,L,D) text states -> ``{"mid": (N,C',h',w')}``
    (and ``"down0"``, ``"down1"``, ... the down blocks' outputs with ``downs``), captured with
    forward hooks; the pass stops after the mid block."""
    captured: dict[str, torch.Tensor] = {}

    def on_mid(_module, _inputs, output):
        captured["mid"] = output
        raise _Stop

    handles = [unet.mid_block.register_forward_hook(on_mid)]
    if downs:
        for i, block in enumerate(unet.down_blocks):

            def on_down(_module, _inputs, output, i=i):
                captured[f"down{i}"] = output[0]  # (hidden states, residuals)

            handles.append(block.register_forward_hook(on_down))
    if text_states.shape[0] == 1 and sample.shape[0] > 1:
        text_states = text_states.expand(sample.shape[0], -1, -1)
    t = torch.full((sample.shape[0],), int(timestep), dtype=torch.long, device=sample.device)
    try:
        unet(sample, t, encoder_hidden_states=text_states, return_dict=False)
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    if "mid" not in captured:
        raise ExplorerError("The UNet has no mid block to read: it cannot be a UNet space.")
    return captured


def bottleneck_features(
    unet: torch.nn.Module,
    sample: torch.Tensor,
    timestep: int,
    text_states: torch.Tensor,
    pooling: str = "mean",
) -> torch.Tensor:
    """(N,C,h,w) noisy latents -> (N,D) float32: the mid-block output's spatial mean, then (with
    ``"mean+down"``) each down block's spatial mean, concatenated."""
    pooling = check_pooling(pooling)
    out = hooked_outputs(unet, sample, timestep, text_states, downs=pooling == "mean+down")
    keys = ["mid", *sorted(k for k in out if k.startswith("down"))]
    return torch.cat([out[k].float().mean(dim=(2, 3)) for k in keys], dim=1)


@torch.no_grad()
def empty_prompt_states(
    text_encoder: torch.nn.Module, tokenizer, device: torch.device
) -> torch.Tensor:
    """The empty prompt, padded to the tokenizer's maximum length -> (1,L,D) last hidden states."""
    ids = tokenizer(
        [""], padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
        return_tensors="pt",
    ).input_ids  # fmt: skip
    return text_encoder(ids.to(device))[0]


# --------------------------------------------------------------------------- the loaded space


class UNetSpace:
    """A loaded UNet space: the UNet, its text encoder (and its empty-prompt states) and the VAE.
    ``caption_states`` holds the states of other captions once asked for
    (:mod:`explorer.spaces.unet_blocks`)."""

    def __init__(
        self,
        spec: UNetSpec,
        unet,
        text_states,
        vae: VAE,
        device,
        dtype,
        revision,
        *,
        text_encoder=None,
        tokenizer=None,
    ):
        self.spec = spec
        self.unet = unet
        self.text_states = text_states
        self.vae = vae
        self.device = device
        self.dtype = dtype
        self.revision = revision
        self.scheduler = sd_scheduler()
        self.lock = threading.Lock()
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.caption_states: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def features(
        self,
        images: Sequence[Image.Image],
        timestep: int = DEFAULT_TIMESTEP,
        pooling: str = "mean",
        hashes: Sequence[str] | None = None,
        batch_size: int | None = None,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """PIL images -> (N, D) float32 bottleneck rows (see the module docstring); ``hashes``:
        their content hashes (default :func:`explorer.spaces.keys.image_hash`), which seed the
        noise."""
        from explorer.spaces.keys import image_hash

        pooling = check_pooling(pooling)
        images = list(images)
        if not images:
            return np.zeros((0, 0), np.float32)
        seeds = [seed_from_hash(h) for h in (hashes or [image_hash(im) for im in images])]
        size = int(self.spec.resolution)
        prepared = [imaging.prepare(im, size, "square") for im in images]

        def run(a: int, b: int) -> np.ndarray:
            z = self.vae.encode(imaging.to_tensor(prepared[a:b]), tiled=False).mean
            x = noised(z, seeded_noise(z.shape[1:], seeds[a:b]), timestep, self.scheduler)
            with self.lock:
                f = bottleneck_features(
                    self.unet,
                    x.to(param_device(self.unet), self.dtype),
                    timestep,
                    self.text_states,
                    pooling,
                )
            return f.cpu().numpy().astype(np.float32, copy=False)

        parts = run_batched(
            run,
            len(prepared),
            batch_size or default_batch_size(self.device) // 4,
            progress,
            f"UNet features of {self.spec.name} at t={timestep}",
        )
        return np.concatenate(parts, axis=0)


def _from_pretrained(spec: UNetSpec, dtype: torch.dtype) -> tuple:
    """(UNet, text encoder, tokenizer) of a Hub pipeline (cache first), safetensors only."""
    from diffusers import UNet2DConditionModel  # heavy
    from transformers import CLIPTextModel, CLIPTokenizer

    what = f"UNet space {spec.name!r}"
    kw: dict = {"use_safetensors": True}
    if spec.variant:
        kw["variant"] = spec.variant
    try:
        unet = hub.from_pretrained(
            UNet2DConditionModel.from_pretrained,
            spec.repo_id,
            what,
            subfolder="unet",
            torch_dtype=dtype,
            **kw,
        )
        text = hub.from_pretrained(
            CLIPTextModel.from_pretrained,
            spec.repo_id,
            what,
            subfolder="text_encoder",
            dtype=dtype,
            **kw,
        )
        tokenizer = hub.from_pretrained(
            CLIPTokenizer.from_pretrained, spec.repo_id, what, subfolder="tokenizer"
        )
    except ModelUnavailableError:
        raise
    except Exception as exc:
        raise ModelUnavailableError(
            f"Could not load {spec.name!r} ({spec.repo_id}: unet, text_encoder, tokenizer; "
            f"safetensors weights): {exc}. Run `python -m explorer download {spec.name}`."
        ) from exc
    return unet, text, tokenizer


def _load(spec: UNetSpec, vae: VAE, device: torch.device) -> UNetSpace:
    dtype = embedder_dtype(device)
    unet, text, tokenizer = spec.build() if spec.build else _from_pretrained(spec, dtype)
    # from_pretrained already loaded them in dtype (diffusers warns about a needless cast)
    unet, text = (
        (m if next(m.parameters()).dtype == dtype else m.to(dtype=dtype)) for m in (unet, text)
    )
    unet = unet.to(device).eval().requires_grad_(False)
    text = text.to(device).eval().requires_grad_(False)
    states = empty_prompt_states(text, tokenizer, device)
    return UNetSpace(
        spec,
        unet,
        states,
        vae,
        device,
        dtype,
        hub.model_revision(spec),
        text_encoder=text,
        tokenizer=tokenizer,
    )


def load_unet(ref: str, device: torch.device | str | None = None) -> UNetSpace:
    """Resolve ``ref`` (``name`` or ``name@tT``) -> the shared loaded :class:`UNetSpace`."""
    spec = registry.resolve_unet(ref)
    device = torch.device(device) if device is not None else pick_device()
    if spec.build is None and not hub.is_cached(spec) and not hub.hub_reachable():
        raise ModelUnavailableError(
            f"The UNet space {spec.name!r} ({spec.repo_id}) is not in the Hugging Face cache and "
            f"the Hub cannot be reached. Run `python -m explorer download {spec.name} {spec.vae}` "
            "once on a machine with internet (about 2 GB)."
        )
    vae = load_vae(spec.vae, None, device)  # outside build: the model cache is not re-entrant

    def build() -> UNetSpace:
        start = time.perf_counter()
        space = _load(spec, vae, device)
        _log.info("loaded %s in %.2f s", spec.name, time.perf_counter() - start)
        return space

    return cached_model(("unet", spec.name, device.type), build)


def unet_cache_key(
    ref: str, timestep: int, pooling: str, device: torch.device | str | None = None
) -> tuple[str, str, str, str]:
    """(family, model id, revision, preprocessing) of a UNet space, without loading it: the
    preprocessing names the VAE (and its weights), the resolution, timestep, noise seeding,
    prompt and pooling."""
    spec = registry.resolve_unet(ref)
    vae = registry.resolve(spec.vae)
    vae_id = vae.repo_id or vae.name
    dtype = str(embedder_dtype(device)).replace("torch.", "")
    prep = (
        f"square{spec.resolution}-lanczos;vae={vae_id}@{hub.model_revision(vae)};posterior-mean;"
        f"ddpm-scaled-linear;t={int(timestep)};noise=seed(sha256[:15]);prompt=empty;mid-block;"
        f"pooling={check_pooling(pooling)};{dtype}"
    )
    model_id = f"{spec.repo_id}/unet" if spec.repo_id else spec.name
    return ("unet", model_id, hub.model_revision(spec), prep)


# --------------------------------------------------------------------------- CPU time


def estimate_seconds(ref: str, n: int, device: torch.device | str | None = None) -> float | None:
    """Rough seconds for ``n`` images on a CPU (the spec's per-image figure); None on a GPU."""
    device = torch.device(device) if device is not None else pick_device()
    if device.type != "cpu":
        return None
    return int(n) * registry.resolve_unet(ref).cpu_seconds_per_image


def cpu_estimate_note(ref: str, n: int, device: torch.device | str | None = None) -> str:
    """A sentence with the estimated CPU time for ``n`` images ("" on a GPU)."""
    s = estimate_seconds(ref, n, device)
    if s is None:
        return ""
    spec = registry.resolve_unet(ref)
    return (
        f"The UNet space ({spec.name}) runs on the CPU here: about {s:,.0f} s for {n} images "
        f"(a rough {spec.cpu_seconds_per_image:g} s each; cached images are free)."
    )


def check_cpu_budget(ref: str, n: int, device: torch.device | str | None = None) -> None:
    """Public mode on a CPU: refuse ``n`` images whose estimate passes :data:`CPU_BUDGET_S`."""
    s = estimate_seconds(ref, n, device)
    if s is None or not public.public_mode() or s <= CPU_BUDGET_S:
        return
    per = registry.resolve_unet(ref).cpu_seconds_per_image
    raise public.PublicModeError(
        f"{cpu_estimate_note(ref, n, device)} This public app runs the UNet space on its CPU for "
        f"at most {int(CPU_BUDGET_S // per)} new images at a time: use a smaller set, or run the "
        "explorer on a machine with a GPU."
    )
