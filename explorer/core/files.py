"""Files the app writes: its temporary folder, per-request paths, pruning, one atomic write.

Every folder the app writes is bounded twice — by age and by total size — so a long-running
public app's disk stays bounded. ``tmp_root()`` is this process's own folder under the system's
temporary directory; folders left by earlier processes (``latent-explorer-*``) are removed at
start-up once they are older than the age limit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import BinaryIO

from explorer.core import settings
from explorer.core.errors import ExplorerError

__all__ = [
    "NoRoomError",
    "atomic_write",
    "cap_folder",
    "every",
    "folder_bytes",
    "prune",
    "room",
    "tmp_path",
    "tmp_root",
]

log = logging.getLogger(__name__)

PREFIX = "latent-explorer-"
PRUNE_EVERY_S = 60.0  # a folder is scanned at most once a minute, not on every request

_root: Path | None = None
_root_lock = threading.Lock()
_last_prune: dict[Path, float] = {}


def atomic_write(path: str | os.PathLike[str], data: bytes | Callable[[BinaryIO], object]) -> Path:
    """Write ``data`` (bytes, or a function that writes to a binary file) to ``path`` atomically.

    The file is written under a temporary name of its own in the same folder and renamed over
    ``path``, so a reader (another session, the web server) never sees a half-written file, and
    writers of the same path at once never share a temporary file.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, (bytes, bytearray, memoryview)):
                fh.write(data)
            else:
                data(fh)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return out


def folder_bytes(folder: Path) -> int:
    """Total size in bytes of the files under ``folder`` (0 where it is missing)."""
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _entries(folder: Path) -> list[tuple[float, int, Path]]:
    """(mtime, bytes, path) for each entry directly under ``folder``, oldest first."""
    out = []
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            try:
                st = entry.lstat()
                size = folder_bytes(entry) if entry.is_dir() else st.st_size
            except OSError:
                continue
            out.append((st.st_mtime, size, entry))
    out.sort(key=lambda e: (e[0], str(e[2])))
    return out


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def prune(
    folder: Path,
    max_age_s: float,
    max_bytes: float,
    now: float | None = None,
    keep: Callable[[Path], bool] | None = None,
) -> int:
    """Delete entries of ``folder`` older than ``max_age_s``, then the oldest until the rest fit in
    ``max_bytes``; entries for which ``keep`` is true are never deleted. Returns how many went."""
    now = time.time() if now is None else now
    entries = _entries(folder)
    total = sum(size for _, size, _ in entries)
    removed = 0
    for mtime, size, path in entries:
        if keep is not None and keep(path):
            continue
        if now - mtime > max_age_s or total > max_bytes:
            _remove(path)
            total -= size
            removed += 1
    return removed


def prune_limits(folder: Path, keep: Callable[[Path], bool] | None = None) -> int:
    """:func:`prune` with the configured limits (``EXPLORER_TMP_MAX_AGE_S``, ``EXPLORER_TMP_MAX_MB``),
    at most once every :data:`PRUNE_EVERY_S` seconds per folder."""
    now = time.time()
    if now - _last_prune.get(folder, 0.0) < PRUNE_EVERY_S:
        return 0
    _last_prune[folder] = now
    s = settings.get()
    return prune(folder, s.tmp_max_age_s, s.tmp_max_mb * 1024 * 1024, now=now, keep=keep)


def every(seconds: float, fn: Callable[[], object], name: str) -> threading.Thread:
    """Start a daemon thread that calls ``fn()`` every ``seconds`` (an error is logged, and the
    next call comes as planned)."""

    def loop() -> None:
        while True:
            time.sleep(seconds)
            try:
                fn()
            except Exception:
                log.exception("%s failed", name)

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread


def cap_folder(folder: Path, max_bytes: float, keep: Collection[str] = ()) -> int:
    """:func:`prune` by size only: the oldest entries of ``folder`` go until the rest fit in
    ``max_bytes``; an entry that is, or holds, a path in ``keep`` stays. -> how many went. For a
    folder someone else writes and sweeps by age only (Gradio's upload cache)."""
    kept = [os.path.abspath(k) for k in keep]

    def holds_kept(entry: Path) -> bool:
        root = os.path.abspath(entry)
        return any(k == root or k.startswith(root + os.sep) for k in kept)

    return prune(folder, float("inf"), max_bytes, keep=holds_kept)


def _stale_roots(age_s: float) -> None:
    """Remove temporary folders that earlier processes of the app left behind."""
    now = time.time()
    for path in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        with contextlib.suppress(OSError):
            if path.is_dir() and path != _root and now - path.stat().st_mtime > age_s:
                shutil.rmtree(path, ignore_errors=True)


def tmp_root() -> Path:
    """This process's own temporary folder (made on first use)."""
    global _root
    with _root_lock:
        if _root is None:
            _root = Path(tempfile.mkdtemp(prefix=PREFIX))
            _stale_roots(settings.get().tmp_max_age_s)
        return _root


class NoRoomError(ExplorerError):
    """A write that would take a capped folder past its cap, even with its oldest files gone."""


_rooms: dict[Path, list] = {}  # folder -> [lock, bytes being written there now]
_rooms_lock = threading.Lock()


@contextlib.contextmanager
def room(
    area: str | Path, nbytes: int, *, keep: Path | None = None, max_bytes: float | None = None
) -> Iterator[None]:
    """Make room for ``nbytes`` about to be written under ``area`` (a folder, or a name under
    :func:`tmp_root`) and hold it while the ``with`` block writes them: the folder's oldest
    entries (not ``keep``) go until what it holds, plus what is being written there now, plus
    ``nbytes``, fits in ``max_bytes`` (default ``EXPLORER_TMP_MAX_MB``). The cap is checked at
    each write, not only once a minute. Raises :class:`NoRoomError` with a sentence where even
    that is not enough."""
    base = Path(area) if isinstance(area, Path) else tmp_root() / area
    s = settings.get()
    cap = s.tmp_max_mb * 1024 * 1024 if max_bytes is None else float(max_bytes)
    if nbytes > cap:
        raise NoRoomError(
            f"This result is {nbytes / 2**20:,.1f} MB, more than the {cap / 2**20:,.0f} MB this "
            "app keeps for such files; use a smaller set, or run the explorer on your own machine."
        )
    with _rooms_lock:
        rec = _rooms.setdefault(base.resolve(), [threading.Lock(), 0])
    with rec[0]:
        kept = (lambda p: p.resolve() == keep.resolve()) if keep is not None else None
        if folder_bytes(base) + rec[1] + nbytes > cap:
            prune(base, s.tmp_max_age_s, cap - rec[1] - nbytes, keep=kept)
        if folder_bytes(base) + rec[1] + nbytes > cap:
            raise NoRoomError(
                "The space this app keeps for such files is full just now (others are being "
                "written); try again in a minute."
            )
        rec[1] += nbytes
    try:
        yield
    finally:
        with rec[0]:
            rec[1] -= nbytes


def tmp_path(name: str, area: str = "requests") -> Path:
    """A fresh path ending in ``name`` in a new folder under ``tmp_root()/area`` (pruned by age and
    size at most once a minute)."""
    base = tmp_root() / area
    base.mkdir(parents=True, exist_ok=True)
    prune_limits(base)
    folder = base / uuid.uuid4().hex
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
