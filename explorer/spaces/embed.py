"""One API for every embedding "space": VAE latents, CLIP, DINOv2 and a supervised ViT.

A space is named ``"<family>:<model>"`` or by a bare family name, which means the family's
default model:

* ``vae:<VAE ref>`` -- the VAE's posterior mean at a small square resolution, flattened
  (or pooled per channel). Any ref :func:`explorer.models.registry.resolve` accepts.
* ``clip:<ref>``, ``dino:<ref>``, ``vit:<ref>`` -- an image embedder
  (:func:`explorer.models.registry.resolve_embedder`): registry name, Hub id or local folder.
* ``unet:<name>[@t<T>]`` -- a Stable Diffusion UNet's pooled mid-block output for the image's
  latent noised to timestep T (default 200), see :mod:`explorer.spaces.unet`;
  ``unet:<name>@t<T>/<block>[/s<S>][/p:<caption>]`` -- any block, averaged over S noise draws,
  under a caption (:mod:`explorer.spaces.unet_blocks`);
* ``pixels``, ``colour``, ``texture`` -- the weight-free control spaces of
  :mod:`explorer.spaces.baselines` (what raw pixels, the palette and the edges alone give); each
  has one model (``pixels:16x16-rgb``, ...), computed here on the CPU, never by a runner.

:func:`embed` returns ``(N, D)`` float32 rows for any space and, given an
:class:`~explorer.spaces.cache.EmbeddingCache`, only runs the model on images it has not seen
under the same model, revision and preprocessing. Embedder rows are L2-normalised; VAE
rows are *not* (they are raw scaled latents; cosine metrics normalise anyway).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from explorer.core import gpu
from explorer.core.errors import ExplorerError
from explorer.core.progress import Progress
from explorer.images import io as imaging
from explorer.models import device as devices
from explorer.models import embedders, registry
from explorer.models.vae import VAE, load_vae
from explorer.spaces import baselines
from explorer.spaces.cache import EmbeddingCache
from explorer.spaces.keys import image_hash, vae_cache_key

FAMILIES = (
    "vae",
    "clip",
    "dino",
    "vit",
    "unet",
    *baselines.BASELINES,
)  # the keys of PLANS, in the order errors list them
CONTROLS = tuple(baselines.BASELINES)
"""The weight-free control families (pixels, colour, texture)."""
Runner = Callable[[str, list[Image.Image], "Progress | None", dict], np.ndarray]
"""Runs a space's model somewhere else (e.g. :class:`explorer.spaces.ray_engine.RayEngine`):
``(space, images, progress, embed options) -> (N, D)`` rows in the images' order."""
VAE_POOLINGS = ("flatten", "channel-mean", "channel-meanstd")


def parse_space(ref: str, folder: str | None = None) -> tuple[str, str]:
    """``"clip:clip-vit-b16"`` -> ``("clip", "clip-vit-b16")``; ``"dino"`` -> ``("dino",
    <default dino model>)``. A bare registry model name (``"dinov2-base"``,
    ``"sd-vae-ft-mse"``) is accepted too. Raises :class:`ExplorerError` on anything else."""
    text = (ref or "").strip()
    family, sep, model = text.partition(":")
    family = family.strip().lower()
    if family in CONTROLS:
        return family, _control_model(family, model.strip() if sep else "")
    if sep and family in FAMILIES:
        model = model.strip()
        return family, model or _default_model(family, folder)
    if not sep and family in FAMILIES:
        return family, _default_model(family, folder)
    if not sep and text:
        if text.split("@", 1)[0] in registry.available_unets():
            return "unet", text
        if text in registry.available_embedders():
            return registry.resolve_embedder(text).family, text
        if text in registry.REGISTRY or text in registry.available_models(folder):
            return "vae", text
    raise ExplorerError(
        f"Unknown embedding space {ref!r}. Use one of {', '.join(FAMILIES)}, optionally "
        "followed by ':<model>' (for example 'clip:clip-vit-b16', 'dino:facebook/dinov2-base' "
        "or 'vae:sdxl-vae')."
    )


