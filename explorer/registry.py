"""Which models exist and which to use: the VAE and embedder tables, names -> specs, defaults.

A model is named by a registry name (``sd-vae-ft-mse``, ``clip-vit-b32``, ...), ``local:<name>``
(a TAESD-family checkpoint pair in the models folder), a local file or folder, a Hugging Face Hub
id, or the name of a model registered in code. Nothing here imports torch: loading is
:mod:`explorer.vae` and :mod:`explorer.embedders`.

**Your own models.** A plugin is a module that calls :func:`register_vae` / :func:`register_embedder`
with a spec and a ``build`` function that constructs the model in this process. List plugins in
``EXPLORER_PLUGINS`` (comma-separated importable module names): each is imported once, the first
time the registry is used, and its ``register()`` function, if it has one, is called.
``tests/tiny_models.py`` is one (the tiny seeded random models the tests run on).
"""

from __future__ import annotations

import importlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from . import hub, settings
from .errors import ExplorerError, ModelUnavailableError, UnknownModelError

__all__ = [
    "DOWNLOAD_HINT",
    "EMBEDDERS",
    "EMBEDDER_FAMILIES",
    "POOLINGS",
    "REGISTRY",
    "UNETS",
    "EmbedderSpec",
    "UNetSpec",
    "VAESpec",
    "available_embedders",
    "available_models",
    "available_unets",
    "default_embedder",
    "default_embedders",
    "default_models",
    "default_unet",
    "default_vae",
    "is_usable",
    "local_models",
    "models_dir",
    "register_embedder",
    "register_unet",
    "register_vae",
    "resolve",
    "resolve_embedder",
    "resolve_unet",
]

Kind = Literal["kl", "tiny", "taesd-local", "vq"]
EmbedderFamily = Literal["clip", "dino", "vit"]
EMBEDDER_FAMILIES: tuple[str, ...] = ("clip", "dino", "vit")
POOLINGS: dict[str, tuple[str, ...]] = {
    "clip": ("projected",),
    "dino": ("cls", "mean", "cls+mean"),
    "vit": ("cls", "mean", "cls+mean"),
}
_FAMILY_OF_MODEL_TYPE = {"clip": "clip", "dinov2": "dino", "vit": "vit"}
DOWNLOAD_HINT = (
    "Run `python -m explorer download` once on a machine with internet to fill the "
    "Hugging Face cache (for a VAE, a local TAESD-family checkpoint folder works offline too)."
)


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class VAESpec:
    """What the explorer needs to know about one autoencoder, before loading it.

    ``kind``: ``"kl"`` a diffusers AutoencoderKL (posterior mean and std), ``"tiny"`` a
    TAESD-family autoencoder in diffusers' AutoencoderTiny format (deterministic),
    ``"taesd-local"`` a TAESD-family ``<name>_encoder`` / ``<name>_decoder`` file pair,
    ``"vq"`` a diffusers VQModel (continuous pre-quantisation latent; decode snaps each latent
    pixel to its nearest codebook entry). A VQ model's scale and shift are the spec's own: the
    Hub configs carry diffusers' default 0.18215, which the latent-diffusion VQ pipelines ignore.
    ``build`` (models registered in code): constructs the module in this process; ``revision``
    then identifies its weights in embedding-cache keys (None: its rows are never cached).
    """

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
    revision: str | None = None
    build: Callable[[], Any] | None = field(default=None, compare=False, repr=False)

    @property
    def stochastic(self) -> bool:
        """KL VAEs have a posterior with a std; tiny autoencoders are deterministic."""
        return self.kind == "kl"

    @property
    def source(self) -> str:
        if self.build is not None:
            return f"registered by {self.build.__module__}"
        if self.repo_id:
            return self.repo_id + (f" ({self.subfolder})" if self.subfolder else "")
        return str(self.encoder_path.parent) if self.encoder_path else ""


