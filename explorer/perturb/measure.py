"""What the UI and the CLI call for the perturbation lab: the app's spaces and the teaching set
around the pure core in :mod:`explorer.perturb.ladder`.

* Spaces are embedded through the app's own :func:`explorer.spaces.embed.embed` (``vae:<model>``,
  ``clip:<model>``, ``dino:<model>``, or a weight-free control such as ``pixels``; a VAE at the
  ladders' side, flattened latents).
* The unrelated references are the teaching set's source photos, one image per photo (each in
  another palette, so the references do not all share one colour); when the photo under test is
  one of those sources, the photos of its own meaning are left out of the references and become
  the ``same_meaning`` ladder.
* :func:`measure` runs every space on its own: a space whose model cannot be loaded (CLIP
  offline, say) is reported in ``failures`` instead of stopping the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
from PIL import Image

from explorer import datasets
from explorer.core.errors import ExplorerError, ModelUnavailableError
from explorer.core.progress import Progress
from explorer.datasets import teaching
from explorer.images import io as imaging
from explorer.models.specs import DOWNLOAD_HINT
from explorer.perturb import ladder as perturb
from explorer.spaces import embed as embeddings

SIZE = 256  # the ladders' side: bounded cost for a public app


@dataclass(frozen=True)
class References:
    """The unrelated photos, and the same-meaning photos when the image is a teaching source."""

    unrelated: list[Image.Image]
    same_meaning: list[Image.Image] = field(default_factory=list)
    source: str | None = None  # the matched teaching-set source id, if any
    meaning: str | None = None


@dataclass
class Measured:
    """:func:`measure`'s result: distances of every space that worked, the ladders, failures."""

    table: pd.DataFrame  # perturb.COLUMNS
    ladders: dict[str, perturb.Ladder]
    failures: dict[str, str]  # space -> why it could not be used
    refs: References


def match_source(image: Image.Image) -> teaching.Source | None:
    """Which teaching-set source photo ``image`` is, or None (:func:`teaching.match_source`)."""
    return teaching.match_source(image)


@lru_cache(maxsize=2)
def _one_per_source(size: int) -> tuple[tuple[str, str, Image.Image], ...]:
    """(source id, meaning, image) for each source photo of the teaching set: photo k in the
    set's palette k mod 7, prepared to ``size``."""
    ts = datasets.teaching_set(size)
    n_app = len(teaching.APPEARANCES)
    sources = list(dict.fromkeys(ts.groups))
    out = []
    for k, sid in enumerate(sources):
        idx = [i for i, g in enumerate(ts.groups) if g == sid]
        i = idx[k % n_app] if len(idx) == n_app else idx[0]
        out.append((sid, ts.labels[i], imaging.prepare(ts.images[i], size, "square")))
    return tuple(out)


def references(image: Image.Image, size: int = SIZE) -> References:
    """The teaching set's photos, one each, as unrelated references; when ``image`` is one of the
    sources, the photos of its meaning are ``same_meaning`` (its own photo left out) instead."""
    src = match_source(image)
    photos = _one_per_source(size)
    if src is None:
        return References([im for _, _, im in photos])
    unrelated = [im for _, meaning, im in photos if meaning != src.meaning]
    same = [im for sid, meaning, im in photos if meaning == src.meaning and sid != src.id]
    return References(unrelated, same[: perturb.MAX_STRENGTHS - 1], src.id, src.meaning)


def space_embedder(space: str, folder: str | None = None, cache=None, size: int = SIZE):
    """``vae:…`` / ``clip:…`` / ``dino:…`` -> ``f(list of PIL images) -> (N, D)`` through
    :func:`explorer.spaces.embed.embed` (VAE latents at ``size``, flattened)."""
    family, _ = embeddings.parse_space(space, folder)

    def fn(images: list[Image.Image]) -> np.ndarray:
        kw = {"resolution": size} if family == "vae" else {}
        return embeddings.embed(space, images, cache=cache, folder=folder, **kw)

    return fn


TITLES = {"vae": "VAE", "clip": "CLIP", "dino": "DINOv2"}


def space_title(space: str) -> str:
    """``vae:local:taef2`` -> ``VAE (local:taef2)``: a space as a person reads it."""
    family, _, model = space.partition(":")
    return f"{TITLES.get(family, family)} ({model})" if model else TITLES.get(family, family)


def failure_detail(failures: dict[str, str]) -> str:
    """Each failed space's reason, with the advice they share (the download command) said once."""
    hint = DOWNLOAD_HINT
    detail = " ".join(
        f"{space_title(s)}: {m.replace(hint, '').strip()}" for s, m in failures.items()
    )
    return detail + (f" {hint}" if any(hint in m for m in failures.values()) else "")


def measure(
    image: Image.Image,
    spaces: Sequence[str],
    folder: str | None = None,
    cache=None,
    progress: Progress | None = None,
    size: int = SIZE,
) -> Measured:
    """A photo and spaces -> :class:`Measured`: every ladder of :data:`perturb.PERTURBATIONS`
    (``same_meaning`` only when the photo is a teaching-set source) in every space that loads.
    Raises ExplorerError when no space could be used."""
    if not spaces:
        raise ExplorerError("Choose at least one space (VAE, CLIP or DINOv2).")
    if progress:
        progress(0.02, "preparing the ladders and the reference photos")
    refs = references(image, size)
    ladders = perturb.all_ladders(image, size, same_meaning=refs.same_meaning or None)
    tables, failures = [], {}
    for k, space in enumerate(spaces):
        if progress:
            progress(0.1 + 0.85 * k / len(spaces), f"{space_title(space)}: embedding the ladders")
        try:
            fn = space_embedder(space, folder, cache, size)
            tables.append(perturb.distances({space: fn}, ladders, refs.unrelated))
        except ModelUnavailableError as exc:
            failures[space] = str(exc)
    if not tables:
        raise ExplorerError(f"No space could be used. {failure_detail(failures)}")
    if progress:
        progress(1.0, "done")
    table = pd.concat(tables, ignore_index=True)
    return Measured(table, ladders, failures, refs)


__all__ = [
    "SIZE",
    "Measured",
    "References",
    "failure_detail",
    "match_source",
    "measure",
    "references",
    "space_title",
]
