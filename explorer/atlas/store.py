"""Open atlases by id (the UI keeps only the id), and the hover thumbnails the app serves.

:data:`STORE` is a :class:`~explorer.core.lru.LRU` bounded by count and by memory
(``EXPLORER_MAX_ATLASES``, ``EXPLORER_ATLAS_MEMORY_MB``); thumbnails are written once per image
content, atomically, under the process's temporary folder (:func:`thumb_dir`). A reopened
atlas's thumbnails are served from the bytes that were checked (:func:`serve_bytes`: linked or
copied, never re-encoded: :class:`Serving`) and decoded only when asked for
(:class:`LazyImages`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import secrets
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, overload

from PIL import Image

from explorer.atlas.manifest import digest as _digest
from explorer.core import files, memory, settings
from explorer.core.errors import BadImageError, ExplorerError
from explorer.core.lru import LRU
from explorer.images import io as imaging
from explorer.images.encoded import EncodedImages, pillow_nbytes

if TYPE_CHECKING:
    from explorer.atlas.types import Atlas

__all__ = [
    "STORE",
    "THUMB_SIDE",
    "AtlasStore",
    "LazyImages",
    "ServedPaths",
    "Serving",
    "atlas_nbytes",
    "thumb_dir",
    "thumb_name",
    "thumbnails",
    "write_thumbs",
]

THUMB_SIDE = 96
"""Thumbnails fit in a square of this many pixels."""


STRINGS_COUNTED = 20_000
"""Past this many strings their bytes are estimated from an evenly spaced sample of this many."""


def _strings_nbytes(values) -> int:
    if isinstance(values, ServedPaths):  # counted without waiting for the files' links
        values = values.planned
    n = len(values)
    if n <= STRINGS_COUNTED:
        return sys.getsizeof(values) + sum(sys.getsizeof(v) for v in values)
    step = n / STRINGS_COUNTED
    sample = sum(sys.getsizeof(values[int(k * step)]) for k in range(STRINGS_COUNTED))
    return sys.getsizeof(values) + round(sample * step)


def atlas_nbytes(a: Atlas) -> int:
    """What an open atlas holds in memory, in bytes: its images (as held: nothing for images
    read from files on access, encoded bytes, or a decoded image's own pixels, 4 bytes each for
    RGB as Pillow stores them), its vectors, maps and neighbour lists, and its labels, paths and
    thumbnail names."""
    images = a.images.images
    if isinstance(images, LazyImages):  # decoded on access: only the paths are held
        held = _strings_nbytes(images.paths)
    elif isinstance(images, EncodedImages):
        held = images.nbytes
    else:
        held = sum(pillow_nbytes(im) for im in images)
    vectors = sum(e.nbytes for e in a.embeddings.values())
    coords = sum(xy.nbytes for per in a.coords.values() for xy in per.values())
    lists = sum(i.nbytes + v.nbytes for i, v in a.neighbour_lists.values())
    words = _strings_nbytes(a.images.labels) + _strings_nbytes(a.images.paths)
    words += sum(_strings_nbytes(v) for v in a.images.labelings.values())
    words += _strings_nbytes(a.images.groups or []) + _strings_nbytes(a.images.keys or [])
    words += _strings_nbytes(a.thumbs)
    return held + vectors + coords + lists + words


def _released() -> None:
    memory.release_freed(collect=True)


class AtlasStore:
    """Open atlases by id, least recently used closed first.

    Bounded twice: at most ``size`` atlases (EXPLORER_MAX_ATLASES, 64: a classroom's worth of
    sessions) and ``max_mb`` of what they hold (EXPLORER_ATLAS_MEMORY_MB, 2048; counted by
    :func:`atlas_nbytes`: an atlas built here holds its thumbnails as JPEG bytes, a few KB an
    image, beside its vectors). The newest atlas is always kept, whatever its size; after an
    eviction the freed memory is returned to the system (:func:`memory.release_freed`).
    """

    def __init__(self, size: int | None = None, max_mb: float | None = None):
        self._lru: LRU[Atlas] = LRU(
            size if size is not None else (lambda: settings.get().max_atlases),
            (lambda: settings.get().atlas_memory_mb * 2**20) if max_mb is None else max_mb * 2**20,
            sizeof=atlas_nbytes,
            on_evict=_released,  # the evicted atlas's memory back to the system (glibc)
        )

    @property
    def size(self) -> int:
        return self._lru.max_items

    @property
    def max_bytes(self) -> int:
        return int(self._lru.max_bytes or 0)

    @property
    def nbytes(self) -> int:
        return self._lru.nbytes

    def __len__(self) -> int:
        return len(self._lru)

    def ids(self) -> list[str]:
        return list(self._lru.keys())

    def put(self, atlas: Atlas) -> str:
        self._lru.put(atlas.id, atlas)
        return atlas.id

    def get(self, atlas_id: str | None) -> Atlas:
        found = self._lru.get(atlas_id or "")
        if found is None:
            raise ExplorerError(
                "No image set is open (or it was closed to free memory): open one first."
            )
        return found


STORE = AtlasStore()


def thumb_dir() -> Path:
    """Where hover thumbnails are written (served by the app as static files)."""
    folder = files.tmp_root() / "thumbs"
    folder.mkdir(parents=True, exist_ok=True)
    files.prune_limits(folder)  # bounded by age and size like every folder the app writes
    return folder


_SALT = secrets.token_bytes(16)


def thumb_name(key: str) -> str:
    """A content key -> the file name its thumbnail is served under (``<32 hex>.jpg``)."""
    # salted with this process's secret: thumbnails are served as static files, and an
    # unsalted content hash would let anyone test whether a given image was uploaded
    return hashlib.sha256(_SALT + str(key).encode()).hexdigest()[:32] + ".jpg"


def thumbnails(
    images: Sequence[Image.Image], hashes: Sequence[str], folder: Path
) -> tuple[list[str], EncodedImages]:
    """One JPEG thumbnail (at most :data:`THUMB_SIDE` px) per image, named by its content hash,
    in ``folder`` (an existing one is reused) -> (the paths, the thumbnails as held bytes), in
    the images' order."""
    paths, data = [], []
    done: dict[str, tuple[str, bytes]] = {}  # images of the same content share one thumbnail
    for im, h in zip(images, hashes, strict=True):
        if h in done:
            paths.append(done[h][0])
            data.append(done[h][1])
            continue
        path = folder / thumb_name(h)
        try:
            encoded = path.read_bytes()
        except OSError:
            t = im.copy()
            t.thumbnail((THUMB_SIDE, THUMB_SIDE))
            buf = io.BytesIO()
            t.convert("RGB").save(buf, "JPEG", quality=80)
            encoded = buf.getvalue()
            # sessions opening the same images write the same thumbnails at once: each write
            # goes through a temporary file of its own, so none publishes another's half file
            files.atomic_write(path, encoded)
        done[h] = (str(path), encoded)
        paths.append(str(path))
        data.append(encoded)
    return paths, EncodedImages(data)


