"""The content hashes of a saved atlas folder: written last by ``save``, checked by ``load_saved``.

``manifest.json`` holds the SHA-256 of every file the folder's atlas is read from
(:data:`PRIMARY`: ``atlas.json``, ``points.csv``, ``embeddings.npz``), of every file derived from
them at save time (:data:`DERIVED`: the metrics, overlap and similarity tables, the neighbour lists) and of
every thumbnail, in ``atlas.json``'s order. A folder can be edited after it was written; what is
read back is trusted only where its bytes still hash to what was saved:

* a derived file is used as it is when its hash and the hashes of every primary file match
  (the numbers in it were computed from exactly these inputs); otherwise it is recomputed;
* a thumbnail is served as it is when its hash matches; otherwise it is decoded and checked
  like any image (and re-encoded when it is not a small JPEG).

A hash proves the bytes are those that were written, not who wrote them: the folder is the
user's own (public mode refuses saved-atlas folders).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DERIVED", "MANIFEST", "PRIMARY", "Manifest", "digest", "read_manifest", "untrusted"]

MANIFEST = "manifest.json"
PRIMARY = ("atlas.json", "points.csv", "embeddings.npz")
DERIVED = ("metrics.csv", "overlap.csv", "similarity.csv", "neighbours.npz")
VERSION = 1


def digest(data: bytes) -> str:
    """bytes -> their SHA-256, hex."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class Manifest:
    """``files``: folder-relative name -> SHA-256 hex; ``thumbs``: one SHA-256 hex per thumbnail,
    in the order ``atlas.json`` lists them."""

    files: dict[str, str] = field(default_factory=dict)
    thumbs: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        body = {"version": VERSION, "hash": "sha256", "files": self.files, "thumbs": self.thumbs}
        return json.dumps(body, separators=(",", ":")).encode("utf-8")

    def matches(self, name: str, data: bytes | None) -> bool:
        """Whether ``data`` (None: the file is missing) is what was saved as ``name``."""
        want = self.files.get(name)
        return data is not None and want is not None and digest(data) == want

    def thumb_matches(self, i: int, data: bytes) -> bool:
        return i < len(self.thumbs) and digest(data) == self.thumbs[i]


def read_manifest(folder: Path) -> Manifest | None:
    """The folder's :class:`Manifest`, or None where there is none or it cannot be read (a
    folder saved before manifests, or an edited one: nothing derived is trusted then)."""
    try:
        body = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict) or body.get("version") != VERSION:
        return None
    files, thumbs = body.get("files"), body.get("thumbs")
    if not isinstance(files, dict) or not isinstance(thumbs, list):
        return None
    if not all(isinstance(v, str) for v in (*files.values(), *thumbs)):
        return None
    return Manifest({str(k): v for k, v in files.items()}, list(thumbs))


def untrusted(manifest: Manifest | None, primary: dict[str, bytes | None]) -> list[str]:
    """The primary files (of ``{name: bytes read, None if missing}``) that do not match the
    manifest: all of them without one."""
    if manifest is None:
        return list(primary)
    return [name for name, data in primary.items() if not manifest.matches(name, data)]
