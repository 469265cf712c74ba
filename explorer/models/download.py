"""`python -m explorer download`: prefetch models into the Hugging Face cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from huggingface_hub import snapshot_download

from explorer.core.errors import ModelUnavailableError
from explorer.models import registry
from explorer.models.hub import EMBEDDER_FILES, VAE_FILES, VQ_BIN_FILES, unet_files

__all__ = ["download"]


def _snapshot(name: str, repo_id: str, patterns: list[str], gated: bool, log) -> None:
    log(f"downloading {name} ({repo_id}) ...")
    try:
        snapshot_download(repo_id, allow_patterns=patterns)
    except Exception as exc:
        licence = " and that you accepted the model's licence on huggingface.co" if gated else ""
        raise ModelUnavailableError(
            f"Could not download {repo_id}: {exc}. Check your internet connection{licence}."
        ) from exc


def download(names: list[str] | None = None, log: Callable[[str], None] = print) -> list[str]:
    """Prefetch models (default: :func:`explorer.models.registry.default_models`) into the Hugging Face
    cache; returns the repo ids fetched."""
    fetched = []
    for name in names or registry.default_models():
        if name in registry.UNETS:  # only when named: ~2 GB
            spec = registry.UNETS[name]
            _snapshot(name, spec.repo_id, unet_files(spec.variant), False, log)
            fetched.append(spec.repo_id)
            continue
        embedder = name in registry.available_embedders() or any(
            name == e.repo_id for e in registry.EMBEDDERS.values()
        )
        spec = registry.resolve_embedder(name) if embedder else registry.resolve(name)
        if spec.build is not None or not spec.repo_id or Path(spec.repo_id).exists():
            log(f"skip {name}: not a Hub model")
            continue
        if embedder:
            patterns = EMBEDDER_FILES
        else:
            files = VAE_FILES + (VQ_BIN_FILES if spec.kind == "vq" else [])
            patterns = [f"{spec.subfolder}/{p}" if spec.subfolder else p for p in files]
        _snapshot(name, spec.repo_id, patterns, getattr(spec, "gated", False), log)
        fetched.append(spec.repo_id)
    return fetched