def write_thumbs(images: Sequence[Image.Image], hashes: Sequence[str], folder: Path) -> list[str]:
    """:func:`thumbnails`' paths only."""
    return thumbnails(images, hashes, folder)[0]


class ServedPaths(list):
    """A reopened atlas's served thumbnail paths, whose files are put in place by a background
    thread (:meth:`Serving.start`): reading a path waits until every file is there;
    :attr:`planned` hands the paths out at once, for URLs the browser fetches only when a point
    is hovered (atlas.js retries one that is not there yet)."""

    def __init__(self, paths: Sequence[str], done: threading.Event) -> None:
        super().__init__(paths)
        self._done = done

    @property
    def planned(self) -> list[str]:
        """The paths, their files in place or not yet."""
        return list(super().__iter__())

    def __getitem__(self, i):
        self._done.wait()
        return super().__getitem__(i)

    def __iter__(self):
        self._done.wait()
        return super().__iter__()


class Serving:
    """A fresh folder under :func:`thumb_dir` that serves one reopened atlas's thumbnails (it
    is pruned as one entry, by its own age, like every file there). Use as a context manager;
    :meth:`defer` queues a checked file to be linked by :meth:`start`'s thread."""

    def __init__(self) -> None:
        self.folder = thumb_dir() / f"saved-{uuid.uuid4().hex}"
        self.folder.mkdir()
        self._prefix = str(self.folder) + os.sep
        self._fd = os.open(self.folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        self._queued: list[tuple[str, bytes, str, int | None, str]] = []
        self._closed = False

    def __enter__(self) -> Serving:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._closed:
            os.close(self._fd)
            self._closed = True

    def add(self, i: int, data: bytes, name: str, dir_fd: int | None = None) -> str:
        """Serve thumbnail ``i``, a checked file's ``data`` read from ``name`` (relative to
        ``dir_fd``), as it is: a hard link to the file where the file system allows one, else
        a copy of ``data``. -> the served path (named by ``i``: the folder's random name keeps
        it from being guessed)."""
        served = f"{i:07d}.jpg"
        self._link(served, data, name, dir_fd)
        return self._prefix + served

    def defer(self, i: int, data: bytes, name: str, dir_fd: int | None, digest: str) -> str:
        """:meth:`add`, done later by :meth:`start`'s thread (which checks that the linked file
        still hashes to ``digest``, the hash ``data`` was checked against) -> the served path."""
        served = f"{i:07d}.jpg"
        self._queued.append((served, data, name, dir_fd, digest))
        return self._prefix + served

    def start(self, paths: Sequence[str], keep_open: contextlib.ExitStack) -> ServedPaths:
        """Link the deferred files in a thread -> ``paths``, read through a :class:`ServedPaths`
        that waits for the thread. The thread owns this folder's descriptor and
        ``keep_open`` (the source folders' descriptors) and closes them when done."""
        done = threading.Event()
        queued, self._queued, self._closed = self._queued, [], True
        stack = keep_open.pop_all()
        stack.callback(os.close, self._fd)

        def link_all() -> None:
            with stack:
                try:
                    for served, data, name, dir_fd, digest in queued:
                        self._link(served, data, name, dir_fd)
                        try:  # replaced between its check and its link: the checked bytes
                            fd = os.open(served, os.O_RDONLY, dir_fd=self._fd)
                            try:
                                same = _digest(os.read(fd, len(data) + 1)) == digest
                            finally:
                                os.close(fd)
                        except OSError:
                            same = False
                        if not same:
                            files.atomic_write(self.folder / served, data)
                finally:
                    done.set()

        threading.Thread(target=link_all, name="thumbnail-links", daemon=True).start()
        return ServedPaths(paths, done)

    def _link(self, served: str, data: bytes, name: str, dir_fd: int | None) -> None:
        try:
            os.link(name, served, src_dir_fd=dir_fd, dst_dir_fd=self._fd, follow_symlinks=False)
        except FileExistsError:
            pass
        except OSError:  # another file system, or links not allowed: write the checked bytes
            files.atomic_write(self.folder / served, data)


class LazyImages(Sequence):
    """Images read from files when asked for, through :func:`explorer.images.io.load_image` (a
    file that cannot be read gives a grey square of :data:`THUMB_SIDE`): a reopened atlas holds
    its thumbnails' paths, not their pixels."""

    def __init__(self, paths: Sequence[str]):
        # (served paths whose files are still being linked are kept as they are: copying them
        # would wait for the links)
        self._paths = paths if isinstance(paths, ServedPaths) else list(paths)

    @property
    def paths(self) -> list[str]:
        """The files the images are read from."""
        return self._paths

    def __len__(self) -> int:
        return len(self._paths)

    @overload
    def __getitem__(self, i: int) -> Image.Image: ...
    @overload
    def __getitem__(self, i: slice) -> LazyImages: ...
    def __getitem__(self, i):
        if isinstance(i, slice):
            return LazyImages(self._paths[i])
        try:
            return imaging.load_image(self._paths[i])
        except BadImageError:
            return Image.new("RGB", (THUMB_SIDE, THUMB_SIDE), (200, 200, 200))

    def __iter__(self) -> Iterator[Image.Image]:
        return (self[i] for i in range(len(self)))
