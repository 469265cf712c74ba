"""Model registry and cached loaders: the only module that imports diffusers/transformers.

Every VAE, whatever its family, is wrapped in :class:`VAE`, which speaks one convention:
images are ``(N,3,H,W)`` float in [0, 1]; latents are *scaled* latents, ``(z - shift) * scale``,
the space a diffusion model sees and the one that is meant to be close to N(0, 1).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from . import taesd
from .errors import ModelUnavailableError, UnknownModelError

Kind = Literal["kl", "tiny", "taesd-local", "test"]
DOWNLOAD_HINT = (
    "Run `python -m explorer download` once on a machine with internet to fill the "
    "Hugging Face cache, or choose a local TAESD-family checkpoint folder."
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
    value = os.environ.get("EXPLORER_MODELS_DIR", "").strip()
    return Path(value).expanduser() if value else None


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
    """The models `python -m explorer download` prefetches."""
    return [s.name for s in REGISTRY.values() if s.default]


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
    if os.environ.get("EXPLORER_DEFAULT_VAE"):
        return os.environ["EXPLORER_DEFAULT_VAE"]
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
    """False when HF_HUB_OFFLINE is set or the Hub's host cannot be reached quickly."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    host = constants.ENDPOINT.split("://", 1)[-1].split("/", 1)[0]
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


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

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> Posterior:
        """(N,3,H,W) in [0,1], H and W multiples of 8 -> scaled posterior (N,C,H/8,W/8), float32 on CPU."""
        x = x.to(self.device, self.dtype)
        with self.lock:
            if self.spec.kind == "taesd-local":
                mean, std = self.module.encode(x), None
            elif not self.stochastic:
                mean, std = self.module.encode(x * 2 - 1).latents, None
            else:
                dist = self.module.encode(x * 2 - 1).latent_dist
                mean, std = dist.mean, dist.std
            self._sync()
        mean = (mean.float().cpu() - self.shift_factor) * self.scaling_factor
        std = None if std is None else std.float().cpu() * self.scaling_factor
        return Posterior(mean, std)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(N,C,h,w) scaled latents -> (N,3,8h,8w) float32 in [0,1] on CPU."""
        raw = (z.float() / self.scaling_factor + self.shift_factor).to(self.device, self.dtype)
        with self.lock:
            if self.spec.kind == "taesd-local":
                out = self.module.decode(raw)
            else:
                out = (self.module.decode(raw).sample + 1) / 2
            self._sync()
        return out.float().cpu().clamp(0, 1)


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
        kwargs = {"torch_dtype": dtype}
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


class _ModelCache:
    """Loaded models shared by all sessions: bounded LRU, one load per key at a time."""

    def __init__(self, max_items: int):
        self.max_items = max_items
        self._items: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}

    def get(self, key: tuple, build: Callable[[], object]) -> object:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            value = build()
            with self._lock:
                self._items[key] = value
                while len(self._items) > self.max_items:
                    self._items.popitem(last=False)
                self._loading.pop(key, None)
            return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


MODEL_CACHE = _ModelCache(int(os.environ.get("EXPLORER_MAX_MODELS", "4")))
LOAD_TIMES: dict[str, float] = {}


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
        LOAD_TIMES[spec.name] = time.perf_counter() - start
        return vae

    return MODEL_CACHE.get(key, build)


def download(names: list[str] | None = None, log: Callable[[str], None] = print) -> list[str]:
    """Prefetch models into the Hugging Face cache; returns the repo ids fetched."""
    from huggingface_hub import snapshot_download

    fetched = []
    for name in names or default_models():
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
