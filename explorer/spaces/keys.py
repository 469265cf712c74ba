"""Content keys: what names an image and a VAE space in the embedding cache."""

from __future__ import annotations

import hashlib

import torch
from PIL import Image

from explorer.models import device as devices
from explorer.models import hub, registry

__all__ = ["image_hash", "vae_cache_key"]


def image_hash(image: Image.Image) -> str:
    """SHA-256 of the image's mode, size and pixel bytes (and palette, for ``P`` images)."""
    h = hashlib.sha256(f"{image.mode}|{image.size[0]}x{image.size[1]}|".encode())
    if image.mode in ("P", "PA") and image.getpalette() is not None:
        h.update(bytes(image.getpalette()))
    h.update(image.tobytes())
    return h.hexdigest()


def vae_cache_key(
    spec: registry.VAESpec,
    resolution: int = 64,
    pooling: str = "flatten",
    device: torch.device | str | None = None,
) -> tuple[str, str, str, str]:
    """(family, model id, revision, preprocessing) of a VAE space, without loading it."""
    if spec.repo_id:
        model_id = spec.repo_id + (f"/{spec.subfolder}" if spec.subfolder else "")
    else:
        model_id = str(spec.encoder_path) if spec.encoder_path else spec.name
    dtype = str(devices.vae_dtype(spec, device)).replace("torch.", "")
    prep = f"square{int(resolution)}-lanczos;posterior-mean;pooling={pooling};{dtype}"
    return ("vae", model_id, hub.model_revision(spec), prep)
