"""What each handler's request will cost, priced before it runs (public mode charges it to the
visitor, :func:`explorer.core.public.price`; private mode charges nothing).

:func:`priced` wraps a handler so that its price is charged first; it goes outside ``@gpu`` so
the charge is made in the main process (a ZeroGPU worker is a forked copy whose writes are lost).
The price functions take the handler's own arguments and never raise for bad values: the
handler refuses those with its own sentence. Figures: :mod:`explorer.core.costs`.

An atlas is priced twice, each time before its work: the decode from the files' headers (at the
handler's start, :func:`upload_price`), then the embedding of the rows the cache does not hold
and the projection, once the set is read (:func:`charge_atlas`).
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

from explorer.core import costs, public
from explorer.core.errors import ExplorerError
from explorer.datasets import ImageSet, plan_files, plan_zip
from explorer.images import io as imaging
from explorer.models import registry
from explorer.spaces import embed as embeddings
from explorer.spaces.cache import EmbeddingCache

__all__ = [
    "atlas_price",
    "charge_atlas",
    "lab_price",
    "lesson_price",
    "perturb_price",
    "playground_price",
    "priced",
    "query_price",
    "space_cost",
    "upload_price",
]

log = logging.getLogger(__name__)

VAE_RESOLUTION = 64  # the atlas's VAE input side (atlas.build's default)


def priced(price: Callable[..., float]) -> Callable:
    """Decorator: charge ``price(*args, **kwargs)`` (the handler's own arguments, bound to its
    signature with defaults) before the handler runs. The handler's signature is kept (Gradio
    reads it for its inputs and API page)."""

    def wrap(fn: Callable) -> Callable:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def handler(*args, **kwargs):
            if public.public_mode():
                try:
                    bound = sig.bind_partial(*args, **kwargs)
                    bound.apply_defaults()
                    cost = float(price(**bound.arguments))
                except Exception:  # a price that cannot be read: the handler's checks refuse it
                    log.debug("pricing %s failed", fn.__name__, exc_info=True)
                    cost = 0.0
                public.price(cost if math.isfinite(cost) and cost >= 0 else 0.0)
            return fn(*args, **kwargs)

        return handler

    return wrap


# --------------------------------------------------------------------------- per image


def space_cost(ref: str, folder: str | None = None) -> float:
    """CPU-seconds to embed one image in the atlas space ``ref`` (``family:model``)."""
    family, model = embeddings.parse_space(ref, folder)
    if family == "vae":
        spec = registry.resolve(model, folder)
        mp = VAE_RESOLUTION * VAE_RESOLUTION / 1e6
        per = spec.cpu_seconds_per_megapixel
        return costs.vae_cost(spec.kind, mp, decodes=0, per_mp=per)
    if family == "unet":
        from explorer.spaces import unet

        name, _ = unet.split_model(model)
        return registry.resolve_unet(name).cpu_seconds_per_image * costs.WALL_TO_CPU
    spec = registry.resolve_embedder(model)
    if spec.cpu_seconds_per_image is not None:
        return spec.cpu_seconds_per_image
    return costs.EMBEDDER_S_PER_IMAGE.get(family, max(costs.EMBEDDER_S_PER_IMAGE.values()))


def _header_megapixels(image: Any) -> float:
    """An uploaded image (a path) -> its megapixels from the header (0 where unreadable)."""
    path = image if isinstance(image, str) else getattr(image, "name", None)
    if not path:
        return 0.0
    try:
        with open(path, "rb") as fh:
            found = imaging.image_header(fh.read(64 * 1024))
    except OSError:
        return 0.0
    return found[1] * found[2] / 1e6 if found else 0.0


# --------------------------------------------------------------------------- the atlas


def upload_price(files: Sequence[Any] | None, **_: Any) -> float:
    """The atlas upload's decode, from the zip's or the files' headers."""
    paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]
    zips = [p for p in paths if p.lower().endswith(".zip")]
    try:
        p = plan_zip(zips[0]) if len(zips) == 1 and len(paths) == 1 else plan_files(paths)
    except ExplorerError:
        return 0.0  # the handler refuses it with the reason
    return costs.decode_cost(p.megapixels)


def atlas_price(
    image_set: ImageSet, refs: Sequence[str], folder: str | None, cache: EmbeddingCache | None
) -> float:
    """Embedding ``image_set`` in the spaces ``refs`` (only the rows ``cache`` lacks) and
    projecting it: CPU-seconds."""
    hashes = image_set.keys or [embeddings.image_hash(im) for im in image_set.images]
    return _rows_price(hashes, refs, folder, cache)


def _rows_price(
    hashes: Sequence[str], refs: Sequence[str], folder: str | None, cache: EmbeddingCache | None
) -> float:
    per_space = []
    for ref in refs:
        try:
            todo = embeddings.missing_rows(ref, hashes, cache, folder, resolution=VAE_RESOLUTION)
            per_space.append((space_cost(ref, folder), todo))
        except ExplorerError:
            continue  # a space that cannot open is reported by the build, at no cost
    return costs.atlas_cost(per_space, points=len(hashes), spaces=len(refs))


def charge_atlas(
    image_set: ImageSet, refs: Sequence[str], folder: str | None, cache: EmbeddingCache | None
) -> None:
    """Public mode: charge :func:`atlas_price` now (the set is read, nothing embedded yet)."""
    if public.public_mode():
        public.price(atlas_price(image_set, refs, folder, cache))