@dataclass(frozen=True)
class EmbedderSpec:
    """What the explorer needs to know about one image embedder, before loading it.

    ``extra`` may hold ``pooling`` (dino/vit: ``"cls"``, ``"mean"`` or ``"cls+mean"``).
    ``build`` and ``revision``: as for :class:`VAESpec` (``build()`` returns the model, its image
    processor and, for CLIP, its tokenizer).
    """

    name: str
    family: EmbedderFamily
    repo_id: str | None
    description: str
    default: bool = False
    extra: dict = field(default_factory=dict, compare=False, hash=False)
    revision: str | None = None
    build: Callable[[], tuple[Any, Any, Any]] | None = field(
        default=None, compare=False, repr=False
    )

    @property
    def pooling(self) -> str:
        return self.extra.get("pooling", POOLINGS[self.family][0])

    def check_pooling(self, pooling: str | None) -> str:
        """``pooling`` (default: the spec's own) if this family can pool so, else ExplorerError."""
        pooling = pooling or self.pooling
        if pooling not in POOLINGS[self.family]:
            raise ExplorerError(
                f"{self.name} ({self.family}) cannot pool {pooling!r}; choose one of "
                f"{', '.join(POOLINGS[self.family])}."
            )
        return pooling

    @property
    def source(self) -> str:
        if self.build is not None:
            return f"registered by {self.build.__module__}"
        return self.repo_id or ""


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
            "ldm-vq-f4-celebahq",
            "vq",
            "CompVis/ldm-celebahq-256",
            "vqvae",
            latent_channels=3,
            half=None,
            description="Latent-diffusion VQ-f4 autoencoder (3 channels, 8192 codes) of the "
            "CelebA-HQ LDM; faces. Apache-2.0; .bin weights, loaded with weights_only.",
        ),
        VAESpec(
            "ldm-vq-f4-openimages",
            "vq",
            "CompVis/ldm-super-resolution-4x-openimages",
            "vqvae",
            latent_channels=3,
            half=None,
            description="Latent-diffusion VQ-f4 autoencoder (3 channels, 8192 codes) of the "
            "4x super-resolution LDM, trained on OpenImages. Apache-2.0; .bin weights, loaded "
            "with weights_only.",
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


# --------------------------------------------------------------------------- registering


_REGISTERED_VAES: dict[str, VAESpec] = {}
_REGISTERED_EMBEDDERS: dict[str, EmbedderSpec] = {}
_lock = threading.RLock()  # re-entrant: a plugin's register() may use the registry
_plugins: set[str] = set()


def register_vae(spec: VAESpec, build: Callable[[], Any]) -> VAESpec:
    """Make ``spec.name`` a VAE that ``build()`` constructs in this process: a diffusers
    ``AutoencoderKL`` for ``spec.kind == "kl"``, an :class:`explorer.taesd.TinyAutoencoder` for
    ``"tiny"`` and a diffusers ``VQModel`` for ``"vq"`` (both scaled by ``spec.scaling_factor`` /
    ``spec.shift_factor``). Set ``spec.revision``
    to let the embedding cache keep its rows. Returns the registered spec."""
    if spec.kind not in ("kl", "tiny", "vq"):
        raise ValueError(f"register_vae: kind must be 'kl', 'tiny' or 'vq', not {spec.kind!r}")
    return _register(_REGISTERED_VAES, REGISTRY, replace(spec, build=build))


def register_embedder(
    spec: EmbedderSpec, build: Callable[[], tuple[Any, Any, Any]]
) -> EmbedderSpec:
    """Make ``spec.name`` an embedder of ``spec.family`` that ``build()`` constructs in this
    process: ``(model, image processor, tokenizer or None)``, the model a transformers
    ``CLIPModel`` / ``Dinov2Model`` / ``ViTModel`` (or one that answers the same calls). Its cache
    key is computed by building it. Returns the registered spec."""
    _check_family(spec.family)
    return _register(_REGISTERED_EMBEDDERS, EMBEDDERS, replace(spec, build=build))


def _register(table: dict, builtin: dict, spec: Any) -> Any:
    """Add ``spec`` to ``table``; the same spec and build again change nothing."""
    with _lock:
        old = table.get(spec.name)
        if old is not None and old == spec and old.build is spec.build:
            return old
        if spec.name in builtin or old is not None or spec.name.startswith("local:"):
            raise ValueError(
                f"Cannot register {spec.name!r}: the name is taken; choose another name."
            )
        table[spec.name] = spec
    return spec


def _load_plugins() -> None:
    """Import each EXPLORER_PLUGINS module not imported yet and call its ``register()``."""
    for name in settings.get().plugins:
        if name in _plugins:
            continue
        with _lock:
            if name in _plugins:
                continue
            _plugins.add(name)
            try:
                register = getattr(importlib.import_module(name), "register", None)
                if callable(register):
                    register()
            except Exception as exc:
                _plugins.discard(name)
                raise ExplorerError(
                    f"EXPLORER_PLUGINS names {name!r}, which failed to load "
                    f"({type(exc).__name__}: {exc}); fix the module or take it off the list."
                ) from exc


def _registered_vaes() -> dict[str, VAESpec]:
    _load_plugins()
    return _REGISTERED_VAES


def _registered_embedders() -> dict[str, EmbedderSpec]:
    _load_plugins()
    return _REGISTERED_EMBEDDERS


# --------------------------------------------------------------------------- VAEs


def models_dir() -> Path | None:
    """The folder of local TAESD-family checkpoints named by EXPLORER_MODELS_DIR, if any."""
    return settings.get().models_dir


def local_models(folder: str | os.PathLike | None = None) -> dict[str, VAESpec]:
    """Specs for every encoder/decoder pair in ``folder`` (default: EXPLORER_MODELS_DIR)."""
    folder = Path(folder).expanduser() if folder else models_dir()
    if folder is None:
        return {}
    from .checkpoints import find_checkpoints  # imports torch: only once a folder is scanned

    return {
        f"local:{prefix}": _local_spec(f"local:{prefix}", enc, dec)
        for prefix, (enc, dec) in find_checkpoints(folder).items()
    }


def _local_spec(name: str, enc: Path, dec: Path) -> VAESpec:
    return VAESpec(
        name,
        "taesd-local",
        encoder_path=enc,
        decoder_path=dec,
        latent_channels=0,
        description=f"Local TAESD-family checkpoint {enc.name} + {dec.name}.",
    )


def available_models(folder: str | os.PathLike | None = None) -> list[str]:
    """Registry names, then local checkpoints found in ``folder``, then registered models."""
    return list(REGISTRY) + list(local_models(folder)) + list(_registered_vaes())


def resolve(ref: str, folder: str | os.PathLike | None = None) -> VAESpec:
    """A registry name, a registered name, ``local:<prefix>``, a local file/folder, or a Hub id
    -> its spec."""
    ref = (ref or "").strip()
    found = REGISTRY.get(ref) or _registered_vaes().get(ref)
    if found is not None:
        return found
    local = local_models(folder)
    if ref in local:
        return local[ref]
    path = Path(ref).expanduser()
    if ref and path.exists():
        if path.is_dir() and (path / "config.json").exists():
            cls = _read_config(path / "config.json").get("_class_name", "AutoencoderKL")
            kinds = {"AutoencoderTiny": "tiny", "VQModel": "vq"}
            return VAESpec(
                str(path),
                kinds.get(cls, "kl"),  # type: ignore[arg-type]
                repo_id=str(path),
                latent_channels=0,
                description=f"Local diffusers {cls} folder.",
            )
        from .checkpoints import resolve_checkpoint_path  # imports torch

        enc, dec = resolve_checkpoint_path(path)
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
    raise UnknownModelError(
        f"Unknown model {ref!r}. Choose one of: {', '.join(available_models(folder))}; or give a "
        "Hub id (owner/name) or the path of a local checkpoint file or folder."
    )


def _looks_like_hub_id(ref: str) -> bool:
    parts = ref.split("/")
    return len(parts) == 2 and all(p and not p.startswith(".") for p in parts) and " " not in ref


def _read_config(config: Path | str) -> dict:
    try:
        return json.loads(Path(config).read_text())
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"Could not read {config}: {exc}. Check the folder.") from exc


