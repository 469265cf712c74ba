"""What an open atlas is: an image set in several embedding spaces, with its maps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from explorer.core.errors import ExplorerError
from explorer.datasets import ImageSet

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CONTROL_FAMILIES", "FAMILY_TITLES", "Atlas", "Reopened", "Space"]

FAMILY_TITLES = {
    "vae": "VAE latents",
    "clip": "CLIP",
    "dino": "DINOv2",
    "vit": "ViT (ImageNet)",
    "unet": "UNet bottleneck",
    "pixels": "Pixels (control)",
    "colour": "Colour (control)",
    "texture": "Texture (control)",
}
CONTROL_FAMILIES = ("pixels", "colour", "texture")
"""The weight-free control spaces (explorer.spaces.baselines): what pixels, the palette and the
edges alone give."""


@dataclass
class Space:
    """One embedding space of an atlas: ``key`` (csv column prefix), the ref it came from."""

    key: str
    ref: str
    family: str
    model: str

    @property
    def title(self) -> str:
        family = FAMILY_TITLES.get(self.family, self.family)
        if self.family == "unet" and "/" in self.model:  # another block than the bottleneck
            family = "UNet features"
        return f"{family} · {self.model}"

    @property
    def control(self) -> bool:
        """A weight-free control space (pixels, colour, texture), not a model."""
        return self.family in CONTROL_FAMILIES


@dataclass(frozen=True)
class Reopened:
    """How a saved atlas folder was read back: whether it had a manifest, the files it is read
    from that were ``changed`` since it was saved (their hashes differ), the derived files
    (metrics, overlap, neighbour lists) ``recomputed`` rather than read, and how many
    thumbnails had to be ``thumbs_checked`` by decoding (not vouched for by the manifest)."""

    folder: str
    manifest: bool
    changed: list[str]
    recomputed: list[str]
    thumbs_checked: int


@dataclass
class Atlas:
    """An image set in several spaces: ``embeddings[key]`` is ``(N, D)`` float32 for each space,
    ``coords[method][key]`` the ``(N, 2)`` map under a projection method; ``failures`` maps each
    space ref left out to its message; ``thumbs`` holds one thumbnail path per image.

    Computed once and kept (the embeddings never change): ``metrics[method]``, the metrics
    table of that map; ``overlaps[k]``, the neighbour-overlap table at k;
    ``neighbour_lists[key]``, ``(N, K)`` int32 indices and float32 cosines of each point's K
    nearest neighbours, best first (a saved atlas carries them); ``neighbour_recall[key]``,
    where those lists are approximate (past :data:`explorer.analysis.ann.ANN_ABOVE` points),
    their recall@10 against exact lists and the number of points it was measured on. ``reopened``: how a saved
    atlas was read back (None for one built here). ``selection``: the indices
    selected across the panels (carried by the export); ``overlap_pair``: the two space keys
    whose per-point neighbour overlap colours the panels (None: the labels do); ``memo``:
    evidence computed once (:mod:`explorer.atlas.evidence`)."""

    id: str
    images: ImageSet
    spaces: list[Space]
    embeddings: dict[str, np.ndarray]
    coords: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # method -> key -> xy
    failures: dict[str, str] = field(default_factory=dict)  # space ref -> message
    thumbs: list[str] = field(default_factory=list)
    source: str = ""
    color_by: str | None = None  # the labelling the panels are coloured by (None: the main one)
    metrics: dict[str, pd.DataFrame] = field(default_factory=dict)  # method -> table
    overlaps: dict[int, pd.DataFrame] = field(default_factory=dict)  # k -> table
    neighbour_lists: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    neighbour_recall: dict[str, tuple[float, int]] = field(default_factory=dict)
    reopened: Reopened | None = None
    selection: list[int] = field(default_factory=list)  # the images selected in every panel
    overlap_pair: tuple[str, str] | None = None  # colour by the two spaces' neighbour overlap
    memo: dict = field(default_factory=dict, repr=False)  # evidence computed once (atlas.evidence)

    @property
    def labels(self) -> list[str]:
        return list(self.images.labels)

    def space(self, key: str) -> Space:
        for s in self.spaces:
            if s.key == key:
                return s
        raise ExplorerError(f"This atlas has no space {key!r}.")

    def clip_space(self) -> Space | None:
        return next((s for s in self.spaces if s.family == "clip"), None)
