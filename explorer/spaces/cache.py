"""Embeddings cached on disk, so that re-opening a set of images costs no model time.

Key: ``(space family, model id, model revision, preprocessing description)`` names a
*shard*; inside a shard each image is found by its content hash and holds one vector.

Layout (``root`` is ``EXPLORER_CACHE_DIR``, default ``~/.cache/latent-space-explorer``)::

    root/embeddings-v1/<shard id>/key.json         the key, for people (never trusted)
    root/embeddings-v1/<shard id>/.used            its mtime: when the shard was last used
    root/embeddings-v1/<shard id>/<time>-<rand>.vec one segment per put_many

A segment is a small header (magic, count, dimension, SHA-256 of the payload) followed by
the 32-byte digests of the image hashes and the float32 vectors, read with a single
``read_bytes`` + ``np.frombuffer``. Why this and not sqlite or one ``.npy`` per image:

* Reopening 10,000 images is one directory listing plus reading one or a few files: a few
  tens of milliseconds, where one file per image means 10,000 opens and sqlite means
  10,000 row look-ups plus a blob copy each.
* Segments are written once to a temporary name and renamed (atomic on POSIX and
  Windows), so readers never see half a file, two threads or two processes never write to
  the same file, and nothing needs a lock across processes. Small segments are merged
  into one (compaction) when a shard has more than ``MAX_SEGMENTS``.
* A damaged segment (truncated, bit-flipped, not ours) fails its checksum, is deleted and
  its images count as missing, so they are simply recomputed; one bad file never costs
  more than its own vectors and nothing here raises on a bad cache.
* Eviction is per shard (least recently used first, by the ``.used`` time stamp, which is
  set explicitly so ties cannot happen) whenever the total exceeds ``EXPLORER_CACHE_MAX_MB``
  (default 2048). The bound is strict: a single shard larger than the bound is dropped too.

Vectors come back read-only (``np.frombuffer`` views); copy them to modify.

**Layers.** ``EmbeddingCache(root, read_only=True)`` never writes, touches or deletes anything
under ``root`` (a class pack's embeddings, verified by their hashes); ``under=`` puts such a
cache beneath a writable one: what the top cache lacks is read from the one under it, and new
rows go to the top. :func:`shared` does so while a class pack is open (``EXPLORER_PACK``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import struct
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from explorer.core import settings
from explorer.core.files import atomic_write

log = logging.getLogger(__name__)

MAGIC = b"LSXVEC1\n"
_HEADER = struct.Struct("<8sQQ32s")  # magic, n, d, sha256(payload)
LAYOUT = "embeddings-v1"
MAX_SEGMENTS = 16
DIGEST_BYTES = 32
STALE_TMP_S = 3600.0


def default_root() -> Path:
    """EXPLORER_CACHE_DIR, else ``~/.cache/latent-space-explorer``."""
    return settings.get().cache_dir


def default_max_mb() -> float:
    """EXPLORER_CACHE_MAX_MB, else 2048."""
    return settings.get().cache_max_mb


def _digest(image_hash: str) -> bytes:
    return hashlib.sha256(str(image_hash).encode()).digest()


def _check_key(key: Sequence[str]) -> tuple[str, ...]:
    key = tuple(str(k) for k in key)
    if len(key) != 4:
        raise ValueError(
            "a cache key is (family, model id, revision, preprocessing), got " + repr(key)
        )
    return key


def shard_id(key: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(list(_check_key(key))).encode()).hexdigest()[:32]


class CorruptSegment(Exception):
    """A segment file that is not a complete, checksummed segment."""


def encode_segment(digests: bytes, vectors: np.ndarray) -> bytes:
    n, d = vectors.shape
    payload = digests + np.ascontiguousarray(vectors, dtype="<f4").tobytes()
    return _HEADER.pack(MAGIC, n, d, hashlib.sha256(payload).digest()) + payload


def decode_segment(data: bytes) -> tuple[list[bytes], np.ndarray]:
    """-> (digests, (n, d) read-only float32 vectors); CorruptSegment if anything is off."""
    if len(data) < _HEADER.size:
        raise CorruptSegment("shorter than its header")
    magic, n, d, checksum = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CorruptSegment("not a segment file")
    if len(data) != _HEADER.size + n * DIGEST_BYTES + n * d * 4:
        raise CorruptSegment("wrong length (truncated?)")
    payload = memoryview(data)[_HEADER.size :]
    if hashlib.sha256(payload).digest() != checksum:
        raise CorruptSegment("checksum mismatch")
    split = n * DIGEST_BYTES
    digests = [bytes(payload[i : i + DIGEST_BYTES]) for i in range(0, split, DIGEST_BYTES)]
    vectors = np.frombuffer(data, dtype="<f4", offset=_HEADER.size + split).reshape(n, d)
    return digests, vectors


@dataclass
class _Shard:
    """What this process has read of one shard: segment name -> vectors, digest -> row."""

    segments: dict[str, np.ndarray] = field(default_factory=dict)
    index: dict[bytes, tuple[str, int]] = field(default_factory=dict)
    digests: dict[str, list[bytes]] = field(default_factory=dict)

    def rebuild(self) -> None:
        self.index = {}
        for name in sorted(self.segments):  # names start with a time: later ones win
            for row, d in enumerate(self.digests[name]):
                self.index[d] = (name, row)


class EmbeddingCache:
    """One vector per (key, image hash), on disk under ``root``. Thread-safe; never raises
    on a broken cache (it logs and recomputes instead)."""

    def __init__(
        self,
        root: Path | str | None = None,
        max_mb: float | None = None,
        *,
        read_only: bool = False,
        under: EmbeddingCache | None = None,
    ):
        self.root = Path(root).expanduser() if root is not None else default_root()
        self.read_only = read_only
        self.under = under  # a cache read for what this one lacks (never written through this)
        self.max_bytes = int((default_max_mb() if max_mb is None else float(max_mb)) * 2**20)
        self._dir = self.root / LAYOUT
        self._lock = threading.RLock()
        self._shards: dict[str, _Shard] = {}
        self._last_touch = 0
        self.hits = 0  # vectors get_many found, since this object was made
        self.misses = 0  # and those it did not

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else f"max {self.max_bytes / 2**20:g} MiB"
        below = f", under {self.under!r}" if self.under is not None else ""
        return f"EmbeddingCache({str(self.root)!r}, {mode}{below})"

    # ------------------------------------------------------------------ reading

    def get_many(
        self, key: Sequence[str], hashes: Sequence[str]
    ) -> tuple[dict[int, np.ndarray], list[int]]:
        """-> ({position: vector} for the hashes found, [positions missing]); positions this
        cache lacks are looked up in the cache ``under`` it, if any."""
        found, missing = self._get_own(key, hashes)
        if missing and self.under is not None:
            more, _ = self.under.get_many(key, [hashes[i] for i in missing])
            for j, vector in more.items():
                found[missing[j]] = vector
            with self._lock:
                self.hits += len(more)
                self.misses -= len(more)
            missing = [i for i in missing if i not in found]
        return found, missing

    def _get_own(
        self, key: Sequence[str], hashes: Sequence[str]
    ) -> tuple[dict[int, np.ndarray], list[int]]:
        sid = shard_id(key)
        found: dict[int, np.ndarray] = {}
        with self._lock:
            try:
                shard = self._refresh(sid)
            except OSError as exc:
                log.warning("embedding cache: cannot read %s: %s", self._dir / sid, exc)
                shard = _Shard()
            for i, h in enumerate(hashes):
                loc = shard.index.get(_digest(h))
                if loc is not None:
                    found[i] = shard.segments[loc[0]][loc[1]]
            if found:
                self._touch(sid)
            self.hits += len(found)
            self.misses += len(hashes) - len(found)
        return found, [i for i in range(len(hashes)) if i not in found]

    def missing(self, key: Sequence[str], hashes: Sequence[str]) -> list[int]:
        """The positions of ``hashes`` with no vector under ``key`` (nothing read, counted or
        touched: for pricing a request before it runs)."""
        with self._lock:
            try:
                shard = self._refresh(shard_id(key))
            except OSError:
                return list(range(len(hashes)))
            return [i for i, h in enumerate(hashes) if _digest(h) not in shard.index]

    def _refresh(self, sid: str) -> _Shard:
        """Bring this process's view of shard ``sid`` in line with the files on disk."""
        folder = self._dir / sid
        shard = self._shards.setdefault(sid, _Shard())
        try:
            names = {e.name for e in os.scandir(folder) if e.name.endswith(".vec")}
        except FileNotFoundError:
            names = set()
        changed = False
        for gone in set(shard.segments) - names:
            del shard.segments[gone], shard.digests[gone]
            changed = True
        for name in sorted(names - set(shard.segments)):
            path = folder / name
            try:
                digests, vectors = decode_segment(path.read_bytes())
            except FileNotFoundError:
                continue  # compacted or evicted by someone else meanwhile
            except (CorruptSegment, ValueError) as exc:
                if self.read_only:
                    log.warning("embedding cache: ignoring damaged %s (%s)", path, exc)
                    continue
                log.warning("embedding cache: dropping damaged %s (%s)", path, exc)
                _unlink_quietly(path)
                continue
            except OSError as exc:
                log.warning("embedding cache: cannot read %s: %s", path, exc)
                continue
            shard.segments[name], shard.digests[name] = vectors, digests
            changed = True
        if changed:
            shard.rebuild()
        if not shard.segments:
            self._shards.pop(sid, None)
        return shard

    # ------------------------------------------------------------------ writing

    def put_many(self, key: Sequence[str], hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store one vector per hash (float32). Failures are logged, never raised; a read-only
        cache stores nothing."""
        key = _check_key(key)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(hashes):
            raise ValueError(
                f"need one row per hash: {len(hashes)} hashes, vectors {vectors.shape}"
            )
        if not len(hashes) or self.read_only:
            return
        sid = shard_id(key)
        folder = self._dir / sid
        digests = [_digest(h) for h in hashes]
        with self._lock:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                if not (folder / "key.json").exists():
                    atomic_write(folder / "key.json", json.dumps(list(key), indent=1).encode())
                self._write_segment(sid, digests, vectors)
                shard = self._refresh(sid)
                if len(shard.segments) > MAX_SEGMENTS:
                    self._compact(sid, shard)
                self._touch(sid)
                self._enforce_bound()
            except OSError as exc:
                log.warning("embedding cache: could not write to %s: %s", folder, exc)

    def _write_segment(self, sid: str, digests: list[bytes], vectors: np.ndarray) -> str:
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.vec"
        atomic_write(self._dir / sid / name, encode_segment(b"".join(digests), vectors))
        return name

    def _compact(self, sid: str, shard: _Shard) -> None:
        """Merge every segment of a shard into one (latest vector per image wins)."""
        old = sorted(shard.segments)
        digests = list(shard.index)
        rows = [shard.segments[name][row] for name, row in shard.index.values()]
        dims = {len(r) for r in rows}
        if len(dims) != 1:  # mixed dimensions under one key: keep the newest segment only
            keep = old[-1]
            digests, rows = shard.digests[keep], list(shard.segments[keep])
        self._write_segment(sid, digests, np.stack(rows))
        for name in old:
            _unlink_quietly(self._dir / sid / name)
        self._refresh(sid)

    # ------------------------------------------------------------------ size bound

    def _touch(self, sid: str) -> None:
        """Mark shard ``sid`` as used now (explicit, strictly increasing ns time stamps)."""
        if self.read_only:
            return
        now = max(time.time_ns(), self._last_touch + 1)
        self._last_touch = now
        path = self._dir / sid / ".used"
        try:
            path.touch()
            os.utime(path, ns=(now, now))
        except OSError:
            pass

    def _shard_sizes(self) -> list[tuple[int, int, Path]]:
        """[(last used ns, bytes, folder)] for every shard; removes stale temporary files."""
        out = []
        try:
            entries = list(os.scandir(self._dir))
        except FileNotFoundError:
            return out
        now = time.time()
        for entry in entries:
            if not entry.is_dir():
                continue
            size, used = 0, 0
            try:
                for f in os.scandir(entry.path):
                    st = f.stat()
                    if f.name.endswith(".tmp") and now - st.st_mtime > STALE_TMP_S:
                        _unlink_quietly(Path(f.path))
                        continue
                    size += st.st_size
                    if f.name == ".used":
                        used = st.st_mtime_ns
            except FileNotFoundError:
                continue
            out.append((used, size, Path(entry.path)))
        return out

    def size_bytes(self) -> int:
        with self._lock:
            return sum(size for _, size, _ in self._shard_sizes())

    def _enforce_bound(self) -> None:
        shards = sorted(self._shard_sizes())
        total = sum(size for _, size, _ in shards)
        for _, size, folder in shards:  # least recently used first
            if total <= self.max_bytes:
                break
            log.info("embedding cache: evicting %s (%d bytes)", folder.name, size)
            shutil.rmtree(folder, ignore_errors=True)
            self._shards.pop(folder.name, None)
            total -= size

    def clear(self) -> None:
        """Delete every cached embedding under ``root`` (a read-only cache keeps its files)."""
        if self.read_only:
            return
        with self._lock:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._shards.clear()


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


_SHARED: dict[tuple[Path, Path | None], EmbeddingCache] = {}
_SHARED_LOCK = threading.Lock()


def shared() -> EmbeddingCache:
    """The process's one embedding cache at the configured root (made on first use), shared by
    every tab: a set embedded in one is not embedded again in another. While a class pack is
    open (``EXPLORER_PACK``), the pack's embeddings lie under it, read-only."""
    from explorer.core import pack

    where = (default_root(), pack.active_root())
    with _SHARED_LOCK:
        if where not in _SHARED:
            under = None
            if where[1] is not None:
                under = EmbeddingCache(where[1] / pack.EMBEDDINGS_DIR, read_only=True)
            _SHARED[where] = EmbeddingCache(where[0], under=under)
        return _SHARED[where]


__all__ = [
    "EmbeddingCache",
    "decode_segment",
    "default_root",
    "encode_segment",
    "shard_id",
    "shared",
]