# --------------------------------------------------------------------------- embedders


def _check_family(family: str) -> str:
    if family not in EMBEDDER_FAMILIES:
        raise UnknownModelError(
            f"Unknown embedder family {family!r}; choose one of {', '.join(EMBEDDER_FAMILIES)}."
        )
    return family


def available_embedders(family: str | None = None) -> list[str]:
    """Registry embedder names, then registered ones; of ``family`` if given."""
    specs = [*EMBEDDERS.values(), *_registered_embedders().values()]
    if family is not None:
        _check_family(family)
        specs = [s for s in specs if s.family == family]
    return [s.name for s in specs]


def _family_from_config(config: Path | str, where: str) -> EmbedderFamily:
    model_type = _read_config(config).get("model_type", "")
    if model_type not in _FAMILY_OF_MODEL_TYPE:
        raise UnknownModelError(
            f"{where} is a {model_type or 'unknown'!r} model; the explorer embeds images with "
            "clip, dinov2 or vit models only."
        )
    return _FAMILY_OF_MODEL_TYPE[model_type]  # type: ignore[return-value]


def _hub_family(repo_id: str) -> EmbedderFamily:
    """The family of a Hub model: from its config.json (cache first), else from its name."""
    try:
        config = hub.model_file(repo_id, "config.json", "The config of the Hub model")
    except ModelUnavailableError:
        # Offline: guess from the name so that loading fails with the download hint.
        low = repo_id.lower()
        for hint, family in (("clip", "clip"), ("dino", "dino"), ("vit", "vit")):
            if hint in low:
                return family  # type: ignore[return-value]
        raise
    return _family_from_config(config, repo_id)


