"""A class pack: one folder, made once with internet, that the app opens with none.

Layout (every file but the manifest is listed in it with its SHA-256)::

    DIR/manifest.json          what is in it: sets, models and their revisions, spaces, files
    DIR/hub/                   a Hugging Face cache (models--owner--name/snapshots/<commit>/...)
    DIR/embeddings/            an embedding cache (explorer.spaces.cache layout), read-only here
    DIR/playground/            trained playground models (explorer.playground.cache layout)
    DIR/sets/                  copies of the image sets that do not ship with the app

:func:`verify` refuses, with one sentence, a folder without a manifest, a pack written by another
version of the app or in another pack format, and a pack whose files differ from the manifest
(changed, missing, added, or a link). :func:`activate` points the Hugging Face libraries at the
pack's cache and turns the Hub off (``HF_HUB_OFFLINE``); call it before huggingface_hub is
imported, as ``app.py`` and the CLI do (if it is imported already, its constants are updated
too). The embedding and playground caches read the pack through :func:`active_root`, as a layer
under the user's own caches: nothing is ever written into a pack once it is made.

Building one is :mod:`explorer.classpack` (``python -m explorer classpack``); this module reads
and checks, and imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explorer.core import settings
from explorer.core.errors import ExplorerError
from explorer.core.files import atomic_write

__all__ = [
    "EMBEDDINGS_DIR",
    "FORMAT",
    "HUB_DIR",
    "MANIFEST",
    "PLAYGROUND_DIR",
    "SETS_DIR",
    "Pack",
    "PackError",
    "activate",
    "active",
    "active_root",
    "app_version",
    "file_hashes",
    "hub_cache",
    "hub_environment",
    "open_or_exit",
    "verify",
    "write_manifest",
]

FORMAT = 1  # bump when the layout or the manifest's meaning changes
MANIFEST = "manifest.json"
HUB_DIR = "hub"
EMBEDDINGS_DIR = "embeddings"
PLAYGROUND_DIR = "playground"
SETS_DIR = "sets"
REBUILD = "Build it again with `python -m explorer classpack --out DIR` on a machine with internet."
# What copying a folder between systems adds by itself: never part of a pack, never a change.
_OS_LITTER = {".DS_Store", "Thumbs.db", "desktop.ini"}
_CHUNK = 1 << 20
_ON = {"1", "ON", "YES", "TRUE"}


class PackError(ExplorerError):
    """A folder that is not a class pack this app can open (the message says why and what to do)."""


def app_version() -> str:
    """() -> the app's version string (``explorer.__version__``)."""
    import explorer

    return str(explorer.__version__)


@dataclass(frozen=True)
class Pack:
    """A verified pack: its folder and its parsed manifest."""

    root: Path
    manifest: dict[str, Any] = field(repr=False)

    @property
    def hub(self) -> Path:
        return self.root / HUB_DIR

    @property
    def embeddings(self) -> Path:
        return self.root / EMBEDDINGS_DIR

    @property
    def playground(self) -> Path:
        return self.root / PLAYGROUND_DIR

    @property
    def sets(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("sets", []))

    @property
    def models(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("models", []))

    def set_named(self, name: str) -> dict[str, Any]:
        """The manifest's entry of the set called ``name``; PackError if there is none."""
        for entry in self.sets:
            if entry.get("name") == name:
                return entry
        names = ", ".join(str(s.get("name")) for s in self.sets) or "none"
        raise PackError(f"The class pack holds no set called {name!r}; it holds: {names}.")


# --------------------------------------------------------------------------- hashing


def _litter(name: str) -> bool:
    return name in _OS_LITTER or name.startswith("._")


def _checksum(manifest: dict[str, Any]) -> str:
    """SHA-256 of the manifest's canonical JSON without its own ``checksum`` field."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _walk(root: Path) -> tuple[list[str], list[str]]:
    """(regular files, links or other non-files) under ``root`` as sorted POSIX paths relative
    to it, the manifest and OS litter left out."""
    files, odd = [], []
    for dirpath, dirs, names in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for d in list(dirs):
            if (base / d).is_symlink():
                odd.append((base / d).relative_to(root).as_posix())
                dirs.remove(d)
        for name in names:
            path = base / name
            rel = path.relative_to(root).as_posix()
            if rel == MANIFEST or _litter(name):
                continue
            (files if path.is_file() and not path.is_symlink() else odd).append(rel)
    return sorted(files), sorted(odd)


def file_hashes(root: str | os.PathLike) -> dict[str, str]:
    """A folder -> ``{relative POSIX path: SHA-256 hex}`` of every regular file under it but the
    manifest (and OS litter such as ``.DS_Store``). A link inside is a :class:`PackError`: a
    pack holds files only, so that it survives being copied to any disk."""
    root = Path(root)
    files, odd = _walk(root)
    if odd:
        raise PackError(
            f"{root} holds a link or special file ({odd[0]}): a class pack holds plain files only."
        )
    return {rel: _sha256(root / rel) for rel in files}


def write_manifest(root: str | os.PathLike, content: dict[str, Any]) -> dict[str, Any]:
    """Write ``root/manifest.json``: ``content`` (sets, models, spaces, ...) plus the pack format,
    the app's version, the time, the hash of every file and the total size. -> the manifest."""
    root = Path(root)
    hashes = file_hashes(root)
    size = sum((root / rel).stat().st_size for rel in hashes)
    manifest = {
        "format": FORMAT,
        "app_version": app_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **content,
        "size_bytes": size,
        "files": hashes,
    }
    manifest["checksum"] = _checksum(manifest)
    atomic_write(root / MANIFEST, (json.dumps(manifest, indent=1, sort_keys=False) + "\n").encode())
    return manifest