def query_price(atlas_id: str | None = None, image: Any = None, folder: Any = None, **_: Any):
    """One query image through each of the open atlas's spaces (the image's decode included)."""
    from explorer import atlas

    try:
        a = atlas.STORE.get(atlas_id)
    except ExplorerError:
        return 0.0
    embed = sum(space_cost(f"{s.family}:{s.model}", folder or None) for s in a.spaces)
    return embed + costs.decode_cost(_header_megapixels(image))


# --------------------------------------------------------------------------- the lab


LAB_PASSES = {  # (encodes, decodes, models) of one request
    "encode": (1, 0, 1),
    "roundtrip": (1, 1, 1),
    "compare": (1, 1, 2),
    "edit": (1, 2, 1),
}


def lab_price(action: str) -> Callable[..., float]:
    """The price function of lab ``action`` (``encode``, ``roundtrip``, ``compare``, ``edit``,
    ``generations``, ``interpolate``): its VAE passes at the asked resolution, plus decoding
    the uploaded image(s)."""

    def price(**kw: Any) -> float:
        res = float(kw.get("resolution") or 0)
        mp = res * res / 1e6
        folder = kw.get("folder") or None
        models = [kw.get(k) for k in ("model", "model_a", "model_b") if kw.get(k)]
        images = [kw.get(k) for k in ("image", "image_a", "image_b") if kw.get(k) is not None]
        if action == "generations":
            encodes = decodes = max(1.0, float(kw.get("n") or 1))
        elif action == "interpolate":
            encodes, decodes = 2.0, max(1.0, float(kw.get("steps") or 1))
        else:
            encodes, decodes, _ = LAB_PASSES[action]
        total = sum(costs.decode_cost(_header_megapixels(im)) for im in images)
        for ref in models:
            spec = registry.resolve(ref, folder)
            total += costs.vae_cost(
                spec.kind,
                mp,
                encodes=encodes,
                decodes=decodes,
                per_mp=spec.cpu_seconds_per_megapixel,
            )
        return total

    return price


# --------------------------------------------------------------------------- other tabs


def playground_price(
    beta: Any = None, codebook_size: Any = None, epochs: Any = None, seed: Any = None, **_: Any
) -> float:
    """Training the three digit autoencoders for ``epochs`` (nothing for those already trained)."""
    from explorer.playground import cache as pg_cache
    from explorer.playground import digits as pg

    try:
        cfgs = [
            pg.TrainConfig("ae", epochs=epochs, seed=seed),
            pg.TrainConfig("vae", epochs=epochs, seed=seed, beta=beta),
            pg.TrainConfig("vq", epochs=epochs, seed=seed, codebook_size=codebook_size),
        ]
    except (TypeError, ValueError):
        return 0.0
    todo = sum(not pg_cache.default_cache().has(c) for c in cfgs)
    return todo / 3 * costs.PLAYGROUND_S_PER_EPOCH * float(epochs) + 0.5


def perturb_price(
    image: Any = None,
    checked: Any = None,
    vae_model: Any = None,
    clip_model: Any = None,
    dino_model: Any = None,
    folder: Any = None,
    **_: Any,
) -> float:
    """Every perturbation ladder of the photo (at most 12 ladders of 8 rungs, plus references)
    through each ticked space."""
    from explorer.perturb import ladder
    from explorer.ui.perturb.views import FAMILY_CHOICES

    chosen = {"vae": vae_model, "clip": clip_model, "dino": dino_model}
    refs = [f"{f}:{chosen[f]}" for label, f in FAMILY_CHOICES.items() if label in (checked or [])]
    n = (ladder.MAX_PERTURBATIONS + 1) * ladder.MAX_STRENGTHS + 8
    total = costs.decode_cost(_header_megapixels(image))
    for ref in refs:
        try:
            total += n * space_cost(ref, folder or None)
        except ExplorerError:
            continue
    return total


@functools.lru_cache(maxsize=1)
def _teaching_hashes() -> tuple[str, ...]:
    """The teaching set's content keys (what the lesson's atlas is cached under), once."""
    from explorer import datasets

    images = datasets.teaching_set()
    return tuple(images.keys or [embeddings.image_hash(im) for im in images.images])


def lesson_price(step: int) -> Callable[..., float]:
    """Lesson step ``step`` on the session's model (``state``, as the lesson handlers take it):
    the teaching atlas (its uncached rows), the playground's training, or a few VAE round trips
    of the 512 px example."""

    def price(state: dict | None = None, **_: Any) -> float:
        state = state or {}
        model = state.get("model") or registry.default_vae()
        folder = state.get("folder") or None
        if step == 1:
            return playground_price(beta=1.0, codebook_size=32, epochs=150, seed=0)
        if step == 7:  # the teaching set in the VAE (and the UNet, where the lesson has one)
            from explorer.spaces import cache
            from explorer.ui.lesson import views

            hashes = _teaching_hashes()
            unet = getattr(views, "lesson_unet", lambda n: None)(len(hashes))
            refs = [f"vae:{model}", *([unet] if unet else [])]
            return _rows_price(hashes, refs, folder, cache.shared())
        spec = registry.resolve(model, folder)
        passes = 12.0 if step == 6 else 4.0
        return costs.vae_cost(
            spec.kind,
            0.262,
            encodes=passes,
            decodes=passes,
            per_mp=spec.cpu_seconds_per_megapixel,
        )

    return price
