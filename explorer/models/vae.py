"""Every autoencoder behind one wrapper, :class:`VAE`, and its cached loader, :func:`load_vae`.

The wrapper speaks one convention: images are ``(N,3,H,W)`` float in [0, 1]; latents are *scaled*
latents, ``(z - shift) * scale``, the space a diffusion model sees and the one that is meant to be
close to N(0, 1). KL VAEs are diffusers ``AutoencoderKL``s and VQ autoencoders diffusers
``VQModel``s (this is the only module that imports diffusers); every tiny autoencoder, from the Hub (taesd, taesdxl, taesd3, taef1) or from local
files (taef2 too), is the project's own :class:`explorer.models.taesd.TinyAutoencoder`.

A VQ model's latent is its continuous pre-quantisation latent (after ``quant_conv``); decoding
quantises it (each latent pixel snapped to its nearest codebook entry) as diffusers'
``VQModel.decode`` does, so every decode of a VQ model, edited or interpolated latents included,
goes through the codebook. :attr:`VAE.codebook` holds the codebook in the same scaled units.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from explorer.core.errors import ModelUnavailableError
from explorer.core.progress import Progress, no_progress
from explorer.models import checkpoints, hub
from explorer.models.device import cached_model, param_device, pick_device, vae_dtype
from explorer.models.registry import VAESpec, resolve
from explorer.models.taesd import TinyAutoencoder
from explorer.models.tiling import (
    diffusers_tiling,
    run_with_tiling,
    tiny_tiled_decode,
    tiny_tiled_encode,
)

__all__ = ["VAE", "Posterior", "VAEInfo", "describe_vae", "load_vae"]

_log = logging.getLogger(__name__)
_TINY_WEIGHTS = "diffusion_pytorch_model.safetensors"


@dataclass
class Posterior:
    """Scaled posterior: ``mean`` (N,C,h,w); ``std`` (N,C,h,w) or None when deterministic."""

    mean: torch.Tensor
    std: torch.Tensor | None

    def sample(self, seed: int = 0) -> torch.Tensor:
        """(N,C,h,w) mean + std * eps with a seeded eps; the mean when deterministic."""
        if self.std is None:
            return self.mean
        gen = torch.Generator(device="cpu").manual_seed(seed)
        eps = torch.randn(self.mean.shape, generator=gen, dtype=torch.float32)
        return self.mean + self.std * eps.to(self.mean.device, self.mean.dtype)


@dataclass(frozen=True)
class VAEInfo:
    """What is known of a loaded VAE without running it (it pickles: a ZeroGPU worker sends it
    back with its results): its name, convention, device and dtype, and a VQ model's (K,C)
    float32 codebook in scaled units (None otherwise)."""

    name: str
    device: torch.device
    dtype: torch.dtype
    scaling_factor: float
    shift_factor: float
    latent_channels: int
    stochastic: bool
    downscale: int
    codebook: torch.Tensor | None

    @property
    def quantized(self) -> bool:
        """Whether decoding snaps the latent to a codebook (a VQ model)."""
        return self.codebook is not None

    def describe(self) -> str:
        return describe_vae(self)


def describe_vae(v: VAE | VAEInfo) -> str:
    """One line: the model, its kind, latent shape, scale and shift, dtype and device."""
    kind = (
        "KL VAE (posterior mean and std)"
        if v.stochastic
        else "deterministic autoencoder (no posterior std)"
    )
    if v.codebook is not None:
        kind = f"VQ autoencoder (codebook of {v.codebook.shape[0]:,} codes)"
    return (
        f"{v.name}: {kind}, {v.latent_channels} latent channels, "
        f"/{v.downscale} spatial, scale {v.scaling_factor:g}, shift {v.shift_factor:g}, "
        f"{str(v.dtype).replace('torch.', '')} on {v.device.type}"
    )


class VAE:
    """A loaded autoencoder with one convention: images in [0, 1], scaled latents.

    ``module`` is a diffusers AutoencoderKL (``stochastic``), a diffusers VQModel (``codebook``:
    its (K,C) float32 codebook in scaled units) or a TinyAutoencoder. ``device`` is where it was
    loaded for; inputs go where its weights are (the same, except in the ZeroGPU test harness,
    whose workers hold the weights of a model placed on ``"cuda"`` on the CPU).
    """

    def __init__(
        self,
        spec: VAESpec,
        module: torch.nn.Module,
        device: torch.device,
        dtype: torch.dtype,
        scaling_factor: float,
        shift_factor: float,
        latent_channels: int,
        stochastic: bool,
        downscale: int = 8,
        codebook: torch.Tensor | None = None,
    ):
        self.spec = spec
        self.module = module
        self.device = device
        self.dtype = dtype
        self.scaling_factor = float(scaling_factor)
        self.shift_factor = float(shift_factor)
        self.latent_channels = int(latent_channels)
        self.stochastic = stochastic
        self.downscale = downscale
        self.codebook = (
            None
            if codebook is None
            else ((codebook.detach().float().cpu() - self.shift_factor) * self.scaling_factor)
        )
        self.lock = threading.Lock()  # one forward pass at a time per model

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def quantized(self) -> bool:
        """Whether decoding snaps the latent to a codebook (a VQ model)."""
        return self.codebook is not None

    def describe(self) -> str:
        return describe_vae(self)

    def info(self) -> VAEInfo:
        """This model's :class:`VAEInfo`."""
        return VAEInfo(
            self.spec.name,
            self.device,
            self.dtype,
            self.scaling_factor,
            self.shift_factor,
            self.latent_channels,
            self.stochastic,
            self.downscale,
            self.codebook,
        )

    def _encode_raw(self, x: torch.Tensor, tile: int | None) -> tuple:
        """(N,3,H,W) on the device -> raw (mean, std or None); in tiles of ``tile`` latent
        pixels, one image at a time, when ``tile`` is set."""
        module, ds = self.module, self.downscale
        if self.quantized:  # diffusers has no tiled VQ encode: always whole
            return module.encode(x * 2 - 1).latents, None
        if not self.stochastic and tile is None:
            return module.encode(x), None
        if not self.stochastic:
            return torch.cat(
                [tiny_tiled_encode(module.encoder, i, tile, ds) for i in x.split(1)]
            ), None
        if tile is None:
            dist = module.encode(x * 2 - 1).latent_dist
            return dist.mean, dist.std
        means, stds = [], []
        for xi in x.split(1):
            with diffusers_tiling(module, tile, ds):
                dist = module.encode(xi * 2 - 1).latent_dist
            means.append(dist.mean)
            stds.append(dist.std)
        return torch.cat(means), torch.cat(stds)

    def _decode_raw(self, raw: torch.Tensor, tile: int | None) -> torch.Tensor:
        """(N,C,h,w) raw latents on the device -> (N,3,H,W) images, roughly [0, 1]; in tiles,
        one latent at a time, when ``tile`` is set."""
        module, ds = self.module, self.downscale
        if self.quantized:  # quantises (nearest codebook entry per pixel), then decodes
            return (module.decode(raw).sample + 1) / 2
        if not self.stochastic and tile is None:
            return module.decode(raw)
        if not self.stochastic:
            return torch.cat([tiny_tiled_decode(module.decoder, z, tile, ds) for z in raw.split(1)])
        if tile is None:
            return (module.decode(raw).sample + 1) / 2
        out = []
        for zi in raw.split(1):
            with diffusers_tiling(module, tile, ds):
                out.append((module.decode(zi).sample + 1) / 2)
        return torch.cat(out)

    def _run(self, fn: Callable, x: torch.Tensor, tiled, tile, what: str, latent_hw):
        """``fn(x, tile or None)`` under the lock, tiled on out-of-memory (see explorer.models.tiling)."""

        def run(size: int | None):
            with self.lock:
                out = fn(x, size)
                if x.device.type == "cuda":
                    torch.cuda.synchronize(x.device)
                return out

        return run_with_tiling(run, latent_hw, tiled, tile, what, self.name, self.downscale)

    @torch.no_grad()
    def encode(
        self, x: torch.Tensor, tiled: bool | None = None, tile: int | None = None
    ) -> Posterior:
        """(N,3,H,W) in [0,1], H and W multiples of 8 -> scaled posterior (N,C,H/8,W/8), float32 on CPU.

        ``tiled``: None (default) encodes the whole batch and, on out-of-memory, again in
        overlapping, blended tiles of ``tile`` latent pixels (default: about half the image,
        at most 64); True always tiles; False never does (out-of-memory propagates).
        """
        x = x.to(param_device(self.module), self.dtype)
        hw = (x.shape[-2] // self.downscale, x.shape[-1] // self.downscale)
        mean, std = self._run(self._encode_raw, x, tiled, tile, "encoding", hw)
        mean = (mean.float().cpu() - self.shift_factor) * self.scaling_factor
        std = None if std is None else std.float().cpu() * self.scaling_factor
        return Posterior(mean, std)

    @torch.no_grad()
    def decode(
        self, z: torch.Tensor, tiled: bool | None = None, tile: int | None = None
    ) -> torch.Tensor:
        """(N,C,h,w) scaled latents -> (N,3,8h,8w) float32 in [0,1] on CPU.

        ``tiled`` and ``tile`` (latent pixels) as in :meth:`encode`: by default a decode that
        runs out of memory is retried in overlapping, blended tiles.
        """
        raw = z.float() / self.scaling_factor + self.shift_factor
        raw = raw.to(param_device(self.module), self.dtype)
        out = self._run(self._decode_raw, raw, tiled, tile, "decoding", tuple(raw.shape[-2:]))
        return out.float().cpu().clamp(0, 1)

    # The lab's passes, as one call each (a ZeroGPU Space runs each in one GPU call).

    def timed_encode(self, x: torch.Tensor) -> tuple[Posterior, float]:
        """:meth:`encode` and the seconds it took."""
        start = time.perf_counter()
        posterior = self.encode(x)
        return posterior, time.perf_counter() - start

    def timed_decode(self, z: torch.Tensor) -> tuple[torch.Tensor, float]:
        """:meth:`decode` and the seconds it took."""
        start = time.perf_counter()
        x = self.decode(z)
        return x, time.perf_counter() - start

    def decode_each(
        self, zs: Sequence[torch.Tensor], progress: Progress = no_progress
    ) -> list[torch.Tensor]:
        """Each (1,C,h,w) latent decoded on its own -> (1,3,8h,8w) images in [0, 1];
        ``progress(i / n, ...)`` before the i-th."""
        out = []
        for i, z in enumerate(zs):
            progress(i / len(zs), f"decoding {i + 1}/{len(zs)}")
            out.append(self.decode(z))
        return out

    def roundtrips(
        self, x: torch.Tensor, n: int, progress: Progress = no_progress
    ) -> list[torch.Tensor]:
        """Repeated round trips x_{k+1} = D(mean E(x_k)) of a (1,3,H,W) image -> the ``n``
        images after each; ``progress(k / n, ...)`` before the k-th."""
        out = []
        for k in range(int(n)):
            progress(k / n, f"generation {k + 1}/{n}")
            x = self.decode(self.encode(x).mean)
            out.append(x)
        return out


# --------------------------------------------------------------------------- loading


def _load_kl(spec: VAESpec, dtype: torch.dtype) -> torch.nn.Module:
    """A diffusers AutoencoderKL from a Hub id (cache first) or a local folder."""
    from diffusers import AutoencoderKL  # heavy: imported on the first KL load

    kwargs = {"torch_dtype": dtype, "use_safetensors": True}  # never pickled weights
    if spec.subfolder:
        kwargs["subfolder"] = spec.subfolder
    try:
        return hub.from_pretrained(
            AutoencoderKL.from_pretrained, spec.repo_id, f"Model {spec.name!r}", **kwargs
        )
    except ModelUnavailableError:
        raise
    except Exception as exc:  # a broken folder or a config of another class
        raise ModelUnavailableError(
            f"Could not load {spec.name!r} as a diffusers AutoencoderKL: {exc}. Check that it is "
            "an AutoencoderKL or AutoencoderTiny."
        ) from exc


def _load_vq(spec: VAESpec, dtype: torch.dtype) -> torch.nn.Module:
    """A diffusers VQModel from a Hub id (cache first) or a local folder: safetensors if there
    are any, else ``.bin`` weights, which diffusers reads with ``torch.load(weights_only=True)``
    (tensors only: a pickle that holds code is refused; tests/test_vq.py checks it)."""
    from diffusers import VQModel  # heavy: imported on the first VQ load

    what = f"Model {spec.name!r}"
    kwargs: dict = {"torch_dtype": dtype}
    if spec.subfolder:
        kwargs["subfolder"] = spec.subfolder
    try:
        try:
            return hub.from_pretrained(
                VQModel.from_pretrained, spec.repo_id, what, use_safetensors=True, **kwargs
            )
        except (ModelUnavailableError, OSError):
            return hub.from_pretrained(
                VQModel.from_pretrained, spec.repo_id, what, use_safetensors=False, **kwargs
            )
    except ModelUnavailableError:
        raise
    except Exception as exc:  # a broken folder, a config of another class, a refused pickle
        raise ModelUnavailableError(
            f"Could not load {spec.name!r} as a diffusers VQModel: {exc}. Check that it is a "
            "VQModel folder with safetensors or plain-tensor .bin weights."
        ) from exc


_MODULE_KIND = {
    "tiny": "a TinyAutoencoder",
    "kl": "a diffusers AutoencoderKL",
    "vq": "a diffusers VQModel",
}


def _module_kind(module: torch.nn.Module) -> str:
    """``"tiny"``, ``"vq"`` or ``"kl"``: which of the wrapper's three module types ``module`` is."""
    if isinstance(module, TinyAutoencoder):
        return "tiny"
    return "vq" if hasattr(module, "quantize") and hasattr(module, "quant_conv") else "kl"


def _load_tiny(spec: VAESpec) -> tuple[TinyAutoencoder, float, float]:
    """A TAESD-family model and its (scaling, shift) from a file pair or an AutoencoderTiny folder
    (a Hub id, cache first, or a local folder)."""
    if spec.kind == "taesd-local":
        return checkpoints.load_tiny_autoencoder(spec.encoder_path, spec.decoder_path), 1.0, 0.0
    what = f"Model {spec.name!r}"
    config = hub.model_file(spec.repo_id, "config.json", what, spec.subfolder)
    try:
        weights = hub.model_file(spec.repo_id, _TINY_WEIGHTS, what, spec.subfolder)
    except ModelUnavailableError as exc:
        if not Path(spec.repo_id).exists():
            raise  # a Hub model not in the cache: the message says what to run
        raise ModelUnavailableError(
            f"{exc} The explorer loads safetensors weights only (no pickles)."
        ) from exc
    model, cfg = checkpoints.load_diffusers_tiny(config, weights)
    return model, cfg.get("scaling_factor") or 1.0, cfg.get("shift_factor") or 0.0


def _load(spec: VAESpec, device: torch.device) -> VAE:
    dtype = vae_dtype(spec, device)
    if spec.build is not None:  # registered in code
        module, scale, shift = spec.build(), spec.scaling_factor, spec.shift_factor
        if _module_kind(module) != spec.kind:
            raise TypeError(
                f"{spec.name}: build() returned a {type(module).__name__}; kind "
                f"{spec.kind!r} needs {_MODULE_KIND.get(spec.kind, spec.kind)}."
            )
    elif spec.kind == "kl":
        module, scale, shift = _load_kl(spec, dtype), None, None  # scaling from its config
    elif spec.kind == "vq":
        module, scale, shift = _load_vq(spec, dtype), spec.scaling_factor, spec.shift_factor
    else:
        module, scale, shift = _load_tiny(spec)
    if next(module.parameters()).dtype != dtype:  # from_pretrained already loaded it in dtype
        module = module.to(dtype=dtype)
    module = module.to(device).eval().requires_grad_(False)
    codebook = None
    if isinstance(module, TinyAutoencoder):
        channels, stochastic, downscale = module.variant.latent_channels, False, module.downscale
    elif _module_kind(module) == "vq":  # scale and shift from the spec (see registry.VAESpec)
        codebook = module.quantize.embedding.weight
        channels, stochastic = codebook.shape[1], False
        downscale = 2 ** (len(module.config.block_out_channels) - 1)
    else:  # a diffusers AutoencoderKL: scaling, shift and size from its config
        cfg = module.config
        scale = getattr(cfg, "scaling_factor", None) or 1.0
        shift = getattr(cfg, "shift_factor", None) or 0.0
        channels, stochastic = cfg.latent_channels, True
        downscale = 2 ** (len(cfg.block_out_channels) - 1)
    return VAE(spec, module, device, dtype, scale, shift, channels, stochastic, downscale, codebook)


def load_vae(
    ref: str, folder: str | os.PathLike | None = None, device: torch.device | str | None = None
) -> VAE:
    """Resolve ``ref`` and return the shared loaded :class:`VAE` (loaded once per process)."""
    spec = resolve(ref, folder)
    device = torch.device(device) if device is not None else pick_device()
    key = ("vae", spec.name, spec.encoder_path, device.type)

    def build() -> VAE:
        start = time.perf_counter()
        vae = _load(spec, device)
        _log.info("loaded %s in %.2f s", spec.name, time.perf_counter() - start)
        return vae

    return cached_model(key, build)
