"""Every ``EXPLORER_*`` setting, read in one place through one parser into one frozen object.

``get()`` parses the environment (memoised on the values of the variables it reads, so a test or
a deployment that changes one is seen at the next call) and raises :class:`SettingsError` — one
sentence naming the variable, the bad value and the accepted form — for a bad value. The app and
the CLI call :func:`check` at start-up, so a bad value stops them before anything else runs.

Public mode (a Hugging Face Space, a classroom) is on where ``SPACE_ID`` is set (Spaces set it) or
with ``EXPLORER_PUBLIC=1``; ``EXPLORER_PUBLIC=0`` turns it off even on a Space. In public mode the
limits with a public default below use it (an operator's explicit variable still wins). The
public-mode rules that refuse a request live beside this, in ``explorer.core.public``.

On a Hugging Face Space the platform's own variables are read here too (this is the only module
that reads the environment): ``SPACE_ID`` (the Space's ``owner/name``) and ``SPACES_ZERO_GPU``
(set on ZeroGPU hardware). Where persistent storage is mounted (:data:`DATA_DIR`, ``/data`` on a
Space), the embedding cache defaults to a folder there and :func:`use_persistent_storage` points
``HF_HOME`` there, so models and embeddings survive a restart; an explicit variable still wins.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from explorer.core.errors import ExplorerError

__all__ = [
    "DATA_DIR",
    "VARIABLES",
    "Settings",
    "SettingsError",
    "check",
    "check_or_exit",
    "get",
    "persistent_dir",
    "use_persistent_storage",
]

DATA_DIR = Path("/data")
"""Where a Hugging Face Space mounts persistent storage (a constant, so tests can move it)."""


class SettingsError(ExplorerError):
    """An ``EXPLORER_*`` variable holds a value the app cannot use."""


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError
    return value


def _positive_number(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        raise ValueError
    return value


def _resolution(raw: str) -> int:
    value = int(raw)
    if value < 64:
        raise ValueError
    return value


def _whole(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError
    return value


def _known(raw: str) -> tuple:
    from explorer.core.fairshare import parse_known

    return parse_known(raw)


def _flag(raw: str) -> bool:
    low = raw.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError


def _path(raw: str) -> Path:
    return Path(raw).expanduser()


def _text(raw: str) -> str:
    return raw


def _module_names(raw: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not all(all(p.isidentifier() for p in name.split(".")) for name in names):
        raise ValueError
    return names


_FORMS: dict[Callable[[str], Any], str] = {
    _positive_int: "a whole number of at least 1, e.g. 4",
    _positive_number: "a positive number, e.g. 2048",
    _resolution: "a whole number of pixels of at least 64, e.g. 512",
    _whole: "a whole number of 0 or more, e.g. 1",
    _known: "comma-separated addresses or networks, each optionally =FACTOR, e.g. 203.0.113.7=8,198.51.100.0/24",
    _flag: "1 or 0 (also true/false, yes/no, on/off)",
    _path: "a folder path",
    _text: "any text",
    _module_names: "comma-separated importable module names, e.g. my_models,tests.tiny_models",
}


@dataclass(frozen=True)
class Variable:
    """One environment variable: its field, parser, defaults (private, public) and meaning."""

    name: str
    field: str
    parse: Callable[[str], Any]
    default: Any
    public_default: Any = None
    help: str = ""

    @property
    def form(self) -> str:
        return _FORMS[self.parse]


VARIABLES: tuple[Variable, ...] = (
    Variable("EXPLORER_PUBLIC", "public", _flag, None, None, "public mode on/off"),
    Variable("EXPLORER_MAX_FILE_MB", "max_file_mb", _positive_number, 50.0, 20.0, "largest upload, MiB"),
    Variable("EXPLORER_MAX_PIXELS", "max_pixels", _positive_int, 40_000_000, 16_000_000, "largest image, width × height"),
    Variable("EXPLORER_MAX_SET_IMAGES", "max_set_images", _positive_int, 10_000, 1_000, "most images in one set"),
    Variable("EXPLORER_MAX_ZIP_MB", "max_zip_mb", _positive_number, 2048.0, 500.0, "largest unpacked zip, MiB"),
    Variable("EXPLORER_MAX_RESOLUTION", "max_resolution", _resolution, 1024, 512, "largest lab resolution, px"),
    Variable("EXPLORER_CONCURRENCY", "concurrency", _positive_int, 2, None, "jobs of one kind at once"),
    Variable("EXPLORER_QUEUE_SIZE", "queue_size", _positive_int, 64, None, "most waiting requests"),
    Variable("EXPLORER_MAX_ATLASES", "max_atlases", _positive_int, 64, None, "open atlases kept in memory"),
    Variable("EXPLORER_ATLAS_MEMORY_MB", "atlas_memory_mb", _positive_number, 2048.0, None, "memory for open atlases, MiB"),
    Variable("EXPLORER_DISPLAY_MAX_POINTS", "display_max_points", _positive_int, 1_000_000, 100_000, "atlas points sent to the browser"),
    Variable("EXPLORER_CACHE_DIR", "cache_dir", _path, None, None, "embedding cache folder"),
    Variable("EXPLORER_CACHE_MAX_MB", "cache_max_mb", _positive_number, 2048.0, None, "embedding cache size, MiB"),
    Variable("EXPLORER_MODELS_DIR", "models_dir", _path, None, None, "folder of local TAESD-family checkpoints"),
    Variable("EXPLORER_DEFAULT_VAE", "default_vae", _text, None, None, "the VAE selected at start"),
    Variable("EXPLORER_MAX_MODELS", "max_models", _positive_int, 4, None, "models kept loaded"),
    Variable("EXPLORER_PLUGINS", "plugins", _module_names, (), None, "modules that register models"),
    Variable("EXPLORER_TMP_MAX_AGE_S", "tmp_max_age_s", _positive_number, 3600.0, None, "age of temporary outputs, s"),
    Variable("EXPLORER_TMP_MAX_MB", "tmp_max_mb", _positive_number, 1024.0, 256.0, "size of temporary outputs, MiB"),
    Variable("EXPLORER_MAX_SET_MEGAPIXELS", "max_set_megapixels", _positive_number, 20_000.0, 1_000.0, "pixels decoded for one set, millions"),
    # per-visitor limits (public mode only; see explorer.core.fairshare and the README)
    Variable("EXPLORER_PROXY_HOPS", "proxy_hops", _whole, None, None, "reverse proxies in front that append X-Forwarded-For (default 1 on a Space, else 0)"),
    Variable("EXPLORER_VISITOR_REQUESTS", "visitor_requests", _positive_int, 32, None, "requests waiting or running from one network address"),
    Variable("EXPLORER_SESSION_REQUESTS", "session_requests", _positive_int, 4, None, "requests waiting or running from one browser tab"),
    Variable("EXPLORER_VISITOR_CPU_S", "visitor_cpu_s", _positive_number, None, None, "CPU-seconds one address may buy per minute (default 60 per CPU core)"),
    Variable("EXPLORER_SESSION_CPU_S", "session_cpu_s", _positive_number, 60.0, None, "CPU-seconds one browser tab may buy per minute"),
    Variable("EXPLORER_KNOWN_ADDRESSES", "known_addresses", _known, (), None, "addresses whose limits are multiplied (a school's)"),
    Variable("EXPLORER_REQUEST_MB", "request_mb", _positive_number, None, None, "largest request body, MiB (default: two images inline)"),
    Variable("EXPLORER_UPLOAD_MB", "upload_mb", _positive_number, None, None, "largest upload request body, MiB (default: the zip limit + 1)"),
    Variable("EXPLORER_LISTENER_GRACE_S", "listener_grace_s", _positive_number, 5.0, None, "a waiting request nobody listens for is dropped after this, s"),
    Variable("EXPLORER_PACK", "pack", _path, None, None, "a class pack folder (python -m explorer classpack)"),
)  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """The parsed settings (see :data:`VARIABLES` for each field's variable and default)."""

    public: bool
    max_file_mb: float
    max_pixels: int
    max_set_images: int
    max_zip_mb: float
    max_resolution: int
    concurrency: int
    queue_size: int
    max_atlases: int
    atlas_memory_mb: float
    display_max_points: int
    cache_dir: Path
    cache_max_mb: float
    models_dir: Path | None
    default_vae: str | None
    max_models: int
    plugins: tuple[str, ...]
    tmp_max_age_s: float
    tmp_max_mb: float
    max_set_megapixels: float = 20_000.0
    proxy_hops: int = 0
    visitor_requests: int = 32
    session_requests: int = 4
    visitor_cpu_s: float = 120.0
    session_cpu_s: float = 60.0
    known_addresses: tuple = ()
    request_mb: float | None = None
    upload_mb: float | None = None
    listener_grace_s: float = 5.0
    pack: Path | None = None  # EXPLORER_PACK: a class pack to open (explorer.core.pack)
    space_id: str | None = None  # SPACE_ID: the Space's owner/name, set by Hugging Face Spaces
    zero_gpu: bool = False  # SPACES_ZERO_GPU: the Space runs on ZeroGPU hardware

    @property
    def max_file_bytes(self) -> int:
        return max(1, int(self.max_file_mb * 1024 * 1024))

    @property
    def max_zip_bytes(self) -> int:
        return max(1, int(self.max_zip_mb * 1024 * 1024))

    @property
    def max_set_pixels(self) -> int:
        return max(1, int(self.max_set_megapixels * 1_000_000))


_PLATFORM = ("SPACE_ID", "SPACES_ZERO_GPU")  # set by Hugging Face Spaces, not by an operator


def _names() -> tuple[str, ...]:
    return (*(v.name for v in VARIABLES), *_PLATFORM)


def persistent_dir() -> Path | None:
    """:data:`DATA_DIR` where persistent storage is mounted there (a folder), else None."""
    return DATA_DIR if DATA_DIR.is_dir() else None


def use_persistent_storage() -> Path | None:
    """Put the Hugging Face cache on persistent storage: where :func:`persistent_dir` exists and
    ``HF_HOME`` is unset, set ``HF_HOME`` to ``<data>/.huggingface``. Call it before
    huggingface_hub is imported (it reads ``HF_HOME`` once): app.py does, first thing. Returns the
    folder set, or None (no persistent storage, or ``HF_HOME`` already chosen by the operator)."""
    data = persistent_dir()
    if data is None or os.environ.get("HF_HOME"):
        return None
    home = data / ".huggingface"
    os.environ["HF_HOME"] = str(home)
    return home


def _parse(env: tuple[tuple[str, str | None], ...], data: Path | None = None) -> Settings:
    values = {k: (v or "").strip() for k, v in env}
    public_raw = values["EXPLORER_PUBLIC"]
    out: dict[str, Any] = {}
    for var in VARIABLES:
        raw = values[var.name]
        if not raw:
            continue
        try:
            out[var.field] = var.parse(raw)
        except (ValueError, OverflowError):
            raise SettingsError(
                f"{var.name}={raw!r} is not valid: set it to {var.form} ({var.help}), "
                "or unset it for the default."
            ) from None
    public = out.get("public")
    if public is None:
        public = bool(values["SPACE_ID"]) if not public_raw else False
    out["public"] = public
    for var in VARIABLES:
        if var.field not in out:
            use_public = public and var.public_default is not None
            out[var.field] = var.public_default if use_public else var.default
    if out["cache_dir"] is None:
        base = data if data is not None else Path.home() / ".cache"
        out["cache_dir"] = base / "latent-space-explorer"
    out["space_id"] = values["SPACE_ID"] or None
    if out["proxy_hops"] is None:  # a Space is reached only through the platform's proxy
        out["proxy_hops"] = 1 if out["space_id"] else 0
    if out["visitor_cpu_s"] is None:  # the machine's own CPU-seconds per minute
        out["visitor_cpu_s"] = 60.0 * (os.cpu_count() or 1)
    try:
        out["zero_gpu"] = _flag(values["SPACES_ZERO_GPU"]) if values["SPACES_ZERO_GPU"] else False
    except ValueError:
        out["zero_gpu"] = False  # the platform's variable: an odd value means no ZeroGPU
    known = {f.name for f in fields(Settings)}
    return Settings(**{k: v for k, v in out.items() if k in known})


@lru_cache(maxsize=8)
def _cached(env: tuple[tuple[str, str | None], ...], data: Path | None) -> Settings:
    return _parse(env, data)


def get() -> Settings:
    """The settings for the current environment; :class:`SettingsError` for a bad value."""
    return _cached(tuple((name, os.environ.get(name)) for name in _names()), persistent_dir())


def check() -> Settings:
    """Start-up check: the settings, or :class:`SettingsError` naming the first bad variable
    (or, in public mode, a per-address limit that would let one address fill the queue)."""
    s = get()
    if s.public and s.visitor_requests >= s.queue_size:
        raise SettingsError(
            f"EXPLORER_VISITOR_REQUESTS={s.visitor_requests} lets one network address fill the "
            f"whole queue (EXPLORER_QUEUE_SIZE={s.queue_size}): set it below the queue size, "
            "e.g. half of it, or raise EXPLORER_QUEUE_SIZE."
        )
    return s


def check_or_exit() -> Settings:
    """:func:`check` for a program's start: a bad value prints its one sentence and exits 2."""
    try:
        return check()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
