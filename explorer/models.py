"""Model registry and cached loaders: the only module that imports diffusers/transformers.

Every VAE, whatever its family, is wrapped in :class:`VAE`, which speaks one convention:
images are ``(N,3,H,W)`` float in [0, 1]; latents are *scaled* latents, ``(z - shift) * scale``,
the space a diffusion model sees and the one that is meant to be close to N(0, 1).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from . import settings, taesd
from .errors import ExplorerError, ModelUnavailableError, UnknownModelError
from .runtime import LRU

Kind = Literal["kl", "tiny", "taesd-local", "test"]
DOWNLOAD_HINT = (
    "Run `python -m explorer download` once on a machine with internet to fill the "
    "Hugging Face cache (for a VAE, a local TAESD-family checkpoint folder works offline too)."
)


@dataclass(frozen=True)
class VAESpec:
    """What the explorer needs to know about one autoencoder, before loading it."""

    name: str
    kind: Kind
    repo_id: str | None = None
    subfolder: str | None = None
    latent_channels: int = 4
    scaling_factor: float = 1.0
    shift_factor: float = 0.0
    half: Literal["fp16", "bf16"] | None = "fp16"
    description: str = ""
    gated: bool = False
    default: bool = False
    encoder_path: Path | None = None
    decoder_path: Path | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def stochastic(self) -> bool:
        """KL VAEs have a posterior with a std; tiny autoencoders are deterministic."""
        return self.kind in ("kl", "test") and not self.extra.get("tiny", False)

    @property
    def source(self) -> str:
        if self.repo_id:
            return self.repo_id + (f" ({self.subfolder})" if self.subfolder else "")
        if self.encoder_path:
            return str(self.encoder_path.parent)
        return "built-in test model"


_SD = {"scaling_factor": 0.18215, "latent_channels": 4}
REGISTRY: dict[str, VAESpec] = {
    s.name: s
    for s in [
        VAESpec(
            "sd-vae-ft-mse",
            "kl",
            "stabilityai/sd-vae-ft-mse",
            **_SD,
            default=True,
            description="Stable Diffusion 1.x/2.x VAE, decoder fine-tuned with MSE (the usual SD 1.5 VAE).",
        ),
        VAESpec(
            "sd-vae-ft-ema",
            "kl",
            "stabilityai/sd-vae-ft-ema",
            **_SD,
            description="Stable Diffusion 1.x/2.x VAE, decoder fine-tuned with EMA weights.",
        ),
        VAESpec(
            "sdxl-vae",
            "kl",
            "stabilityai/sdxl-vae",
            scaling_factor=0.13025,
            half=None,
            description="SDXL VAE (overflows in fp16: runs in fp32; use sdxl-vae-fp16-fix for half precision).",
        ),
        VAESpec(
            "sdxl-vae-fp16-fix",
            "kl",
            "madebyollin/sdxl-vae-fp16-fix",
            scaling_factor=0.13025,
            description="SDXL VAE fine-tuned to stay finite in fp16.",
        ),
        VAESpec(
            "sd3-vae",
            "kl",
            "stabilityai/stable-diffusion-3-medium-diffusers",
            "vae",
            latent_channels=16,
            scaling_factor=1.5305,
            shift_factor=0.0609,
            half="bf16",
            gated=True,
            description="Stable Diffusion 3 VAE, 16 channels (gated: accept the licence on the Hub and log in).",
        ),
        VAESpec(
            "flux1-vae",
            "kl",
            "black-forest-labs/FLUX.1-schnell",
            "vae",
            latent_channels=16,
            scaling_factor=0.3611,
            shift_factor=0.1159,
            half="bf16",
            description="FLUX.1 VAE, 16 channels.",
        ),
        VAESpec(
            "taesd",
            "tiny",
            "madebyollin/taesd",
            default=True,
            description="Tiny autoencoder for the SD 1.x latent space (~1 s on a laptop CPU).",
        ),
        VAESpec(
            "taesdxl",
            "tiny",
            "madebyollin/taesdxl",
            description="Tiny autoencoder for the SDXL latent space.",
        ),
        VAESpec(
            "taesd3",
            "tiny",
            "madebyollin/taesd3",
            latent_channels=16,
            description="Tiny autoencoder for the SD3 latent space, 16 channels.",
        ),
        VAESpec(
            "taef1",
            "tiny",
            "madebyollin/taef1",
            latent_channels=16,
            description="Tiny autoencoder for the FLUX.1 latent space, 16 channels.",
        ),
    ]
}

# Randomly initialised, seeded, tiny models for tests (EXPLORER_TEST_MODELS=1): same code paths.
TEST_MODELS: dict[str, VAESpec] = {
    s.name: s
    for s in [
        VAESpec(
            "test-kl", "test", description="Tiny random AutoencoderKL, 4 channels (tests only)."
        ),
        VAESpec(
            "test-kl16",
            "test",
            latent_channels=16,
            scaling_factor=0.5,
            shift_factor=0.1,
            description="Tiny random AutoencoderKL, 16 channels (tests only).",
        ),
        VAESpec(
            "test-tiny",
            "test",
            extra={"tiny": True},
            description="Tiny random AutoencoderTiny, 4 channels (tests only).",
        ),
    ]
}


def test_models_enabled() -> bool:
    return os.environ.get("EXPLORER_TEST_MODELS", "") not in ("", "0", "false")


def models_dir() -> Path | None:
    """The folder of local TAESD-family checkpoints named by EXPLORER_MODELS_DIR, if any."""
    return settings.get().models_dir


def local_models(folder: str | os.PathLike | None = None) -> dict[str, VAESpec]:
    """Specs for every encoder/decoder pair in ``folder`` (default: EXPLORER_MODELS_DIR)."""
    folder = Path(folder).expanduser() if folder else models_dir()
    if folder is None:
        return {}
    return {
        f"local:{prefix}": _local_spec(f"local:{prefix}", enc, dec)
        for prefix, (enc, dec) in taesd.find_checkpoints(folder).items()
    }


def _local_spec(name: str, enc: Path, dec: Path) -> VAESpec:
    return VAESpec(
        name,
        "taesd-local",
        encoder_path=enc,
        decoder_path=dec,
        latent_channels=0,
        half="fp16",
        description=f"Local TAESD-family checkpoint {enc.name} + {dec.name}.",
    )


def available_models(folder: str | os.PathLike | None = None) -> list[str]:
    """Registry names, then local checkpoints found in ``folder``, then test models if enabled."""
    names = list(REGISTRY) + list(local_models(folder))
    if test_models_enabled():
        names += list(TEST_MODELS)
    return names


def default_models() -> list[str]:
    """The models `python -m explorer download` prefetches: default VAEs, then embedders."""
    return [s.name for s in REGISTRY.values() if s.default] + default_embedders()


def pick_device() -> torch.device:
    """cuda > mps > cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_vae(folder: str | os.PathLike | None = None) -> str:
    """EXPLORER_DEFAULT_VAE, else sd-vae-ft-mse on a GPU, else something fast on a CPU."""
    if settings.get().default_vae:
        return settings.get().default_vae
    if test_models_enabled():
        return "test-tiny"
    if pick_device().type == "cuda":
        return "sd-vae-ft-mse"
    local = list(local_models(folder))
    if local and not is_cached(REGISTRY["taesd"]):
        return local[0]
    return "taesd"