def _control_model(family: str, model: str) -> str:
    """A control space's one model; ``model`` may name it or be empty."""
    own = baselines.MODELS[family]
    if model and model != own:
        raise ExplorerError(
            f"The {family} control has one form, {family}:{own} (or just {family!r}); "
            f"{model!r} is not it."
        )
    return own


def _default_model(family: str, folder: str | None = None) -> str:
    if family == "unet":
        found = registry.default_unet()
        if found is None:
            raise ExplorerError(
                "No UNet space is available here: run `python -m explorer download sd15-unet` "
                "once with internet (about 2 GB)."
            )
        return found
    return registry.default_vae(folder) if family == "vae" else registry.default_embedder(family)


# --------------------------------------------------------------------------- VAE as embedding


def _pool_latents(z: torch.Tensor, pooling: str) -> np.ndarray:
    if pooling == "flatten":
        out = z.flatten(1)
    elif pooling == "channel-mean":
        out = z.mean(dim=(2, 3))
    else:  # channel-meanstd
        out = torch.cat([z.mean(dim=(2, 3)), z.std(dim=(2, 3), correction=0)], dim=1)
    return out.float().numpy().astype(np.float32, copy=False)


def _check_vae_pooling(pooling: str | None) -> str:
    pooling = pooling or "flatten"
    if pooling not in VAE_POOLINGS:
        raise ExplorerError(
            f"Unknown VAE pooling {pooling!r}; choose one of {', '.join(VAE_POOLINGS)}."
        )
    return pooling


