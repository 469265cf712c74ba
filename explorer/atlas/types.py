"""What an open atlas is: an image set in several embedding spaces, with its maps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from explorer.core.errors import ExplorerError
from explorer.datasets import ImageSet

__all__ = ["FAMILY_TITLES", "Atlas", "Space"]

FAMILY_TITLES = {
    "vae": "VAE latents",
    "clip": "CLIP",
    "dino": "DINOv2",
    "vit": "ViT (ImageNet)",
    "unet": "UNet bottleneck",
}


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


@dataclass
class Atlas:
    """An image set in several spaces: ``embeddings[key]`` is ``(N, D)`` float32 for each space,
    ``coords[method][key]`` the ``(N, 2)`` map under a projection method; ``failures`` maps each
    space ref left out to its message; ``thumbs`` holds one thumbnail path per image."""

    id: str
    images: ImageSet
    spaces: list[Space]
    embeddings: dict[str, np.ndarray]
    coords: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # method -> key -> xy
    failures: dict[str, str] = field(default_factory=dict)  # space ref -> message
    thumbs: list[str] = field(default_factory=list)
    source: str = ""
    color_by: str | None = None  # the labelling the panels are coloured by (None: the main one)

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