def resolve(ref: str, folder: str | os.PathLike | None = None) -> VAESpec:
    """A registry name, ``local:<prefix>``, a local file/folder, or a hub id -> its spec."""
    ref = (ref or "").strip()
    if ref in REGISTRY:
        return REGISTRY[ref]
    if ref in TEST_MODELS and test_models_enabled():
        return TEST_MODELS[ref]
    local = local_models(folder)
    if ref in local:
        return local[ref]
    path = Path(ref).expanduser()
    if ref and path.exists():
        if path.is_dir() and (path / "config.json").exists():
            cls = _read_class_name(path / "config.json")
            kind: Kind = "tiny" if cls == "AutoencoderTiny" else "kl"
            return VAESpec(
                str(path),
                kind,
                repo_id=str(path),
                latent_channels=0,
                description=f"Local diffusers {cls} folder.",
            )
        enc, dec = taesd.resolve_checkpoint_path(path)
        return _local_spec(str(path), enc, dec)
    if _looks_like_hub_id(ref):
        return VAESpec(
            ref,
            "kl",
            repo_id=ref,
            latent_channels=0,
            half=None,
            description=f"Hugging Face Hub model {ref}.",
        )
    valid = ", ".join(available_models(folder))
    raise UnknownModelError(
        f"Unknown model {ref!r}. Choose one of: {valid}; or give a Hub id (owner/name) "
        "or the path of a local checkpoint file or folder."
    )


def _looks_like_hub_id(ref: str) -> bool:
    parts = ref.split("/")
    return len(parts) == 2 and all(p and not p.startswith(".") for p in parts) and " " not in ref


def _read_class_name(config: Path) -> str:
    import json

    try:
        return json.loads(config.read_text()).get("_class_name", "AutoencoderKL")
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"Could not read {config}: {exc}. Check the folder.") from exc


# --------------------------------------------------------------------------- hub helpers


def hub_reachable(timeout: float = 3.0) -> bool:
    """False when an offline flag is set or the Hub cannot be reached within ``timeout`` s."""
    from .net import hub_unreachable_reason

    return hub_unreachable_reason(timeout) is None


def is_cached(spec: VAESpec) -> bool:
    """Whether the spec's config file is in the local Hugging Face cache (no network)."""
    if not spec.repo_id or Path(spec.repo_id).exists():
        return spec.kind != "test"
    from huggingface_hub import try_to_load_from_cache

    filename = f"{spec.subfolder}/config.json" if spec.subfolder else "config.json"
    return isinstance(try_to_load_from_cache(spec.repo_id, filename), str)


def from_pretrained(loader: Callable[..., object], repo_id: str, what: str, **kwargs) -> object:
    """Call ``loader(repo_id, **kwargs)`` from the cache first, then from the Hub if reachable."""
    if Path(repo_id).exists():
        return loader(repo_id, **kwargs)
    try:
        return loader(repo_id, local_files_only=True, **kwargs)
    except (OSError, ValueError):
        pass
    if not hub_reachable():
        raise ModelUnavailableError(
            f"{what} ({repo_id}) is not in the Hugging Face cache and the Hub cannot be reached. "
            + DOWNLOAD_HINT
        )
    try:
        return loader(repo_id, **kwargs)
    except Exception as exc:
        gated = "gated" in str(exc).lower() or "401" in str(exc) or "403" in str(exc)
        hint = (
            "Accept its licence on huggingface.co and log in with `hf auth login`."
            if gated
            else DOWNLOAD_HINT
        )
        raise ModelUnavailableError(f"Could not load {what} ({repo_id}): {exc}. {hint}") from exc


# --------------------------------------------------------------------------- the wrapper


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