def vae_embedding(
    vae: VAE,
    images: Sequence[Image.Image],
    resolution: int = 64,
    pooling: str = "flatten",
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Each image centre-cropped and resized to ``resolution`` squared, encoded -> its scaled
    posterior mean, as one row.

    ``pooling``: ``"flatten"`` -> ``(N, C*h*w)``; ``"channel-mean"`` -> the spatial mean of
    each channel ``(N, C)``; ``"channel-meanstd"`` -> means then (population) stds ``(N, 2C)``.
    Rows are NOT normalised: they are the latents themselves (cosine metrics normalise).
    """
    pooling = _check_vae_pooling(pooling)
    images = list(images)
    try:
        prepared = [imaging.prepare(im, int(resolution), "square") for im in images]
    except ValueError as exc:
        raise ExplorerError(f"{exc}. Pick a VAE embedding resolution such as 64.") from exc
    if not prepared:
        return np.zeros((0, 0), np.float32)

    def run(a: int, b: int) -> np.ndarray:
        # Out of memory: run_batched halves the batch; only a single image is tiled.
        x = imaging.to_tensor(prepared[a:b])
        return _pool_latents(vae.encode(x, tiled=False if b - a > 1 else None).mean, pooling)

    parts = devices.run_batched(
        run,
        len(prepared),
        batch_size or devices.default_batch_size(vae.device),
        progress,
        f"encoding with {vae.name}",
    )
    return np.concatenate(parts, axis=0)


# --------------------------------------------------------------------------- one entry point


@dataclass(frozen=True)
class Options:
    """How a space is asked for: see :func:`embed`'s keyword arguments."""

    folder: str | None = None
    pooling: str | None = None
    resolution: int = 64
    batch_size: int | None = None
    device: torch.device | None = None


@dataclass(frozen=True)
class Plan:
    """How one space's rows are had: ``key`` names them in the cache now, ``key_after_load()``
    once the model is loaded (a revision unknown before a download is known then), and
    ``compute(images, progress)`` makes the ``(n, D)`` rows of the images not in the cache."""

    key: tuple[str, str, str, str]
    key_after_load: Callable[[], tuple[str, str, str, str]]
    compute: Callable[[list[Image.Image], Progress | None], np.ndarray]


def _vae_plan(family: str, ref: str, o: Options) -> Plan:
    pooling = _check_vae_pooling(o.pooling)

    def compute(todo: list[Image.Image], prog: Progress | None) -> np.ndarray:
        vae = load_vae(ref, o.folder, o.device)
        return vae_embedding(vae, todo, o.resolution, pooling, o.batch_size, prog)

    return Plan(
        vae_cache_key(registry.resolve(ref, o.folder), o.resolution, pooling, o.device),
        lambda: vae_cache_key(registry.resolve(ref, o.folder), o.resolution, pooling, o.device),
        compute,
    )


def _unet_plan(family: str, ref: str, o: Options) -> Plan:
    from explorer.spaces import unet, unet_blocks

    parsed = unet_blocks.parse_ref(ref)
    key = unet_blocks.block_cache_key(parsed, o.pooling, o.device)  # checks the pooling too
    if parsed.plain:
        name, timestep = parsed.name, parsed.timesteps[0]
        pooling = unet.check_pooling(o.pooling)

        def compute(todo: list[Image.Image], prog: Progress | None) -> np.ndarray:
            unet.check_cpu_budget(name, len(todo), o.device)
            space = unet.load_unet(name, o.device)
            return space.features(todo, timestep, pooling, None, o.batch_size, prog)

    else:

        def compute(todo: list[Image.Image], prog: Progress | None) -> np.ndarray:
            cost = unet_blocks.ref_cost(parsed, len(todo), o.device)
            unet_blocks.check_budget(cost, f"The UNet space {parsed.ref} on {len(todo)} images")
            space = unet.load_unet(parsed.name, o.device)
            return unet_blocks.block_rows(
                space, todo, parsed, batch_size=o.batch_size, progress=prog
            )

    return Plan(key, lambda: unet_blocks.block_cache_key(parsed, o.pooling, o.device), compute)


def _embedder_plan(family: str, ref: str, o: Options) -> Plan:
    spec = registry.resolve_embedder(ref)
    if spec.family != family:
        raise ExplorerError(
            f"{spec.name} is a {spec.family} model, not {family}: use "
            f"'{spec.family}:{ref}' or pick a {family} model "
            f"({', '.join(registry.available_embedders(family))})."
        )

    def compute(todo: list[Image.Image], prog: Progress | None) -> np.ndarray:
        embedder = embedders.load_embedder(ref, o.device)
        return embedder.embed_images(todo, o.batch_size, prog, o.pooling)

    return Plan(
        embedders.embedder_cache_key(ref, o.device, o.pooling),
        lambda: embedders.load_embedder(ref, o.device).cache_key(o.pooling),
        compute,
    )


def control_cache_key(family: str) -> tuple[str, str, str, str]:
    """(family, model, version, preprocessing) of a control space: its version names the
    features' recipe, so a changed recipe never reads old rows."""
    return (family, baselines.MODELS[family], baselines.BASELINES[family].version, "rgb;cpu")


def _control_plan(family: str, ref: str, o: Options) -> Plan:
    def compute(todo: list[Image.Image], prog: Progress | None) -> np.ndarray:
        if prog is not None:
            prog(0.0, f"{family} of {len(todo):,} images")
        return baselines.baseline_features(family, todo)

    key = control_cache_key(family)
    return Plan(key, lambda: key, compute)


PLANS: dict[str, Callable[[str, str, Options], Plan]] = {
    "vae": _vae_plan,
    "clip": _embedder_plan,
    "dino": _embedder_plan,
    "vit": _embedder_plan,
    "unet": _unet_plan,
    **dict.fromkeys(CONTROLS, _control_plan),
}
"""One entry per family: ``(family, model ref, options) -> Plan``."""


def embed(
    space: str,
    images: Sequence[Image.Image],
    hashes: Sequence[str] | None = None,
    cache: EmbeddingCache | None = None,
    progress: Progress | None = None,
    folder: str | None = None,
    *,
    pooling: str | None = None,
    resolution: int = 64,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    runner: Runner | None = None,
) -> np.ndarray:
    """``images`` -> ``(N, D)`` float32 rows in ``space`` (see the module docstring).

    ``hashes``: one content hash per image (default :func:`image_hash`). With ``cache``, rows
    already stored under the same (family, model, revision, preprocessing) are read back and
    the model runs only on the others (and is not even loaded when nothing is missing).
    ``pooling``: dino/vit ``cls`` (default), ``mean`` or ``cls+mean``; vae ``flatten``
    (default), ``channel-mean`` or ``channel-meanstd``; unet ``mean`` (default) or ``mean+down``.
    ``resolution``: VAE input size.
    ``folder``: where local TAESD-family checkpoints live (VAE spaces). ``runner``: computes
    the missing rows elsewhere (a Ray cluster) instead of loading the model here; the cache
    is read and written here all the same. In a ZeroGPU Space's main process the runner is
    :func:`explorer.spaces.gpu_calls.embed_runner` (GPU calls for the missing rows only).
    """
    family, ref = parse_space(space, folder)
    images = list(images)
    if hashes is None:
        hashes = [image_hash(im) for im in images]
    elif len(hashes) != len(images):
        raise ValueError(f"{len(hashes)} hashes for {len(images)} images")
    offload = runner is None and gpu.offloaded()
    if offload:  # a ZeroGPU Space's main process: the models run in its GPU workers
        from explorer.spaces import gpu_calls

        gpu_calls.fetch(family, ref, folder)  # a download here is not GPU time
        runner = gpu_calls.embed_runner
        device = device or devices.work_device()
    device = torch.device(device) if device is not None else None
    options = Options(folder, pooling, resolution, batch_size, device)
    plan = PLANS[family](family, ref, options)
    key, compute = plan.key, plan.compute

    if runner is not None and family not in CONTROLS:  # the model runs elsewhere; the cache here

        def compute(todo: list[Image.Image], prog: Progress | None) -> np.ndarray:
            asked = {"folder": folder, "pooling": pooling, "resolution": resolution}
            asked.update(batch_size=batch_size, device=device)
            return runner(f"{family}:{ref}", todo, prog, asked)

    if not images:
        return np.zeros((0, 0), np.float32)
    if cache is None or key[2] == "unknown":  # revision unknown until the weights are fetched
        found, missing = {}, list(range(len(images)))
    else:
        found, missing = cache.get_many(key, hashes)
    if found and progress is not None:
        progress(len(found) / len(images), f"{len(found)}/{len(images)} embeddings from the cache")
    new = compute([images[i] for i in missing], progress) if missing else None
    dims = {len(v) for v in found.values()} | ({new.shape[1]} if new is not None else set())
    if len(dims) > 1:  # vectors of another length under the same key: trust nothing stored
        found, missing = {}, list(range(len(images)))
        new = compute(images, progress)
    if new is not None and cache is not None:
        if key[2] == "unknown" and not offload:  # (loading it here is what a worker is for)
            key = plan.key_after_load()
        if key[2] != "unknown":
            cache.put_many(key, [hashes[i] for i in missing], new)
    out = np.empty((len(images), new.shape[1] if new is not None else dims.pop()), np.float32)
    if found:  # one fancy assignment, not a Python loop over rows
        out[np.fromiter(found, np.int64, len(found))] = np.stack(list(found.values()))
    if new is not None:
        out[missing] = new
    return out


def missing_rows(
    space: str,
    hashes: Sequence[str],
    cache: EmbeddingCache | None,
    folder: str | None = None,
    *,
    pooling: str | None = None,
    resolution: int = 64,
) -> int:
    """How many of ``hashes`` :func:`embed` would compute for ``space`` (the rest are in
    ``cache``); every one without a cache or while the model's revision is unknown. Loads no
    model: for pricing a request before it runs."""
    family, ref = parse_space(space, folder)
    key = PLANS[family](family, ref, Options(folder, pooling, resolution)).key
    if cache is None or key[2] == "unknown":
        return len(hashes)
    return len(cache.missing(key, hashes))


__all__ = [
    "CONTROLS",
    "FAMILIES",
    "PLANS",
    "VAE_POOLINGS",
    "Plan",
    "Runner",
    "control_cache_key",
    "embed",
    "image_hash",
    "missing_rows",
    "parse_space",
    "vae_cache_key",
    "vae_embedding",
]
