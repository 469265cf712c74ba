"""`python -m explorer download`: prefetch models into the Hugging Face cache (or another one,
such as a class pack's)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import snapshot_download

from explorer.core.errors import ModelUnavailableError
from explorer.models import registry
from explorer.models.hub import EMBEDDER_FILES, VAE_FILES, VQ_BIN_FILES, unet_files

__all__ = ["Fetched", "download", "fetch", "hub_files"]


@dataclass(frozen=True)
class Fetched:
    """One model fetched: its name, Hub repo, the snapshot's commit and folder, the patterns."""

    name: str
    kind: str  # "vae", "embedder" or "unet"
    repo_id: str
    revision: str
    folder: Path
    patterns: tuple[str, ...]


def _snapshot(
    name: str,
    repo_id: str,
    patterns: list[str],
    gated: bool,
    log,
    cache_dir: str | Path | None,
) -> Path:
    log(f"downloading {name} ({repo_id}) ...")
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, cache_dir=cache_dir))
    except Exception as exc:
        licence = " and that you accepted the model's licence on huggingface.co" if gated else ""
        raise ModelUnavailableError(
            f"Could not download {repo_id}: {exc}. Check your internet connection{licence}."
        ) from exc


def hub_files(name: str) -> tuple[str, str, list[str], bool] | None:
    """A model name -> (kind, Hub repo, the file patterns fetched for it, gated), or None for a
    model that is not on the Hub (registered in code, local files)."""
    if name in registry.available_unets():
        spec = registry.resolve_unet(name)
        if spec.build is not None or not spec.repo_id:
            return None
        return "unet", spec.repo_id, unet_files(spec.variant), False
    embedder = name in registry.available_embedders() or any(
        name == e.repo_id for e in registry.EMBEDDERS.values()
    )
    spec = registry.resolve_embedder(name) if embedder else registry.resolve(name)
    if spec.build is not None or not spec.repo_id or Path(spec.repo_id).exists():
        return None
    if embedder:
        return "embedder", spec.repo_id, list(EMBEDDER_FILES), False
    files = VAE_FILES + (VQ_BIN_FILES if spec.kind == "vq" else [])
    patterns = [f"{spec.subfolder}/{p}" if spec.subfolder else p for p in files]
    return "vae", spec.repo_id, patterns, getattr(spec, "gated", False)


def fetch(
    names: list[str] | None = None,
    log: Callable[[str], None] = print,
    *,
    cache_dir: str | Path | None = None,
) -> list[Fetched]:
    """Prefetch models (default: :func:`explorer.models.registry.default_models`; a UNet only
    when named, ~2 GB) into ``cache_dir`` (default: the Hugging Face cache); -> what was fetched,
    models that are not on the Hub left out (logged)."""
    fetched = []
    for name in names or registry.default_models():
        found = hub_files(name)
        if found is None:
            log(f"skip {name}: not a Hub model")
            continue
        kind, repo_id, patterns, gated = found
        folder = _snapshot(name, repo_id, patterns, gated, log, cache_dir)
        fetched.append(Fetched(name, kind, repo_id, folder.name, folder, tuple(patterns)))
    return fetched


def download(names: list[str] | None = None, log: Callable[[str], None] = print) -> list[str]:
    """Prefetch models (default: :func:`explorer.models.registry.default_models`) into the
    Hugging Face cache; returns the repo ids fetched."""
    return [f.repo_id for f in fetch(names, log)]