def resolve_embedder(ref: str) -> EmbedderSpec:
    """A registry name, a registered name, a Hub id, or a local folder (config.json with
    model_type clip / dinov2 / vit) -> its spec. A Hub id of a registry model gives the registry
    spec."""
    ref = (ref or "").strip()
    found = EMBEDDERS.get(ref) or _registered_embedders().get(ref)
    if found is not None:
        return found
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


# --------------------------------------------------------------------------- defaults


def default_embedders() -> list[str]:
    """The embedders `python -m explorer download` prefetches."""
    return [s.name for s in EMBEDDERS.values() if s.default]


def default_models() -> list[str]:
    """The models `python -m explorer download` prefetches: default VAEs, then embedders."""
    return [s.name for s in REGISTRY.values() if s.default] + default_embedders()


def _on_gpu() -> bool:
    """Whether the VAEs run on CUDA. On a ZeroGPU Space yes, decided from the settings: there CUDA
    may be touched only inside a ``spaces.GPU`` handler, never while the demo is built."""
    from . import gpu

    if gpu.zero_gpu():
        return True
    from .runtime import pick_device  # imports torch: only asked once a GPU model is cached

    return pick_device().type == "cuda"


def default_vae(folder: str | os.PathLike | None = None) -> str:
    """The VAE selected at start: EXPLORER_DEFAULT_VAE if set; else the first usable now of
    sd-vae-ft-mse (on CUDA or a ZeroGPU Space only), taesd, the first local checkpoint in
    ``folder`` (default EXPLORER_MODELS_DIR), the first registered model; else taesd (after
    `python -m explorer download`)."""
    chosen = settings.get().default_vae
    if chosen:
        return chosen  # the operator's choice; if it cannot load, loading says why
    if hub.is_cached(REGISTRY["sd-vae-ft-mse"]) and _on_gpu():
        return "sd-vae-ft-mse"
    if hub.is_cached(REGISTRY["taesd"]):
        return "taesd"
    return next(iter([*local_models(folder), *_registered_vaes()]), "taesd")


def default_embedder(family: str) -> str:
    """The model a bare family name (``clip``, ``dino``, ``vit``) means: the family's registry
    default if it is cached, else the first registered model of the family, else the registry
    default (after `python -m explorer download`)."""
    _check_family(family)
    specs = [s for s in EMBEDDERS.values() if s.family == family]
    default = next((s for s in specs if s.default), specs[0])
    if hub.is_cached(default):
        return default.name
    registered = [s.name for s in _registered_embedders().values() if s.family == family]
    return next(iter(registered), default.name)


