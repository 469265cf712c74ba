"""The Hugging Face Hub and its local cache: is the Hub reachable, is a model cached, loading from
the cache first, revisions for cache keys (prefetching is :mod:`explorer.models.download`).

Reachability reads HF_HUB_OFFLINE / HF_DATASETS_OFFLINE at call time, honours HF_ENDPOINT and
proxies, and bounds DNS + connect with :data:`HUB_TIMEOUT_S` (name resolution has no timeout of its
own), so that offline use fails fast with a sentence naming the download command.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

from explorer.core.errors import ModelUnavailableError
from explorer.models.specs import DOWNLOAD_HINT

if TYPE_CHECKING:
    from explorer.models.specs import EmbedderSpec, VAESpec

__all__ = [
    "EMBEDDER_FILES",
    "HUB_TIMEOUT_S",
    "VAE_FILES",
    "VQ_BIN_FILES",
    "from_pretrained",
    "hub_reachable",
    "hub_unreachable_reason",
    "is_cached",
    "model_file",
    "model_revision",
    "unet_files",
]

HUB_TIMEOUT_S = 3.0
"""Seconds allowed for the reachability check (DNS + TCP connect) before giving up."""

# What `python -m explorer download` fetches: configs, processors, tokenizers and safetensors
# weights only (no pickles, no TF/Flax weights).
VAE_FILES = ["*.json", "*.safetensors", "*.txt", "*.model"]
# The latent-diffusion VQ autoencoders on the Hub publish .bin weights only; diffusers loads them
# with torch.load(weights_only=True) (tensors only, no code), see explorer.models.vae._load_vq.
VQ_BIN_FILES = ["diffusion_pytorch_model.bin"]
EMBEDDER_FILES = [
    "config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "*.safetensors",
]


def unet_files(variant: str | None) -> list[str]:
    """A Stable Diffusion pipeline's files the UNet space needs: configs, the tokenizer, and the
    UNet's and text encoder's safetensors weights (of ``variant``, e.g. ``fp16``)."""
    weights = f"*.{variant}.safetensors" if variant else "*.safetensors"
    folders = ("unet", "text_encoder", "tokenizer")
    return [
        "model_index.json",
        *(f"{f}/{p}" for f in folders for p in ("*.json", "*.txt", weights)),
    ]


# --------------------------------------------------------------------------- reachability


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _can_connect(host: str, port: int, timeout: float) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` s, DNS included.

    Runs in a daemon thread because name resolution has no timeout of its own.
    """
    result: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except (OSError, ValueError):
            result.append(False)

    thread = threading.Thread(target=attempt, name="hub-reachable", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def hub_unreachable_reason(timeout: float = HUB_TIMEOUT_S) -> str | None:
    """None when the Hub looks reachable, else a short reason (offline flag, no connection)."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if _truthy(os.environ.get(var)):
            return f"{var} is set"
    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    url = urlsplit(os.environ.get("HF_ENDPOINT") or constants.ENDPOINT)
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    target = (host, port)
    proxy = urllib.request.getproxies().get(url.scheme or "https")
    if proxy and not urllib.request.proxy_bypass(host):
        purl = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if purl.hostname:
            target = (purl.hostname, purl.port or 80)
    if not _can_connect(target[0], target[1], timeout):
        via = f" (through the proxy {target[0]})" if target[0] != host else ""
        return f"{host} could not be reached within {timeout:g} s{via}"
    return None


def hub_reachable(timeout: float = HUB_TIMEOUT_S) -> bool:
    """False when an offline flag is set or the Hub cannot be reached within ``timeout`` s."""
    return hub_unreachable_reason(timeout) is None


# --------------------------------------------------------------------------- the cache


def _cached(repo_id: str, filename: str) -> str | None:
    """The cached file's path, or None (no network)."""
    path = try_to_load_from_cache(repo_id, filename)
    return path if isinstance(path, str) else None


def is_cached(spec: VAESpec | EmbedderSpec) -> bool:
    """Whether loading ``spec`` needs no download: a model registered in code, local files, or a
    Hub model whose config is in the local Hugging Face cache (no network)."""
    if spec.build is not None or not spec.repo_id or Path(spec.repo_id).exists():
        return True
    return _cached(spec.repo_id, _config_name(getattr(spec, "subfolder", None))) is not None


def _config_name(subfolder: str | None) -> str:
    return f"{subfolder}/config.json" if subfolder else "config.json"


def from_pretrained(loader: Callable[..., object], repo_id: str, what: str, **kwargs) -> object:
    """Call ``loader(repo_id, **kwargs)`` from the cache first, then from the Hub if reachable."""
    if Path(repo_id).exists():
        return loader(repo_id, **kwargs)
    try:
        return loader(repo_id, local_files_only=True, **kwargs)
    except (OSError, ValueError):
        pass
    if not hub_reachable():
        raise ModelUnavailableError(
            f"{what} ({repo_id}) is not in the Hugging Face cache and the Hub cannot be reached. "
            + DOWNLOAD_HINT
        )
    try:
        return loader(repo_id, **kwargs)
    except Exception as exc:
        gated = "gated" in str(exc).lower() or "401" in str(exc) or "403" in str(exc)
        hint = (
            "Accept its licence on huggingface.co and log in with `hf auth login`."
            if gated
            else DOWNLOAD_HINT
        )
        raise ModelUnavailableError(f"Could not load {what} ({repo_id}): {exc}. {hint}") from exc


def model_file(repo_id: str, filename: str, what: str, subfolder: str | None = None) -> Path:
    """One file of a local model folder or of a Hub model (cache first, then the Hub)."""
    folder = Path(repo_id)
    if folder.exists():
        path = folder / (subfolder or "") / filename
        if not path.is_file():
            raise ModelUnavailableError(f"{what}: {folder} has no {path.relative_to(folder)}.")
        return path
    return Path(
        from_pretrained(
            lambda repo, **kw: hf_hub_download(repo, filename, subfolder=subfolder, **kw),
            repo_id,
            what,
        )
    )


# --------------------------------------------------------------------------- revisions


def _hub_revision(repo_id: str, subfolder: str | None = None) -> str:
    """The commit hash of the cached snapshot of ``repo_id`` (``"unknown"`` if not cached)."""
    path = _cached(repo_id, _config_name(subfolder))
    if path is not None:
        parts = Path(path).parts
        if "snapshots" in parts and parts.index("snapshots") + 1 < len(parts):
            return parts[parts.index("snapshots") + 1]
    return "unknown"


def _local_revision(paths: list[Path]) -> str:
    """A fingerprint of local files: config contents, and name/size/mtime of the rest."""
    h = hashlib.sha256()
    for p in sorted(paths):
        try:
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns};".encode())
            if p.suffix == ".json" and st.st_size < 1_000_000:
                h.update(p.read_bytes())
        except OSError:
            h.update(f"{p.name}:missing;".encode())
    return "local-" + h.hexdigest()[:16]


def _folder_files(folder: Path) -> list[Path]:
    return [
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix in (".json", ".safetensors", ".bin", ".txt", ".pth")
    ]


def model_revision(spec: VAESpec | EmbedderSpec) -> str:
    """What identifies the weights behind ``spec`` for cache keys: the spec's own ``revision``
    for a model registered in code (``"unknown"`` without one), the Hub snapshot's commit hash
    for Hub models (``"unknown"`` while not cached), ``"local-<fingerprint>"`` for local files."""
    if spec.build is not None:
        return spec.revision or "unknown"
    if getattr(spec, "encoder_path", None):  # a TAESD-family file pair
        return _local_revision([spec.encoder_path, spec.decoder_path])
    if not spec.repo_id:
        return "unknown"
    if Path(spec.repo_id).exists():
        return _local_revision(_folder_files(Path(spec.repo_id)))
    return _hub_revision(spec.repo_id, getattr(spec, "subfolder", None))