class VAE:
    """A loaded autoencoder with one convention: images in [0, 1], scaled latents."""

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
        self.lock = threading.Lock()  # one forward pass at a time per model

    @property
    def name(self) -> str:
        return self.spec.name

    def describe(self) -> str:
        kind = (
            "KL VAE (posterior mean and std)"
            if self.stochastic
            else "deterministic autoencoder (no posterior std)"
        )
        return (
            f"{self.spec.name}: {kind}, {self.latent_channels} latent channels, "
            f"/{self.downscale} spatial, scale {self.scaling_factor:g}, shift {self.shift_factor:g}, "
            f"{str(self.dtype).replace('torch.', '')} on {self.device.type}"
        )

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    # Tiling, used on out-of-memory or when asked to. ``tile`` is always a side in latent
    # pixels (an image tile is ``tile * downscale`` pixels); neighbouring tiles overlap by at
    # least a quarter of a tile and are blended. KL VAEs use diffusers' own tiling, where
    # GroupNorm and attention see one tile at a time, so the result is only close to the
    # untiled one. TAESD-family models (ours and diffusers' AutoencoderTiny) tile only their
    # full-resolution layers and run the latent-resolution ones (TAEF2's GroupNorm included)
    # on the whole latent: within ~0.01 of the untiled result (see tests/test_faults.py).

    def _tile_for(self, h: int, w: int, tile: int | None) -> int:
        """The tile side (latent pixels) to use for an (h, w) latent: ``tile`` if given, else
        about half the longer side, at most TILE_LATENT; a multiple of 4, at least 4."""
        if tile is None:
            tile = min(TILE_LATENT, max(MIN_TILE_LATENT, -(-max(h, w) // 2)))
        return max(4, int(tile) // 4 * 4)

    def _encode_raw(self, x: torch.Tensor, tile: int | None) -> tuple:
        """(N,3,H,W) on the device -> raw (mean, std or None); tiled, one image at a time,
        when ``tile`` is set. Call under ``self.lock``."""
        module, kind = self.module, self.spec.kind
        if tile is None:
            if kind == "taesd-local":
                return module.encode(x), None
            if not self.stochastic:
                return module.encode(x * 2 - 1).latents, None
            dist = module.encode(x * 2 - 1).latent_dist
            return dist.mean, dist.std
        ds = self.downscale
        means, stds = [], []
        for xi in x.split(1):
            if kind == "taesd-local" or not self.stochastic:
                means.append(_tiny_tiled_encode(module, xi, tile, ds))
            else:
                with _diffusers_tiling(module, tile, ds):
                    dist = module.encode(xi * 2 - 1).latent_dist
                means.append(dist.mean)
                stds.append(dist.std)
        return torch.cat(means), (torch.cat(stds) if stds else None)

    def _decode_raw(self, raw: torch.Tensor, tile: int | None) -> torch.Tensor:
        """(N,C,h,w) raw latents on the device -> (N,3,H,W) images, roughly [0, 1]; tiled,
        one latent at a time, when ``tile`` is set. Call under ``self.lock``."""
        module, kind = self.module, self.spec.kind
        if tile is None:
            if kind == "taesd-local":
                return module.decode(raw)
            return (module.decode(raw).sample + 1) / 2
        ds = self.downscale
        out = []
        for zi in raw.split(1):
            if kind == "taesd-local" or not self.stochastic:
                out.append(_tiny_tiled_decode(module, zi, tile, ds))
            else:
                with _diffusers_tiling(module, tile, ds):
                    out.append((module.decode(zi).sample + 1) / 2)
        return torch.cat(out)

    def _run(
        self,
        fn: Callable,
        x: torch.Tensor,
        tiled: bool | None,
        tile: int | None,
        what: str,
        latent_hw: tuple[int, int],
    ):
        """``fn(x, tile_or_None)`` under the lock. ``tiled`` True: tiled; False: never tiled;
        None: whole, and on out-of-memory tiled, halving the tile on each further OOM."""
        h, w = latent_hw
        first = self._tile_for(h, w, tile)
        if not tiled:
            try:
                with self.lock:
                    out = fn(x, None)
                    self._sync()
                return out
            except Exception as exc:
                if tiled is False or not is_out_of_memory(exc) or max(h, w) <= first:
                    raise  # tiling would not split this input: let the caller batch smaller
                _log.warning("out of memory while %s %dx%d latents: retrying in tiles", what, h, w)
            _free_cuda_memory()  # outside the except block: the failed pass's tensors are gone
        size = first
        while True:
            try:
                with self.lock:
                    out = fn(x, size)
                    self._sync()
                return out
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                if size <= MIN_TILE_LATENT or tile is not None:
                    raise ExplorerError(
                        f"Out of memory while {what} with {self.name}, even in tiles of "
                        f"{size * self.downscale} px: pick a smaller resolution or model, or "
                        "free some GPU memory."
                    ) from exc
                size = max(MIN_TILE_LATENT, size // 2 // 4 * 4)
                _log.warning(
                    "out of memory while %s in tiles: retrying with %d-pixel tiles",
                    what,
                    size * self.downscale,
                )
            _free_cuda_memory()

    @torch.no_grad()
    def encode(
        self, x: torch.Tensor, tiled: bool | None = None, tile: int | None = None
    ) -> Posterior:
        """(N,3,H,W) in [0,1], H and W multiples of 8 -> scaled posterior (N,C,H/8,W/8), float32 on CPU.

        ``tiled``: None (default) encodes the whole batch and, on out-of-memory, again in
        overlapping, blended tiles of ``tile`` latent pixels (default: about half the image,
        at most 64); True always tiles; False never does (out-of-memory propagates).
        """
        x = x.to(self.device, self.dtype)
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
        raw = (z.float() / self.scaling_factor + self.shift_factor).to(self.device, self.dtype)
        out = self._run(self._decode_raw, raw, tiled, tile, "decoding", tuple(raw.shape[-2:]))
        return out.float().cpu().clamp(0, 1)


TILE_LATENT = 64  # largest automatic tile side, latent pixels (512 image pixels at /8)
MIN_TILE_LATENT = 8  # below this an out-of-memory error is reported instead of retried
_log = logging.getLogger(__name__)


def _free_cuda_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _ramp(n: int, fade: int, start: bool, end: bool) -> torch.Tensor:
    """(n,) weights: 1, fading linearly towards 0 over ``fade`` samples at a shared edge."""
    w = torch.ones(n)
    fade = min(fade, n)
    if fade > 0:
        up = (torch.arange(fade, dtype=torch.float32) + 0.5) / fade
        if start:
            w[:fade] = torch.minimum(w[:fade], up)
        if end:
            w[n - fade :] = torch.minimum(w[n - fade :], up.flip(0))
    return w


def _tile_starts(size: int, tile: int, overlap: int, align: int) -> list[int]:
    """Starts of the fewest ``tile``-long windows that cover ``size`` with at least
    ``overlap`` between neighbours, spread evenly, on multiples of ``align``."""
    if size <= tile:
        return [0]
    n = -(-(size - overlap) // max(1, tile - overlap))
    while True:
        starts = [round(k * (size - tile) / (n - 1) / align) * align for k in range(n)]
        if all(b - a <= tile - overlap for a, b in itertools.pairwise(starts)):
            return starts
        n += 1  # rounding to ``align`` left a gap too wide: one more window


def _blend_tiles(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int,
    overlap: int,
    scale: float,
) -> torch.Tensor:
    """``fn`` over overlapping ``tile``-square tiles of ``x`` (N,C,H,W), whose outputs are
    ``scale`` times the input size; blended with linear ramps over the overlaps and
    normalised, so that every output pixel is a weighted mean of the tiles covering it.

    With ``scale`` 1/k, ``tile``, ``overlap`` and the input size must be multiples of k.
    Returns float32 on ``x``'s device.
    """
    _, _, h, w = x.shape
    align = max(1, round(1 / scale))  # encoding: starts on whole latent pixels
    fade = max(1, round(overlap * scale))
    out = weight = None
    rows, cols = _tile_starts(h, tile, overlap, align), _tile_starts(w, tile, overlap, align)
    for i in rows:
        for j in cols:
            y = fn(x[..., i : i + tile, j : j + tile]).float()
            if out is None:
                shape = (y.shape[0], y.shape[1], round(h * scale), round(w * scale))
                out = y.new_zeros(shape)
                weight = y.new_zeros((1, 1, shape[2], shape[3]))
            th, tw = y.shape[-2:]
            oi, oj = round(i * scale), round(j * scale)
            mask = _ramp(th, fade, i > 0, i + tile < h)[:, None] * _ramp(
                tw, fade, j > 0, j + tile < w
            )
            mask = mask.to(y.device)
            out[..., oi : oi + th, oj : oj + tw] += y * mask
            weight[..., oi : oi + th, oj : oj + tw] += mask
    return out / weight


def _tiny_layers(module: torch.nn.Module, half: str) -> torch.nn.Sequential:
    """The layers of a TAESD-family encoder/decoder, ours or diffusers' AutoencoderTiny:
    both take images in [0, 1]; both decoders start with the tanh(x/3)*3 soft clamp and end
    in [0, 1] (diffusers' wrappers only convert from/to [-1, 1] around them)."""
    part = getattr(module, half)
    return part if isinstance(part, taesd.TinyEncoder | taesd.TinyDecoder) else part.layers


def _tiny_tiled_encode(module, x: torch.Tensor, tile: int, ds: int) -> torch.Tensor:
    """(1,3,H,W) in [0,1] -> raw latents, the full-resolution layers in blended tiles of
    ``tile * ds`` px and the latent-resolution layers after the last downsampling (TAEF2's
    GroupNorm among them) on the whole latent, so their statistics stay global."""
    layers = _tiny_layers(module, "encoder")
    strided = [i for i, m in enumerate(layers) if getattr(m, "stride", (1,))[0] > 1]
    k = strided[-1] + 1 if strided else len(layers)
    h = _blend_tiles(layers[:k], x, tile * ds, tile // 4 * ds, 1 / ds)
    return layers[k:](h.to(x.dtype))


def _tiny_tiled_decode(module, z: torch.Tensor, tile: int, ds: int) -> torch.Tensor:
    """(1,C,h,w) raw latents -> image in [0,1]: the latent-resolution layers before the first
    upsampling (soft clamp, TAEF2's GroupNorm) on the whole latent, the rest in blended
    ``tile``-latent-pixel tiles."""
    layers = _tiny_layers(module, "decoder")
    if not isinstance(layers, taesd.TinyDecoder):  # diffusers applies the soft clamp outside
        z = torch.tanh(z / 3) * 3
    ups = [i for i, m in enumerate(layers) if isinstance(m, torch.nn.Upsample)]
    k = ups[0] if ups else 0
    h = layers[:k](z)
    return _blend_tiles(layers[k:], h, tile, tile // 4, ds).clamp(0, 1)


class _diffusers_tiling:
    """Context: a diffusers AutoencoderKL tiles with ``tile`` latent pixels (a quarter of
    overlap, its own blending), then gets its settings back. Hold the VAE's lock."""

    def __init__(self, module: torch.nn.Module, tile: int, downscale: int):
        self.module, self.tile, self.downscale = module, tile, downscale

    def __enter__(self):
        m = self.module
        self.saved = (
            m.use_tiling,
            m.tile_sample_min_size,
            m.tile_latent_min_size,
            m.tile_overlap_factor,
        )
        m.use_tiling, m.tile_overlap_factor = True, 0.25
        m.tile_latent_min_size = self.tile
        m.tile_sample_min_size = self.tile * self.downscale
        return m

    def __exit__(self, *exc) -> None:
        m = self.module
        (
            m.use_tiling,
            m.tile_sample_min_size,
            m.tile_latent_min_size,
            m.tile_overlap_factor,
        ) = self.saved


# --------------------------------------------------------------------------- loading


def _build_test_module(spec: VAESpec) -> torch.nn.Module:
    from diffusers import AutoencoderKL, AutoencoderTiny

    torch.manual_seed(0)
    if spec.extra.get("tiny"):
        return AutoencoderTiny(
            encoder_block_out_channels=(8, 8, 8, 8),
            decoder_block_out_channels=(8, 8, 8, 8),
            num_encoder_blocks=(1, 1, 1, 1),
            num_decoder_blocks=(1, 1, 1, 1),
            latent_channels=spec.latent_channels,
        )
    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        norm_num_groups=4,
        latent_channels=spec.latent_channels,
        scaling_factor=spec.scaling_factor,
        shift_factor=spec.shift_factor,
        sample_size=64,
    )


def _dtype_for(spec: VAESpec, device: torch.device) -> torch.dtype:
    if device.type != "cuda" or spec.half is None:
        return torch.float32
    return torch.float16 if spec.half == "fp16" else torch.bfloat16


def _load(spec: VAESpec, device: torch.device) -> VAE:
    dtype = _dtype_for(spec, device)
    if spec.kind == "taesd-local":
        module = taesd.load_tiny_autoencoder(spec.encoder_path, spec.decoder_path, device, dtype)
        return VAE(spec, module, device, dtype, 1.0, 0.0, module.variant.latent_channels, False)
    if spec.kind == "test":
        module = _build_test_module(spec)
        if dtype != torch.float32:
            module = module.to(dtype=dtype)
    else:
        from diffusers import AutoencoderKL, AutoencoderTiny

        cls = AutoencoderTiny if spec.kind == "tiny" else AutoencoderKL
        kwargs = {"torch_dtype": dtype, "use_safetensors": True}  # never pickled weights
        if spec.subfolder:
            kwargs["subfolder"] = spec.subfolder
        try:
            module = from_pretrained(
                cls.from_pretrained, spec.repo_id, f"Model {spec.name!r}", **kwargs
            )
        except ModelUnavailableError:
            raise
        except Exception as exc:  # a broken folder or a config of another class
            raise ModelUnavailableError(
                f"Could not load {spec.name!r} as a diffusers {cls.__name__}: {exc}. "
                "Check that it is an AutoencoderKL or AutoencoderTiny."
            ) from exc
    module = module.to(device).eval().requires_grad_(False)
    cfg = module.config
    tiny = module.__class__.__name__ == "AutoencoderTiny"
    downscale = 2 ** (len(cfg.block_out_channels) - 1) if not tiny else 8
    return VAE(
        spec,
        module,
        device,
        dtype,
        scaling_factor=getattr(cfg, "scaling_factor", None) or 1.0,
        shift_factor=getattr(cfg, "shift_factor", None) or 0.0,
        latent_channels=cfg.latent_channels,
        stochastic=not tiny,
        downscale=downscale,
    )


# Loaded models shared by all sessions: a bounded LRU (EXPLORER_MAX_MODELS) where loads happen
# one at a time, on purpose: diffusers and transformers resolve their classes lazily and not
# thread-safely (two first loads at once can fail with "module 'diffusers' has no attribute
# 'AutoencoderKL'"), and two big models loading together would double the memory peak. A model
# already loaded is returned without waiting.
MODEL_CACHE: LRU[object] = LRU(lambda: settings.get().max_models, serial=True)


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

    return MODEL_CACHE.get_or_build(key, build)


def download(names: list[str] | None = None, log: Callable[[str], None] = print) -> list[str]:
    """Prefetch models into the Hugging Face cache; returns the repo ids fetched."""
    from huggingface_hub import snapshot_download

    fetched = []
    for name in names or default_models():
        if name in EMBEDDERS or any(name == e.repo_id for e in EMBEDDERS.values()):
            repo = _download_embedder(name, log)
            fetched += [repo] if repo else []
            continue
        spec = resolve(name)
        if not spec.repo_id or Path(spec.repo_id).exists():
            log(f"skip {name}: not a Hub model")
            continue
        patterns = ["*.json", "*.safetensors", "*.txt", "*.model"]
        if spec.subfolder:
            patterns = [f"{spec.subfolder}/{p}" for p in patterns]
        log(f"downloading {name} ({spec.repo_id}) ...")
        try:
            snapshot_download(spec.repo_id, allow_patterns=patterns)
        except Exception as exc:
            raise ModelUnavailableError(
                f"Could not download {spec.repo_id}: {exc}. Check your internet connection"
                + (
                    " and that you accepted the model's licence on huggingface.co."
                    if spec.gated
                    else "."
                )
            ) from exc
        fetched.append(spec.repo_id)
    return fetched


__all__ = [
    "REGISTRY",
    "VAE",
    "Posterior",
    "VAESpec",
    "available_models",
    "default_models",
    "default_vae",
    "download",
    "is_cached",
    "load_vae",
    "local_models",
    "pick_device",
    "resolve",
]


# =========================================================================================
# Image embedders: CLIP, DINOv2 and a supervised ViT, behind one Embedder wrapper.
#
# Every embedder turns PIL images into L2-normalised float32 rows:
#   clip -> the projected image features (``get_image_features(...).pooler_output``);
#   dino -> the CLS token of ``last_hidden_state`` (after DINOv2's final layernorm), or the
#           mean of the patch tokens, or both concatenated (``pooling``);
#   vit  -> the CLS token of ``last_hidden_state`` (same pooling options as dino).
# Images go through the model's own image processor, always the PIL backend so that the
# numbers (and the on-disk cache keys) do not depend on whether torchvision is installed.
# =========================================================================================

import numpy as np  # noqa: E402  (kept out of the VAE section above)

EmbedderFamily = Literal["clip", "dino", "vit"]
EMBEDDER_FAMILIES: tuple[str, ...] = ("clip", "dino", "vit")
POOLINGS: dict[str, tuple[str, ...]] = {
    "clip": ("projected",),
    "dino": ("cls", "mean", "cls+mean"),
    "vit": ("cls", "mean", "cls+mean"),
}
_FAMILY_OF_MODEL_TYPE = {"clip": "clip", "dinov2": "dino", "vit": "vit"}
# Files `python -m explorer download` fetches for an embedder: configs, processor,
# tokenizer and safetensors weights only (no pickles, no TF/Flax weights).
EMBEDDER_FILES = [
    "config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "*.safetensors",
]


@dataclass(frozen=True)
class EmbedderSpec:
    """What the explorer needs to know about one image embedder, before loading it.

    ``extra`` may hold ``pooling`` (dino/vit: ``"cls"``, ``"mean"`` or ``"cls+mean"``) and
    ``test`` (a tiny seeded random model built in memory).
    """

    name: str
    family: EmbedderFamily
    repo_id: str | None
    description: str
    default: bool = False
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def pooling(self) -> str:
        return self.extra.get("pooling", POOLINGS[self.family][0])

    @property
    def is_test(self) -> bool:
        return bool(self.extra.get("test"))

    @property
    def source(self) -> str:
        return self.repo_id or "built-in test model"


EMBEDDERS: dict[str, EmbedderSpec] = {
    s.name: s
    for s in [
        EmbedderSpec(
            "clip-vit-b32",
            "clip",
            "openai/clip-vit-base-patch32",
            "OpenAI CLIP ViT-B/32: 512-d image-text space, trained on 400M captioned images.",
            default=True,
        ),
        EmbedderSpec(
            "clip-vit-b16",
            "clip",
            "openai/clip-vit-base-patch16",
            "OpenAI CLIP ViT-B/16: 512-d, finer patches than B/32 (slower, a little better).",
        ),
        EmbedderSpec(
            "clip-vit-l14",
            "clip",
            "openai/clip-vit-large-patch14",
            "OpenAI CLIP ViT-L/14: 768-d, the text encoder's partner in Stable Diffusion 1.x.",
        ),
        EmbedderSpec(
            "dinov2-small",
            "dino",
            "facebook/dinov2-small",
            "DINOv2 ViT-S/14: 384-d self-supervised features (no labels, no text).",
            default=True,
        ),
        EmbedderSpec(
            "dinov2-base",
            "dino",
            "facebook/dinov2-base",
            "DINOv2 ViT-B/14: 768-d self-supervised features.",
        ),
        EmbedderSpec(
            "vit-b16",
            "vit",
            "google/vit-base-patch16-224",
            "Supervised ViT-B/16 (ImageNet-21k, fine-tuned on ImageNet-1k): 768-d CLS token.",
        ),
    ]
}

# Tiny seeded random embedders for tests (EXPLORER_TEST_MODELS=1): same code paths.
TEST_EMBEDDERS: dict[str, EmbedderSpec] = {
    s.name: s
    for s in [
        EmbedderSpec(
            "test-clip", "clip", None, "Tiny random CLIP, 16-d (tests only).", extra={"test": True}
        ),
        EmbedderSpec(
            "test-dino",
            "dino",
            None,
            "Tiny random DINOv2, 32-d (tests only).",
            extra={"test": True},
        ),
        EmbedderSpec(
            "test-vit", "vit", None, "Tiny random ViT, 32-d (tests only).", extra={"test": True}
        ),
    ]
}


def _check_family(family: str) -> str:
    if family not in EMBEDDER_FAMILIES:
        raise UnknownModelError(
            f"Unknown embedder family {family!r}; choose one of {', '.join(EMBEDDER_FAMILIES)}."
        )
    return family


def available_embedders(family: str | None = None) -> list[str]:
    """Registry embedder names (of ``family`` if given), then test embedders if enabled."""
    specs = list(EMBEDDERS.values())
    if test_models_enabled():
        specs += list(TEST_EMBEDDERS.values())
    if family is not None:
        _check_family(family)
        specs = [s for s in specs if s.family == family]
    return [s.name for s in specs]


def default_embedders() -> list[str]:
    """The embedders `python -m explorer download` prefetches."""
    return [s.name for s in EMBEDDERS.values() if s.default]


def default_embedder(family: str) -> str:
    """The model a bare family name (``clip``, ``dino``, ``vit``) means."""
    _check_family(family)
    if test_models_enabled():
        return f"test-{family}"
    specs = [s for s in EMBEDDERS.values() if s.family == family]
    return next((s.name for s in specs if s.default), specs[0].name)


def _family_from_config(config: Path | str, where: str) -> EmbedderFamily:
    import json

    try:
        model_type = json.loads(Path(config).read_text()).get("model_type", "")
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"Could not read {config}: {exc}. Check the folder.") from exc
    if model_type not in _FAMILY_OF_MODEL_TYPE:
        raise UnknownModelError(
            f"{where} is a {model_type or 'unknown'!r} model; the explorer embeds images with "
            "clip, dinov2 or vit models only."
        )
    return _FAMILY_OF_MODEL_TYPE[model_type]  # type: ignore[return-value]


def _hub_family(repo_id: str) -> EmbedderFamily:
    """The family of a Hub model: from its config.json (cache first), else from its name."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, "config.json")
    if isinstance(cached, str):
        return _family_from_config(cached, repo_id)
    try:
        path = from_pretrained(
            lambda repo, **kw: hf_hub_download(repo, "config.json", **kw),
            repo_id,
            "The config of the Hub model",
        )
    except ModelUnavailableError:
        # Offline: guess from the name so that loading fails with the download hint.
        low = repo_id.lower()
        for hint, family in (("clip", "clip"), ("dino", "dino"), ("vit", "vit")):
            if hint in low:
                return family  # type: ignore[return-value]
        raise
    return _family_from_config(path, repo_id)


def resolve_embedder(ref: str) -> EmbedderSpec:
    """A registry name, a Hub id, or a local folder (config.json with model_type clip /
    dinov2 / vit) -> its spec. A Hub id of a registry model gives the registry spec."""
    ref = (ref or "").strip()
    if ref in EMBEDDERS:
        return EMBEDDERS[ref]
    if ref in TEST_EMBEDDERS and test_models_enabled():
        return TEST_EMBEDDERS[ref]
    for spec in EMBEDDERS.values():
        if spec.repo_id == ref:
            return spec
    path = Path(ref).expanduser()
    if ref and path.exists():
        if not (path.is_dir() and (path / "config.json").exists()):
            raise UnknownModelError(
                f"{ref!r} is not a folder with a config.json: give a folder saved with "
                "`save_pretrained` from a CLIP, DINOv2 or ViT model."
            )
        family = _family_from_config(path / "config.json", ref)
        return EmbedderSpec(str(path), family, str(path), f"Local {family} model folder.")
    if _looks_like_hub_id(ref):
        family = _hub_family(ref)
        return EmbedderSpec(ref, family, ref, f"Hugging Face Hub {family} model {ref}.")
    raise UnknownModelError(
        f"Unknown embedder {ref!r}. Choose one of: {', '.join(available_embedders())}; or give "
        "a Hub id (owner/name) or a local folder of a CLIP, DINOv2 or ViT model."
    )


# ------------------------------------------------------------------ revisions (cache keys)


def _hub_revision(repo_id: str, subfolder: str | None = None) -> str:
    """The commit hash of the cached snapshot of ``repo_id`` (``"unknown"`` if not cached)."""
    from huggingface_hub import try_to_load_from_cache

    filename = f"{subfolder}/config.json" if subfolder else "config.json"
    path = try_to_load_from_cache(repo_id, filename)
    if isinstance(path, str):
        parts = Path(path).parts
        if "snapshots" in parts and parts.index("snapshots") + 1 < len(parts):
            return parts[parts.index("snapshots") + 1]
    return "unknown"


def _local_revision(paths: list[Path]) -> str:
    """A fingerprint of local files: config contents, and name/size/mtime of the rest."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(paths):
        try:
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns};".encode())
            if p.suffix == ".json" and st.st_size < 1_000_000:
                h.update(p.read_bytes())
        except OSError:
            h.update(f"{p.name}:missing;".encode())
    return "local-" + h.hexdigest()[:16]


def _folder_files(folder: Path) -> list[Path]:
    return [
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix in (".json", ".safetensors", ".bin", ".txt", ".pth")
    ]


def model_revision(spec: VAESpec | EmbedderSpec) -> str:
    """What identifies the weights behind ``spec`` for cache keys.

    ``"test"`` for the built-in test models, the Hub snapshot's commit hash for Hub models
    (``"unknown"`` while not cached), ``"local-<fingerprint>"`` for local files.
    """
    if isinstance(spec, EmbedderSpec):
        if spec.is_test or not spec.repo_id:
            return "test"
        path = Path(spec.repo_id)
        return (
            _local_revision(_folder_files(path)) if path.exists() else _hub_revision(spec.repo_id)
        )
    if spec.kind == "test":
        return "test"
    if spec.kind == "taesd-local":
        return _local_revision([p for p in (spec.encoder_path, spec.decoder_path) if p])
    if spec.repo_id and Path(spec.repo_id).exists():
        return _local_revision(_folder_files(Path(spec.repo_id)))
    if spec.repo_id:
        return _hub_revision(spec.repo_id, spec.subfolder)
    return "unknown"


def vae_dtype(spec: VAESpec, device: torch.device | str | None = None) -> torch.dtype:
    """The dtype :func:`load_vae` runs ``spec`` in on ``device`` (default: :func:`pick_device`)."""
    return _dtype_for(spec, torch.device(device) if device is not None else pick_device())


def embedder_dtype(device: torch.device | str | None = None) -> torch.dtype:
    """fp16 on CUDA for the forward pass, fp32 elsewhere (outputs are always float32)."""
    device = torch.device(device) if device is not None else pick_device()
    return torch.float16 if device.type == "cuda" else torch.float32


# ------------------------------------------------------------------ batching with OOM retry


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA (or MPS / CPU allocator) out-of-memory error."""
    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def default_batch_size(device: torch.device | str | None = None) -> int:
    """64 on a CPU or Apple GPU, 256 on CUDA (halved automatically on out-of-memory)."""
    device = torch.device(device) if device is not None else pick_device()
    return 256 if device.type == "cuda" else 64


def run_batched(
    fn: Callable[[int, int], object],
    n: int,
    batch_size: int,
    progress: Callable[[float, str], None] | None = None,
    desc: str = "embedding",
) -> list:
    """Call ``fn(start, stop)`` over ``range(n)`` in batches; returns the list of results.

    On an out-of-memory error the same batch is retried at half the batch size (and the
    smaller size is kept), down to 1; out of memory at 1 raises :class:`ExplorerError`.
    ``progress(fraction, description)`` is called after each batch; without it a tqdm bar is
    shown (on a terminal only).
    """
    import logging

    from tqdm.auto import tqdm

    from .errors import ExplorerError

    size, start, out = max(1, int(batch_size)), 0, []
    bar = tqdm(total=n, desc=desc, leave=False, disable=True if progress else None)
    try:
        while start < n:
            stop = min(n, start + size)
            failed = False
            try:
                out.append(fn(start, stop))
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                if stop - start == 1:
                    raise ExplorerError(
                        f"Out of memory while {desc}, even one image at a time: choose a "
                        "smaller model or free some GPU memory."
                    ) from exc
                size, failed = max(1, (stop - start) // 2), True
                logging.getLogger(__name__).warning(
                    "out of memory while %s: retrying with batch size %d", desc, size
                )
            if failed:  # outside the except block, so the failed batch's tensors are freed
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            bar.update(stop - start)
            start = stop
            if progress is not None:
                progress(start / n, f"{desc}: {start}/{n}")
    finally:
        bar.close()
    return out


# ------------------------------------------------------------------ the wrapper


def _l2_normalise(x: torch.Tensor) -> np.ndarray:
    x = x.float()
    return torch.nn.functional.normalize(x, dim=-1).cpu().numpy().astype(np.float32, copy=False)


def pool_tokens(hidden: torch.Tensor, pooling: str) -> torch.Tensor:
    """(N,T,D) tokens, CLS first -> (N,D) CLS, (N,D) mean of the others, or (N,2D) both."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "mean":
        return hidden[:, 1:].mean(dim=1)
    if pooling == "cls+mean":
        return torch.cat([hidden[:, 0], hidden[:, 1:].mean(dim=1)], dim=-1)
    raise ValueError(f"unknown pooling {pooling!r}")


class Embedder:
    """A loaded image embedder: PIL images in, L2-normalised float32 rows out."""

    def __init__(
        self,
        spec: EmbedderSpec,
        model: torch.nn.Module,
        processor: object,
        tokenizer: object | None,
        device: torch.device,
        dtype: torch.dtype,
        revision: str,
    ):
        self.spec = spec
        self.model = model
        self.processor = processor
        self.tokenizer = tokenizer
        self.device = device
        self.dtype = dtype
        self.revision = revision
        self.lock = threading.Lock()  # one forward pass at a time per model

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def family(self) -> str:
        return self.spec.family

    @property
    def pooling(self) -> str:
        return self.spec.pooling

    def check_pooling(self, pooling: str | None) -> str:
        pooling = pooling or self.pooling
        if pooling not in POOLINGS[self.family]:
            from .errors import ExplorerError

            raise ExplorerError(
                f"{self.name} ({self.family}) cannot pool {pooling!r}; choose one of "
                f"{', '.join(POOLINGS[self.family])}."
            )
        return pooling

    def dim(self, pooling: str | None = None) -> int:
        """Length of one embedding row."""
        cfg = self.model.config
        if self.family == "clip":
            return int(cfg.projection_dim)
        return int(cfg.hidden_size) * (2 if self.check_pooling(pooling) == "cls+mean" else 1)

    def preprocessing(self, pooling: str | None = None) -> str:
        return embedder_preprocessing(self.processor, self.check_pooling(pooling), self.dtype)

    def cache_key(self, pooling: str | None = None) -> tuple[str, str, str, str]:
        """(family, model id, revision, preprocessing) for :mod:`explorer.cache`."""
        return (
            self.family,
            self.spec.repo_id or self.name,
            self.revision,
            self.preprocessing(pooling),
        )

    def describe(self) -> str:
        return (
            f"{self.name} ({self.family}, {self.spec.source}), {self.dim()}-d, pooling "
            f"{self.pooling}, {str(self.dtype).replace('torch.', '')} on {self.device.type}"
        )

    def __repr__(self) -> str:
        return f"Embedder({self.describe()})"

    @torch.no_grad()
    def _embed_batch(self, images: list, pooling: str) -> np.ndarray:
        # Not every processor converts to RGB (ViT's does not): do it the app's way first.
        from .imaging import _to_rgb

        images = [im if im.mode == "RGB" else _to_rgb(im) for im in images]
        inputs = self.processor(images=images, return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.device, self.dtype)
        with self.lock:
            if self.family == "clip":
                feats = self.model.get_image_features(pixel_values=pixels).pooler_output
            else:
                feats = pool_tokens(self.model(pixel_values=pixels).last_hidden_state, pooling)
            return _l2_normalise(feats)

    def embed_images(
        self,
        images,
        batch_size: int | None = None,
        progress: Callable[[float, str], None] | None = None,
        pooling: str | None = None,
    ) -> np.ndarray:
        """PIL images (any size/mode; alpha composited on white) -> (N, D) float32,
        L2-normalised rows.

        Batched (default :func:`default_batch_size`), halving the batch on out-of-memory.
        """
        images = list(images)
        pooling = self.check_pooling(pooling)
        if not images:
            return np.zeros((0, self.dim(pooling)), np.float32)
        parts = run_batched(
            lambda a, b: self._embed_batch(images[a:b], pooling),
            len(images),
            batch_size or default_batch_size(self.device),
            progress,
            f"embedding with {self.name}",
        )
        return np.concatenate(parts, axis=0)

    @torch.no_grad()
    def _embed_text_batch(self, texts: list[str]) -> np.ndarray:
        max_len = int(self.model.config.text_config.max_position_embeddings)
        tokens = self.tokenizer(
            texts, padding=True, truncation=True, max_length=max_len, return_tensors="pt"
        )
        with self.lock:
            feats = self.model.get_text_features(
                input_ids=tokens["input_ids"].to(self.device),
                attention_mask=tokens["attention_mask"].to(self.device),
            ).pooler_output
            return _l2_normalise(feats)

    def embed_texts(self, texts, batch_size: int | None = None) -> np.ndarray:
        """CLIP only: strings -> (N, D) float32 L2-normalised text features (same space as
        :meth:`embed_images`)."""
        if self.family != "clip" or self.tokenizer is None:
            from .errors import ExplorerError

            raise ExplorerError(
                f"{self.name} is a {self.family} model and cannot embed text: only CLIP "
                "models share a space with text. Pick a clip space."
            )
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim()), np.float32)
        parts = run_batched(
            lambda a, b: self._embed_text_batch(texts[a:b]),
            len(texts),
            batch_size or default_batch_size(self.device),
            None,
            f"embedding text with {self.name}",
        )
        return np.concatenate(parts, axis=0)


def embedder_preprocessing(processor: object, pooling: str, dtype: torch.dtype) -> str:
    """A string that changes whenever the pixels the model sees or the pooling change."""
    import hashlib

    config = processor.to_json_string() if hasattr(processor, "to_json_string") else repr(processor)
    digest = hashlib.sha256(config.encode()).hexdigest()[:12]
    return (
        f"{type(processor).__name__}:{digest};pooling={pooling};{str(dtype).replace('torch.', '')}"
    )


# ------------------------------------------------------------------ loading


def _test_clip_tokenizer():
    """A byte-level CLIP tokenizer with no merges: every character is a token. Offline."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(alphabet)}
    vocab.update({c + "</w>": len(alphabet) + i for i, c in enumerate(alphabet)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def _test_processor(family: str) -> object:
    import transformers as tf

    if family == "clip":
        return tf.CLIPImageProcessorPil(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        )
    if family == "dino":
        return tf.BitImageProcessorPil(
            size={"shortest_edge": 28},
            crop_size={"height": 28, "width": 28},
            image_mean=[0.485, 0.456, 0.406],
            image_std=[0.229, 0.224, 0.225],
        )
    return tf.ViTImageProcessorPil(size={"height": 32, "width": 32})


def _build_test_embedder(spec: EmbedderSpec) -> tuple[torch.nn.Module, object, object | None]:
    """Tiny seeded random model + processor (+ tokenizer) of ``spec.family``."""
    import transformers as tf

    small = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
    processor = _test_processor(spec.family)
    torch.manual_seed(0)
    if spec.family == "clip":
        tokenizer = _test_clip_tokenizer()
        eos, bos = tokenizer.eos_token_id, tokenizer.bos_token_id
        text = dict(
            small, intermediate_size=64, vocab_size=len(tokenizer), max_position_embeddings=77
        )
        text.update(bos_token_id=bos, eos_token_id=eos, pad_token_id=eos, projection_dim=16)
        vision = dict(small, intermediate_size=64, image_size=32, patch_size=8, projection_dim=16)
        config = tf.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
        return tf.CLIPModel(config), processor, tokenizer
    if spec.family == "dino":
        config = tf.Dinov2Config(**small, image_size=28, patch_size=14)
        return tf.Dinov2Model(config), processor, None
    config = tf.ViTConfig(**small, intermediate_size=64, image_size=32, patch_size=8)
    return tf.ViTModel(config, add_pooling_layer=False), processor, None


_PROCESSORS: LRU[object] = LRU(16)


def _processor_for(spec: EmbedderSpec) -> object:
    """The image processor of ``spec`` (PIL backend), remembered: cheap without the weights."""
    found = _PROCESSORS.get(spec)
    if found is not None:
        return found
    if spec.is_test:
        processor = _test_processor(spec.family)
    else:
        from transformers import AutoImageProcessor

        processor = from_pretrained(
            AutoImageProcessor.from_pretrained,
            spec.repo_id,
            f"The image processor of {spec.name!r}",
            backend="pil",
        )
    return _PROCESSORS.put(spec, processor)


def embedder_cache_key(
    ref: str, device: torch.device | str | None = None, pooling: str | None = None
) -> tuple[str, str, str, str]:
    """:meth:`Embedder.cache_key` without loading the weights (reads the processor only)."""
    spec = resolve_embedder(ref)
    pooling = pooling or spec.pooling
    if pooling not in POOLINGS[spec.family]:
        from .errors import ExplorerError

        raise ExplorerError(
            f"{spec.name} ({spec.family}) cannot pool {pooling!r}; choose one of "
            f"{', '.join(POOLINGS[spec.family])}."
        )
    preprocessing = embedder_preprocessing(_processor_for(spec), pooling, embedder_dtype(device))
    return (spec.family, spec.repo_id or spec.name, model_revision(spec), preprocessing)


def _load_embedder(spec: EmbedderSpec, device: torch.device) -> Embedder:
    dtype = embedder_dtype(device)
    if spec.is_test:
        model, processor, tokenizer = _build_test_embedder(spec)
    else:
        from transformers import CLIPModel, CLIPTokenizer, Dinov2Model, ViTModel

        what = f"Embedder {spec.name!r}"
        cls = {"clip": CLIPModel, "dino": Dinov2Model, "vit": ViTModel}[spec.family]
        kwargs: dict = {"dtype": dtype, "use_safetensors": True}
        if spec.family == "vit":
            kwargs["add_pooling_layer"] = False  # the CLS token is the embedding
        try:
            processor = _processor_for(spec)
            tokenizer = (
                from_pretrained(CLIPTokenizer.from_pretrained, spec.repo_id, what)
                if spec.family == "clip"
                else None
            )
            model = from_pretrained(cls.from_pretrained, spec.repo_id, what, **kwargs)
        except ModelUnavailableError:
            raise
        except Exception as exc:  # a broken folder, pickled weights only, another architecture
            raise ModelUnavailableError(
                f"Could not load {spec.name!r} as a {spec.family} model ({cls.__name__}, "
                f"safetensors weights): {exc}. Check the folder or Hub id."
            ) from exc
    model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
    return Embedder(spec, model, processor, tokenizer, device, dtype, model_revision(spec))


def load_embedder(ref: str, device: torch.device | str | None = None) -> Embedder:
    """Resolve ``ref`` and return the shared loaded :class:`Embedder` (once per process)."""
    spec = resolve_embedder(ref)
    device = torch.device(device) if device is not None else pick_device()
    key = ("embedder", spec.name, device.type)

    def build() -> Embedder:
        start = time.perf_counter()
        embedder = _load_embedder(spec, device)
        _log.info("loaded %s in %.2f s", spec.name, time.perf_counter() - start)
        return embedder

    return MODEL_CACHE.get_or_build(key, build)


def _download_embedder(name: str, log: Callable[[str], None]) -> str | None:
    from huggingface_hub import snapshot_download

    spec = resolve_embedder(name)
    if not spec.repo_id or Path(spec.repo_id).exists():
        log(f"skip {name}: not a Hub model")
        return None
    log(f"downloading {name} ({spec.repo_id}) ...")
    try:
        snapshot_download(spec.repo_id, allow_patterns=EMBEDDER_FILES)
    except Exception as exc:
        raise ModelUnavailableError(
            f"Could not download {spec.repo_id}: {exc}. Check your internet connection."
        ) from exc
    return spec.repo_id


__all__ += [
    "EMBEDDERS",
    "TEST_EMBEDDERS",
    "Embedder",
    "EmbedderSpec",
    "available_embedders",
    "default_embedder",
    "default_embedders",
    "embedder_cache_key",
    "load_embedder",
    "model_revision",
    "resolve_embedder",
    "run_batched",
]
