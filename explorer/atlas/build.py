"""Building an atlas: one image set embedded in several spaces and projected to 2-D; queries.

An :class:`Atlas` holds the set, one ``(N, D)`` embedding per space, ``(N, 2)`` maps per
projection method, the spaces that failed, and the thumbnails' paths. :func:`build` makes one;
:func:`coords_for`, :func:`neighbours`, :func:`query_image` and :func:`text_query` read it.
Arrays and dataclasses in and out: the tables are in ``report``, the files in ``export``, the
words and the browser's JSON in ``explorer.ui``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from PIL import Image

from explorer.analysis import metrics, projection
from explorer.atlas.store import thumb_dir, thumbnails
from explorer.atlas.types import FAMILY_TITLES, Atlas, Space
from explorer.core.errors import ExplorerError
from explorer.core.progress import Progress, no_progress
from explorer.datasets import ImageSet, teaching
from explorer.models import registry
from explorer.spaces import embed as embeddings
from explorer.spaces import gpu_calls
from explorer.spaces.cache import EmbeddingCache

__all__ = [
    "FAMILY_TITLES",
    "MAX_QUERY_CHARS",
    "MAX_SPACES",
    "Atlas",
    "Space",
    "build",
    "coords_for",
    "default_colouring",
    "default_spaces",
    "from_arrays",
    "group_mask",
    "neighbours",
    "query_group",
    "query_image",
    "text_query",
]

MAX_SPACES = 8  # every family at once: VAE, CLIP, DINOv2, ViT, UNet and the three controls
MAX_QUERY_CHARS = 300  # CLIP reads 77 tokens; a longer sentence only costs time and memory


# --------------------------------------------------------------------------- building


def default_spaces(folder: str | None = None) -> list[str]:
    """``vae:<default VAE>``, ``clip``, ``dino``: the three panels the product is about."""
    return [f"vae:{registry.default_vae(folder)}", "clip", "dino"]


def default_colouring(image_set: ImageSet) -> str | None:
    """The labelling a set's panels open coloured by: where the set groups its images (the
    teaching set's source photos), the labelling that *is* the grouping -- every tight cluster a
    space draws is then coloured as what it is, one photo in its variants, and never read as a
    cluster of meaning; else None (the set's main labelling)."""
    if image_set.groups is None:
        return None
    return next((k for k, v in image_set.labelings.items() if v == image_set.groups), None)


def _keys(families: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    keys = []
    for f in families:
        seen[f] = seen.get(f, 0) + 1
        keys.append(f if seen[f] == 1 else f"{f}{seen[f]}")
    return keys


def build(
    image_set: ImageSet,
    spaces: Sequence[str] | None = None,
    method: str = "umap",
    folder: str | None = None,
    cache: EmbeddingCache | None = None,
    progress: Progress = no_progress,
    vae_resolution: int = 64,
    vae_pooling: str = "flatten",
    runner: embeddings.Runner | None = None,
) -> Atlas:
    """N images -> an :class:`Atlas` with an ``(N, D)`` embedding and an ``(N, 2)`` ``method``
    map per space that worked.

    A space whose model cannot be loaded (not cached while offline, say) is reported in
    ``failures`` and left out; only when every space fails is that an error. ``runner``: run
    the models elsewhere (:class:`explorer.spaces.ray_engine.RayEngine`); its ``device`` names where.
    """
    spaces = list(spaces or default_spaces(folder))
    if not spaces:
        raise ExplorerError("Choose at least one embedding space.")
    if len(spaces) > MAX_SPACES:
        raise ExplorerError(
            f"{len(spaces)} spaces were asked for; an atlas holds up to {MAX_SPACES}. "
            "Leave some out."
        )
    if len(image_set) < 3:
        raise ExplorerError("An atlas needs at least 3 images: add more images to the set.")
    parsed = [embeddings.parse_space(s, folder) for s in spaces]
    # content keys: the file bytes' hashes where the loader kept them (cheap), else the pixels'
    hashes = image_set.keys or [embeddings.image_hash(im) for im in image_set.images]
    ok: list[tuple[str, str, str]] = []
    embs: dict[str, np.ndarray] = {}
    failures: dict[str, str] = {}
    n = len(spaces)
    for i, (ref, (family, model)) in enumerate(zip(spaces, parsed, strict=True)):
        share = 0.8 / n

        def prog(f: float, d: str, i=i, share=share, family=family) -> None:
            progress(0.05 + i * share + f * share, f"{FAMILY_TITLES.get(family, family)}: {d}")

        note = ""
        if family == "unet":  # on a CPU: the time estimate first, as the status line
            from explorer.spaces import unet

            note = unet.cpu_estimate_note(model, len(image_set))
        prog(0.0, note or f"embedding {len(image_set):,} images")
        try:
            x = embeddings.embed(
                f"{family}:{model}",
                image_set.images,
                hashes,
                cache,
                prog,
                folder,
                resolution=vae_resolution,
                pooling=vae_pooling if family == "vae" else None,
                device=getattr(runner, "device", None),
                runner=runner,
            )
        except ExplorerError as exc:
            failures[ref] = str(exc)
            continue
        ok.append((ref, family, model))
        embs[ref] = x
    if not ok:
        raise ExplorerError(f"No embedding space could be computed. {_failure_detail(failures)}")
    keys = _keys([f for _, f, _ in ok])
    space_list = [Space(k, r, f, m) for k, (r, f, m) in zip(keys, ok, strict=True)]
    thumbs, held = thumbnails(image_set.images, hashes, thumb_dir())
    atlas = Atlas(
        id=uuid.uuid4().hex,
        images=replace(image_set, images=held),  # the open atlas keeps thumbnails, as JPEG
        spaces=space_list,
        embeddings={s.key: embs[s.ref] for s in space_list},
        failures=failures,
        thumbs=thumbs,
        source=image_set.name,
        color_by=default_colouring(image_set),
    )
    progress(0.88, f"projecting ({method})")
    coords_for(atlas, method)
    progress(1.0, "done")
    return atlas


def from_arrays(
    embeddings_by_key: dict[str, np.ndarray],
    labels: Sequence[str],
    images: Sequence[Image.Image],
    coords: dict[str, np.ndarray] | None = None,
    method: str = "pca",
    source: str = "arrays",
) -> Atlas:
    """``{space key: (N, D) embedding}``, N labels, N images (thumbnails are written from them)
    and optionally ``{space key: (N, 2) map}`` under ``method`` -> an :class:`Atlas`, without
    any model: for sets made elsewhere, and synthetic ones (benchmarks, tests). A key's letters
    name its family (``vae``, ``clip2`` -> ``clip``); its model is ``"arrays"``."""
    n = len(labels)
    if len(images) != n or any(e.shape[0] != n for e in embeddings_by_key.values()):
        raise ExplorerError("from_arrays needs one image, one label and one row per point.")
    if coords and (
        set(coords) != set(embeddings_by_key)
        or any(np.asarray(xy).shape != (n, 2) for xy in coords.values())
    ):
        raise ExplorerError("coords needs one (N, 2) map for every embedded space, or none.")
    spaces = [
        Space(k, f"{k.rstrip('0123456789')}:arrays", k.rstrip("0123456789"), "arrays")
        for k in embeddings_by_key
    ]
    image_set = ImageSet(
        source, list(images), [str(x) for x in labels], [f"point[{i}]" for i in range(n)]
    )
    hashes = [embeddings.image_hash(im) for im in image_set.images]
    thumbs, held = thumbnails(image_set.images, hashes, thumb_dir())
    atlas = Atlas(
        id=uuid.uuid4().hex,
        images=replace(image_set, images=held),
        spaces=spaces,
        embeddings={k: np.asarray(v, np.float32) for k, v in embeddings_by_key.items()},
        thumbs=thumbs,
        source=source,
    )
    if coords:
        atlas.coords[method] = {k: np.asarray(v, np.float32) for k, v in coords.items()}
    return atlas


def _failure_detail(failures: dict[str, str]) -> str:
    """Each space's reason, with the advice they share (the download command) said once."""
    hint = registry.DOWNLOAD_HINT
    detail = " ".join(f"{r}: {m.replace(hint, '').strip()}" for r, m in failures.items())
    return detail + (f" {hint}" if any(hint in m for m in failures.values()) else "")


def coords_for(atlas: Atlas, method: str) -> dict[str, np.ndarray]:
    """``{space key: (N, 2) map}`` under ``method`` (computed once per atlas and method)."""
    if method not in atlas.coords:
        atlas.coords[method] = {
            s.key: projection.project(atlas.embeddings[s.key], method, seed=0) for s in atlas.spaces
        }
    return atlas.coords[method]


# --------------------------------------------------------------------------- queries


def group_mask(atlas: Atlas, group: str | None) -> np.ndarray | None:
    """(N,) bool: the images of the set whose group (source photo) is ``group``; None when the
    set has no groups or ``group`` is None."""
    groups = atlas.images.groups
    if groups is None or group is None:
        return None
    return np.asarray([g == group for g in groups], bool)


def neighbours(
    atlas: Atlas, index: int, k: int = 6, *, own_group: bool = False
) -> dict[str, list[tuple[int, float]]]:
    """``{space key: [(index, cosine in [-1, 1]), ...]}``: image ``index``'s ``k`` nearest
    neighbours in every space, best first (itself excluded); read from the atlas's
    ``neighbour_lists`` where they are long enough (a saved atlas carries them) and nothing is
    left out.

    Where the set groups its images (variants of one source photo), the other images of its
    own group are left out too, as the metrics leave them out; ``own_group=True`` keeps them."""
    n = len(atlas.images)
    if not 0 <= int(index) < n:
        raise ExplorerError(
            f"Image #{index} is not in this set: pick a number between 0 and {n - 1}."
        )
    groups = atlas.images.groups
    exclude = None if own_group or groups is None else group_mask(atlas, groups[int(index)])
    k = max(1, min(k, n - 1))
    out = {}
    for s in atlas.spaces:
        lists = atlas.neighbour_lists.get(s.key)
        if (
            exclude is None
            and lists is not None
            and lists[0].shape[0] == n
            and k <= lists[0].shape[1]
        ):
            idx, sim = lists[0][int(index), :k], lists[1][int(index), :k]
        else:
            idx, sim = metrics.nearest(atlas.embeddings[s.key], int(index), k, exclude)
        out[s.key] = [(int(i), float(v)) for i, v in zip(idx, sim, strict=True)]
    return out


def query_group(atlas: Atlas, image: Image.Image) -> str | None:
    """The group (source photo) of the set that an outside ``image`` is a version of: for the
    teaching set, the source photo it is (:func:`explorer.datasets.teaching.match_source`);
    None for a set without groups or an image that is none of its photos."""
    groups = atlas.images.groups
    if groups is None:
        return None
    src = teaching.match_source(image)
    return src.id if src is not None and src.id in set(groups) else None


def query_image(
    atlas: Atlas,
    image: Image.Image,
    k: int = 6,
    folder: str | None = None,
    cache: EmbeddingCache | None = None,
    *,
    own_group: bool = False,
) -> dict[str, list[tuple[int, float]]]:
    """``{space key: [(index, cosine in [-1, 1]), ...]}``: an outside image embedded in every
    space of the atlas, and its top ``k`` matches in each, best first. When the image is one of
    the set's source photos (:func:`query_group`), that photo's versions are left out, as for a
    click; ``own_group=True`` keeps them."""
    exclude = None if own_group else group_mask(atlas, query_group(atlas, image))
    out = {}
    for s in atlas.spaces:
        q = embeddings.embed(f"{s.family}:{s.model}", [image], None, cache, None, folder)[0]
        x = atlas.embeddings[s.key]
        idx, sim = metrics.top_k_similar(x, q, min(k, len(atlas.images)), exclude)
        out[s.key] = [(int(i), float(v)) for i, v in zip(idx, sim, strict=True)]
    return out


def text_query(atlas: Atlas, text: str, k: int = 8) -> tuple[list[tuple[int, float]], np.ndarray]:
    """A sentence -> (top ``k`` ``(index, cosine)`` best first, ``(N,)`` float32 cosine of every
    image's CLIP embedding with the sentence's)."""
    text = (text or "").strip()
    if not text:
        raise ExplorerError("Type a sentence to search for, e.g. 'a photo of a cat'.")
    space = atlas.clip_space()
    if space is None:
        failed = [ref for ref in atlas.failures if ref.split(":", 1)[0] == "clip"]
        if failed:
            raise ExplorerError(
                f"Text search needs CLIP, and {failed[0].split(':', 1)[1]} could not be opened "
                f"for this set: {atlas.failures[failed[0]]}"
            )
        raise ExplorerError(
            "Text search needs a CLIP space: tick CLIP among the atlas's spaces and reopen the set."
        )
    if len(text) > MAX_QUERY_CHARS:
        raise ExplorerError(
            f"That sentence is {len(text):,} characters long; text search takes up to "
            f"{MAX_QUERY_CHARS} (CLIP reads about 77 words anyway). Shorten it."
        )
    q = gpu_calls.text_rows(space.model, [text])[0]
    x = atlas.embeddings[space.key]
    xn = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    scores = xn @ (q / max(float(np.linalg.norm(q)), 1e-12))
    idx, sim = metrics.top_k_similar(x, q, min(k, len(atlas.images)))
    return [(int(i), float(v)) for i, v in zip(idx, sim, strict=True)], scores.astype(np.float32)