def is_usable(name: str, folder: str | os.PathLike | None = None) -> bool:
    """Whether ``name`` (a VAE or an embedder) loads without a download: registered in code,
    local files, or in the Hugging Face cache. Unknown names are not usable."""
    name = (name or "").strip()
    if name.split("@", 1)[0] in available_unets():
        return hub.is_cached(resolve_unet(name))
    try:
        spec = (
            resolve_embedder(name)
            if name in EMBEDDERS or name in _registered_embedders()
            else resolve(name, folder)
        )
    except ExplorerError:
        return False
    return hub.is_cached(spec)


# --------------------------------------------------------------------------- diffusion UNets


@dataclass(frozen=True)
class UNetSpec:
    """A Stable Diffusion pipeline whose UNet bottleneck is an embedding space (``unet:<name>``).

    ``repo_id`` holds the pipeline (subfolders ``unet``, ``text_encoder``, ``tokenizer``);
    ``vae``: the registry VAE that encodes for it (SD 1.x: sd-vae-ft-mse, whose encoder is the
    pipeline's own -- only its decoder was fine-tuned); ``resolution``: the square input size;
    ``variant``: the weight files' variant (``fp16`` halves the download; run in fp32 on a CPU).
    ``cpu_seconds_per_image``: a rough figure for the time estimate shown before a CPU run.
    ``build`` (registered in code): returns ``(UNet2DConditionModel, CLIPTextModel, tokenizer)``.
    """

    name: str
    repo_id: str | None
    vae: str
    description: str
    resolution: int = 512
    variant: str | None = "fp16"
    subfolder: str = "unet"
    cpu_seconds_per_image: float = 10.0
    revision: str | None = None
    build: Callable[[], tuple[Any, Any, Any]] | None = field(
        default=None, compare=False, repr=False
    )

    @property
    def source(self) -> str:
        if self.build is not None:
            return f"registered by {self.build.__module__}"
        return f"{self.repo_id} (unet, text_encoder, tokenizer)"


UNETS: dict[str, UNetSpec] = {
    s.name: s
    for s in [
        UNetSpec(
            "sd15-unet",
            "stable-diffusion-v1-5/stable-diffusion-v1-5",
            "sd-vae-ft-mse",
            "Stable Diffusion 1.5 UNet: mid-block features of the noised VAE latent, empty "
            "prompt (~2 GB in fp16; fetch with `python -m explorer download sd15-unet`).",
        ),
        # SDXL's UNet is left out: it also needs added_cond_kwargs (pooled text embeds of its
        # second text encoder, size and crop time ids), a second tokenizer and ~5 GB.
    ]
}
_REGISTERED_UNETS: dict[str, UNetSpec] = {}


def register_unet(spec: UNetSpec, build: Callable[[], tuple[Any, Any, Any]]) -> UNetSpec:
    """Make ``spec.name`` a UNet space that ``build()`` constructs in this process:
    ``(UNet2DConditionModel, CLIPTextModel, CLIPTokenizer)``. Returns the registered spec."""
    return _register(_REGISTERED_UNETS, UNETS, replace(spec, build=build))


def available_unets() -> list[str]:
    """Registry UNet spaces, then registered ones."""
    _load_plugins()
    return [*UNETS, *_REGISTERED_UNETS]


def resolve_unet(ref: str) -> UNetSpec:
    """A registry or registered UNet name (optionally ``name@t<T>``) -> its spec."""
    name = (ref or "").strip().split("@", 1)[0]
    _load_plugins()
    found = UNETS.get(name) or _REGISTERED_UNETS.get(name)
    if found is None:
        raise UnknownModelError(
            f"Unknown UNet {name!r}; choose one of {', '.join(available_unets())}."
        )
    return found


def default_unet() -> str | None:
    """The UNet a bare ``unet`` means: the first registry UNet that is cached, else the first
    registered one; None when none is usable without a download."""
    for name in available_unets():
        if hub.is_cached(resolve_unet(name)):
            return name
    return None
