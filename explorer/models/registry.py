"""Which models exist and which to use: names -> specs (tables in :mod:`explorer.models.specs`), defaults.

A model is named by a registry name (``sd-vae-ft-mse``, ``clip-vit-b32``, ...), ``local:<name>``
(a TAESD-family checkpoint pair in the models folder), a local file or folder, a Hugging Face Hub
id, or the name of a model registered in code. Nothing here imports torch: loading is
:mod:`explorer.models.vae` and :mod:`explorer.models.embedders`.

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
from dataclasses import replace
from pathlib import Path
from typing import Any

from explorer.core import settings
from explorer.core.errors import ExplorerError, ModelUnavailableError, UnknownModelError
from explorer.models import hub

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

from explorer.models.specs import (
    _FAMILY_OF_MODEL_TYPE,
    DOWNLOAD_HINT,
    EMBEDDER_FAMILIES,
    EMBEDDERS,
    POOLINGS,
    REGISTRY,
    UNETS,
    EmbedderFamily,
    EmbedderSpec,
    UNetSpec,
    VAESpec,
)

# --------------------------------------------------------------------------- registering


_REGISTERED_VAES: dict[str, VAESpec] = {}
_REGISTERED_EMBEDDERS: dict[str, EmbedderSpec] = {}
_lock = threading.RLock()  # re-entrant: a plugin's register() may use the registry
_plugins: set[str] = set()


def register_vae(spec: VAESpec, build: Callable[[], Any]) -> VAESpec:
    """Make ``spec.name`` a VAE that ``build()`` constructs in this process: a diffusers
    ``AutoencoderKL`` for ``spec.kind == "kl"``, an :class:`explorer.models.taesd.TinyAutoencoder` for
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
    from explorer.models.checkpoints import (
        find_checkpoints,  # imports torch: only once a folder is scanned
    )

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
        from explorer.models.checkpoints import resolve_checkpoint_path  # imports torch

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
    from explorer.core import gpu

    if gpu.zero_gpu():
        return True
    from explorer.models.device import (
        pick_device,  # imports torch: only asked once a GPU model is cached
    )

    return pick_device().type == "cuda"


def default_vae(folder: str | os.PathLike | None = None) -> str:
    """The VAE selected at start: EXPLORER_DEFAULT_VAE if set; else the first usable now of
    sd-vae-ft-mse (on CUDA or a ZeroGPU Space only), taesd, the first local checkpoint in
    ``folder`` (default EXPLORER_MODELS_DIR), the first registered model, the first registry
    VAE in the Hugging Face cache (a class pack's, say); else taesd (after `python -m explorer
    download`)."""
    chosen = settings.get().default_vae
    if chosen:
        return chosen  # the operator's choice; if it cannot load, loading says why
    if hub.is_cached(REGISTRY["sd-vae-ft-mse"]) and _on_gpu():
        return "sd-vae-ft-mse"
    if hub.is_cached(REGISTRY["taesd"]):
        return "taesd"
    usable = [*local_models(folder), *_registered_vaes()]
    usable += [n for n, s in REGISTRY.items() if hub.is_cached(s)]
    return next(iter(usable), "taesd")


def default_embedder(family: str) -> str:
    """The model a bare family name (``clip``, ``dino``, ``vit``) means: the family's registry
    default if it is cached, else the first registered model of the family, else the first
    registry model of the family in the Hugging Face cache, else the registry default (after
    `python -m explorer download`)."""
    _check_family(family)
    specs = [s for s in EMBEDDERS.values() if s.family == family]
    default = next((s for s in specs if s.default), specs[0])
    if hub.is_cached(default):
        return default.name
    usable = [s.name for s in _registered_embedders().values() if s.family == family]
    usable += [s.name for s in specs if hub.is_cached(s)]
    return next(iter(usable), default.name)


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