# --------------------------------------------------------------------------- checking


def _listing(paths: list[str]) -> str:
    shown = ", ".join(paths[:3])
    return shown + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


def verify(root: str | os.PathLike) -> Pack:
    """A folder -> the :class:`Pack` it holds, or :class:`PackError` with one sentence: no such
    folder, no readable manifest, another app version or pack format, or files that differ from
    the manifest (changed, missing, added; a link). Reads every file once (its hash)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise PackError(
            f"The class pack {root} is not a folder. Give the folder `classpack` wrote."
        )
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        if not isinstance(manifest, dict):
            raise ValueError("not an object")
    except FileNotFoundError:
        raise PackError(
            f"{root} is not a class pack: it has no {MANIFEST}. Give the folder that "
            "`python -m explorer classpack --out DIR` wrote."
        ) from None
    except (OSError, ValueError) as exc:
        raise PackError(
            f"The class pack's {MANIFEST} in {root} cannot be read ({exc}). {REBUILD}"
        ) from None
    made_by, fmt = manifest.get("app_version"), manifest.get("format")
    if made_by != app_version() or fmt != FORMAT:
        raise PackError(
            f"The class pack {root} was made by Latent Space Explorer {made_by} (pack format "
            f"{fmt}); this is version {app_version()} (pack format {FORMAT}), which may read its "
            f"embeddings or models differently, so it is not opened. {REBUILD}"
        )
    expected = manifest.get("files")
    if not isinstance(expected, dict) or manifest.get("checksum") != _checksum(manifest):
        raise PackError(
            f"The class pack's {MANIFEST} in {root} was changed after the pack was made (its "
            f"checksum does not match). Copy the pack again from where it was made. {REBUILD}"
        )
    files, odd = _walk(root)
    if odd:
        raise PackError(
            f"The class pack {root} holds a link or special file ({_listing(odd)}), which its "
            f"maker did not write. Copy the pack again from where it was made. {REBUILD}"
        )
    missing = sorted(set(expected) - set(files))
    added = sorted(set(files) - set(expected))
    changed = [rel for rel in files if rel in expected and _sha256(root / rel) != expected[rel]]
    problems = []
    if changed:
        problems.append(f"changed since it was made: {_listing(changed)}")
    if missing:
        problems.append(f"missing: {_listing(missing)}")
    if added:
        problems.append(f"not written by its maker: {_listing(added)}")
    if problems:
        raise PackError(
            f"The class pack {root} is not opened because files differ from its manifest ("
            + "; ".join(problems)
            + f"). Copy the pack again from where it was made. {REBUILD}"
        )
    return Pack(root, manifest)


# --------------------------------------------------------------------------- using one


def hub_environment(pack: Pack) -> dict[str, str]:
    """The environment that makes the Hugging Face libraries read ``pack``'s cache, offline."""
    return {
        "HF_HUB_CACHE": str(pack.hub),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }


def _point_hub(env: dict[str, str | None]) -> Callable[[], None]:
    """Set (or, for None, unset) these variables, in the environment and in huggingface_hub's
    constants if it is imported already (it reads them once); -> a function that restores both."""
    before = {k: os.environ.get(k) for k in env}
    constants = sys.modules.get("huggingface_hub.constants")
    saved = {k: getattr(constants, k) for k in env if hasattr(constants, k)} if constants else {}
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    if constants is not None:
        if "HF_HUB_CACHE" in env:
            constants.HF_HUB_CACHE = env["HF_HUB_CACHE"] or constants.default_cache_path
        if "HF_HUB_OFFLINE" in env:
            constants.HF_HUB_OFFLINE = (env["HF_HUB_OFFLINE"] or "").upper() in _ON

    def restore() -> None:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for k, v in saved.items():
            setattr(constants, k, v)

    return restore


@contextlib.contextmanager
def hub_cache(folder: str | os.PathLike) -> Iterator[Path]:
    """For the block: the Hugging Face cache is ``folder`` and the Hub is on (what building a
    pack downloads into); the previous settings come back after it."""
    restore = _point_hub({"HF_HUB_CACHE": str(folder), "HF_HUB_OFFLINE": None})
    try:
        yield Path(folder)
    finally:
        restore()


_ACTIVE: dict[Path, Pack] = {}
_LOCK = threading.Lock()


def activate(root: str | os.PathLike) -> Pack:
    """Verify the pack at ``root`` and point this process at it: the Hugging Face cache is the
    pack's, the Hub is off (environment and, if imported already, huggingface_hub's constants).
    -> the :class:`Pack`. A pack already verified in this process is not hashed again."""
    key = Path(root).expanduser().resolve()
    with _LOCK:
        pack = _ACTIVE.get(key) or verify(key)
        _ACTIVE[key] = pack
    _point_hub(dict(hub_environment(pack)))
    return pack


def active() -> Pack | None:
    """The pack named by ``EXPLORER_PACK`` (verified and activated once), or None without one."""
    root = settings.get().pack
    return None if root is None else activate(root)


def active_root() -> Path | None:
    """() -> the active pack's folder, or None (see :func:`active`)."""
    found = active()
    return None if found is None else found.root


def open_or_exit() -> Pack | None:
    """For a program's start (``app.py``): :func:`active`, its one line on stderr; a pack that
    cannot be opened prints its sentence and exits 2."""
    started = time.perf_counter()
    try:
        found = active()
    except PackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if found is not None:
        n = len(found.manifest.get("files", {}))
        size = found.manifest.get("size_bytes", 0) / 2**20
        print(
            f"class pack {found.root}: {n} files ({size:,.1f} MiB) checked in "
            f"{time.perf_counter() - started:.1f} s; the Hugging Face Hub is off",
            file=sys.stderr,
        )
    return found
