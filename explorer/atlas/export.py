"""An atlas on disk: the points table, and a folder that can be reopened (CLI, export button).

:func:`save` writes ``points.csv``, ``metrics.csv`` (with the linear probe's columns),
``similarity.csv`` (linear CKA and mutual 10-NN of every pair of spaces), ``overlap.csv``,
``point_overlap.csv`` (each image's neighbour overlap for every pair of spaces),
``neighbours.npz``, ``atlas.html`` (drawn by :func:`explorer.images.plots.atlas_html`),
``embeddings.npz``, ``thumbs/``, ``atlas.json`` (which also carries the selection) and, last,
``manifest.json`` (their content hashes), each file atomically
(:func:`explorer.core.files.atomic_write`); :func:`load_saved` reopens such a folder, serving
what the manifest vouches for as it was saved and recomputing the rest.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import os
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from explorer.analysis.probe import POLICY as PROBE_POLICY
from explorer.analysis.similarity import SimilarityRow
from explorer.atlas import evidence, manifest
from explorer.atlas.build import coords_for, default_colouring
from explorer.atlas.manifest import DERIVED, MANIFEST, PRIMARY, Manifest, read_manifest
from explorer.atlas.report import METRICS_COLUMNS, metrics_table, overlap_table
from explorer.atlas.store import THUMB_SIDE, LazyImages, Serving, write_thumbs
from explorer.atlas.types import Atlas, Reopened, Space
from explorer.core import files
from explorer.core.errors import BadImageError, ExplorerError
from explorer.core.safe_text import csv_bytes, csv_uncell
from explorer.datasets import ImageSet
from explorer.images import io as imaging
from explorer.images import plots
from explorer.images.encoded import EncodedImages
from explorer.spaces import embed as embeddings

__all__ = ["figure_html", "load_saved", "points_frame", "save"]


def points_frame(atlas: Atlas, method: str) -> pd.DataFrame:
    """One row per image: index, path, label, then ``label_<name>`` for each of the set's named
    labellings and ``group`` (its source photo) where it has them, ``selected`` (1 or 0) where
    the atlas has a selection, then x_<space>, y_<space>
    (the ``method`` map's coordinates, rounded to 6 decimals) for every space."""
    xy = coords_for(atlas, method)
    images = atlas.images
    df = pd.DataFrame({"index": range(len(images)), "path": images.paths, "label": atlas.labels})
    for name, values in images.labelings.items():
        df[f"label_{name}"] = values
    if images.groups is not None:
        df["group"] = images.groups
    if atlas.selection:
        df["selected"] = np.isin(np.arange(len(images)), atlas.selection).astype(int)
    for s in atlas.spaces:
        df[f"x_{s.key}"] = np.round(xy[s.key][:, 0], 6)
        df[f"y_{s.key}"] = np.round(xy[s.key][:, 1], 6)
    return df


HTML_THUMB_SIDES = (64, 48, 32)  # the sides tried for the page's hover thumbnails, largest first
HTML_THUMBS_MB = 4.0  # the most the page's thumbnails may weigh together (a teacher mails it)


def _jpeg_uri(path: str, side: int) -> str:
    with Image.open(path) as im:
        small = im.convert("RGB")
        small.thumbnail((side, side))
        buf = io.BytesIO()
        small.save(buf, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def html_thumbs(atlas: Atlas, budget_mb: float = HTML_THUMBS_MB) -> tuple[list[str | None], str]:
    """The exported page's hover thumbnails: one ``data:`` JPEG URI per image (None where left
    out) at the largest of :data:`HTML_THUMB_SIDES` whose estimated total fits ``budget_mb``,
    and a sentence saying what was done ('' when every image has its thumbnail)."""
    n = len(atlas.thumbs)
    if not n:
        return [], "No thumbnails: this atlas has none."
    budget = budget_mb * 1024 * 1024
    probe = atlas.thumbs[:: max(1, n // 32)][:32]
    for side in HTML_THUMB_SIDES:
        mean = sum(len(_jpeg_uri(t, side)) for t in probe) / len(probe)
        if mean * n <= budget:
            return [_jpeg_uri(t, side) for t in atlas.thumbs], ""
    keep = int(budget // mean)
    uris: list[str | None] = [_jpeg_uri(t, side) for t in atlas.thumbs[:keep]]
    return uris + [None] * (n - keep), (
        f"Hover thumbnails for the first {keep:,} of {n:,} images only: all of them would pass "
        f"the page's {budget_mb:g} MB cap."
    )


def figure_html(atlas: Atlas, method: str, verdict_html: str = "", note: str = "") -> str:
    """A standalone HTML page (plotly.js inlined, works offline) with one panel per space, a
    hover thumbnail of each image (within :data:`HTML_THUMBS_MB`), ``verdict_html`` (the
    verdict, already HTML and escaped) and ``note`` (plain text, escaped here) above the panels,
    and the metrics table below."""
    xy = coords_for(atlas, method)
    table = metrics_table(atlas, method).to_html(index=False, border=0, float_format="%.3f")
    thumbs, thumbs_note = html_thumbs(atlas)
    notes = " ".join(t for t in (note, thumbs_note) if t)
    intro = verdict_html + (f"<p><em>{html.escape(notes)}</em></p>" if notes else "")
    colour = atlas.color_by or atlas.images.labeling_names[0]
    return plots.atlas_html(
        [(s.title, xy[s.key]) for s in atlas.spaces],
        atlas.images.labeling(atlas.color_by),
        atlas.images.paths,
        title=html.escape(f"{atlas.source} · {method} · coloured by {colour}"),
        table_html="<h3>How well each space groups the set</h3>" + table,
        thumbs=thumbs,
        intro_html=intro,
    )


NEIGHBOURS_SAVED = 10
"""How many neighbours per point ``neighbours.npz`` keeps in each space (a click shows 6, the
overlap table reads 10)."""
THUMB_MAX_BYTES = 1 << 20  # a saved thumbnail (at most THUMB_SIDE px) is a few kB


def _csv(df: pd.DataFrame) -> bytes:
    """A table as CSV: every text cell quoted and never a spreadsheet formula (``'=...``;
    :func:`load_saved` reads it back as written)."""
    return csv_bytes(list(df.columns), df.itertuples(index=False, name=None))


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    # not compressed: float vectors hardly compress, and reopening should not wait on zlib
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _lists(atlas: Atlas) -> dict[str, np.ndarray]:
    """``idx_<key>`` / ``sim_<key>``: each space's neighbour lists (those the atlas holds, or
    computed, :data:`NEIGHBOURS_SAVED` long), and ``recall_<key>`` ([recall@10, points checked])
    where they are approximate (:func:`explorer.atlas.evidence.space_lists`)."""
    k = min(NEIGHBOURS_SAVED, len(atlas.images) - 1)
    out = {}
    for s in atlas.spaces:
        lists = atlas.neighbour_lists.get(s.key)
        if lists is None or lists[0].shape[1] < k:
            idx, sim = evidence.space_lists(atlas, s.key, k)
            lists = idx.astype(np.int32), np.array(sim, np.float32)
        out[f"idx_{s.key}"], out[f"sim_{s.key}"] = lists[0][:, :k], lists[1][:, :k]
        if s.key in atlas.neighbour_recall:
            out[f"recall_{s.key}"] = np.asarray(atlas.neighbour_recall[s.key], np.float64)
    return out


def save(
    atlas: Atlas,
    out: str | Path,
    method: str,
    verdict_html: str = "",
    note: str = "",
    *,
    room: Callable[[int], AbstractContextManager] | None = None,
) -> dict[str, Path]:
    """Write points.csv, metrics.csv, similarity.csv, overlap.csv, point_overlap.csv,
    neighbours.npz, atlas.html (with
    ``verdict_html`` and ``note``: see :func:`figure_html`), embeddings.npz, thumbs/, atlas.json
    and, last, manifest.json (the SHA-256 of each; see :mod:`explorer.atlas.manifest`).

    ``room(nbytes)``: a context manager the files are written inside, given their total size
    first (:func:`explorer.core.files.room`: a capped folder makes room for them, or refuses)."""
    out = Path(out)
    table = metrics_table(atlas, method)
    columns = ["space", "labels", "knn5", "knn10", "chance", "silhouette", "trustworthiness"]
    columns += [*evidence.PROBE_COLUMNS, "sample"]
    blobs = {
        "points.csv": _csv(points_frame(atlas, method)),
        "metrics.csv": _csv(table[columns]),
        "similarity.csv": _csv(evidence.similarity_table(atlas)),
        "overlap.csv": _csv(overlap_table(atlas)),
        "point_overlap.csv": _csv(evidence.overlap_frame(atlas)),
        "neighbours.npz": _npz(_lists(atlas)),
        "atlas.html": figure_html(atlas, method, verdict_html, note).encode("utf-8"),
        "embeddings.npz": _npz(atlas.embeddings),
    }
    held = atlas.images.images
    first: dict[str, int] = {}  # points whose thumbnail is one file share one saved file
    thumbs = [f"thumbs/{first.setdefault(t, i):05d}.jpg" for i, t in enumerate(atlas.thumbs)]
    thumb_data = {
        i: held.encoded(i) if isinstance(held, EncodedImages) else Path(t).read_bytes()
        for t, i in first.items()
    }
    thumb_digest = {i: manifest.digest(d) for i, d in thumb_data.items()}
    meta = {
        "source": atlas.source,
        "method": method,
        "n": len(atlas.images),
        "spaces": [
            {"key": s.key, "ref": s.ref, "family": s.family, "model": s.model} for s in atlas.spaces
        ],
        "failures": atlas.failures,
        "thumbs": thumbs,
        "models": table[["space", "model"]].to_dict("records"),
        "selection": [int(i) for i in atlas.selection],
        "evidence": {
            "probe": PROBE_POLICY,
            "neighbours": evidence.K,
            "own_group_left_out": evidence.lists_leave_groups_out(atlas),
        },
    }
    blobs["atlas.json"] = json.dumps(meta, indent=2).encode("utf-8")
    hashes = {name: manifest.digest(data) for name, data in blobs.items()}
    digests = [thumb_digest[first[t]] for t in atlas.thumbs]  # one per point, as listed
    record = manifest.Manifest(hashes, digests).to_json()
    total = sum(map(len, blobs.values())) + sum(map(len, thumb_data.values())) + len(record)
    with room(total) if room is not None else contextlib.nullcontext():
        out.mkdir(parents=True, exist_ok=True)
        (out / MANIFEST).unlink(missing_ok=True)  # until everything below is written
        (out / "thumbs").mkdir(exist_ok=True)
        for i, blob in thumb_data.items():
            files.atomic_write(out / thumbs[i], blob)
        for name, blob in blobs.items():
            files.atomic_write(out / name, blob)
        files.atomic_write(out / MANIFEST, record)
    keys = {
        "points": "points.csv",
        "metrics": "metrics.csv",
        "similarity": "similarity.csv",
        "overlap": "overlap.csv",
        "point_overlap": "point_overlap.csv",
        "neighbours": "neighbours.npz",
        "html": "atlas.html",
        "embeddings": "embeddings.npz",
        "meta": "atlas.json",
        "manifest": MANIFEST,
    }
    return {k: out / name for k, name in keys.items()}


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _bad(folder: Path, why: object) -> ExplorerError:
    return ExplorerError(f"Could not read the saved atlas in {folder}: {why}. Write it again.")


def load_saved(folder: str | Path) -> tuple[Atlas, str]:
    """Reopen a folder written by :func:`save` (or the CLI); returns the atlas and its method.

    The points, the maps and the embeddings are read back; the metrics, the overlap and
    similarity tables, the neighbour lists and the thumbnails are used as saved where ``manifest.json`` vouches for
    them (their bytes, and the inputs they were computed from, hash to what was saved) and
    recomputed otherwise (:attr:`Atlas.reopened` says which). Thumbnails are served as saved
    (never re-encoded) and decoded only when asked for.
    """
    folder = Path(folder).expanduser()
    if not (folder / "atlas.json").exists() or not (folder / "points.csv").exists():
        raise ExplorerError(
            f"{folder} is not a saved atlas: it needs atlas.json and points.csv, as written by "
            "`python -m explorer atlas SOURCE --out DIR`."
        )
    try:
        raw = {name: _read(folder / name) for name in PRIMARY}
        meta = json.loads(raw["atlas.json"] or b"")
        points = pd.read_csv(io.BytesIO(raw["points.csv"] or b""), dtype=str, keep_default_na=False)
        emb = np.load(io.BytesIO(raw["embeddings.npz"])) if raw["embeddings.npz"] else None
        spaces = [Space(s["key"], s["ref"], s["family"], s["model"]) for s in meta["spaces"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _bad(folder, exc) from exc
    method = meta.get("method", "umap")
    n = len(points)
    try:
        coords = {
            method: {
                s.key: np.stack([_floats(points[f"{a}_{s.key}"]) for a in "xy"], axis=1)
                for s in spaces
            }
        }
        if emb is not None:
            embs = {s.key: np.asarray(emb[s.key], np.float32) for s in spaces}
        else:  # without embeddings the 2-D maps stand in (neighbours are then map neighbours)
            embs = {s.key: coords[method][s.key] for s in spaces}
    except (KeyError, ValueError) as exc:
        raise _bad(folder, f"a space's columns or embeddings are missing ({exc})") from exc
    if any(e.shape[0] != n for e in embs.values()):
        raise _bad(folder, f"embeddings.npz does not hold one row per point ({n} points)")
    saved = read_manifest(folder)
    changed = manifest.untrusted(saved, raw)
    thumbs, checked = _serve_thumbs(folder, list(meta.get("thumbs", [])), saved, n)

    def text(column: str) -> list[str]:  # as written, before save() made it safe (csv_cell)
        return [csv_uncell(v) if v[:1] == "'" else v for v in points[column].astype(str).tolist()]

    image_set = ImageSet(
        meta.get("source", folder.name),
        LazyImages(thumbs),
        text("label"),
        text("path"),
        [],
        f"saved atlas {folder}",
        labelings={c[len("label_") :]: text(c) for c in points.columns if c.startswith("label_")},
        groups=text("group") if "group" in points.columns else None,
    )
    atlas = Atlas(
        uuid.uuid4().hex,
        image_set,
        spaces,
        embs,
        coords,
        meta.get("failures", {}),
        thumbs,
        meta.get("source", ""),
    )
    atlas.color_by = default_colouring(image_set)
    used = _derived(atlas, folder, method, saved) if saved is not None and not changed else []
    atlas.reopened = Reopened(
        folder=str(folder),
        manifest=saved is not None,
        changed=changed if saved is not None else [],
        recomputed=[name for name in DERIVED if name not in used],
        thumbs_checked=checked,
    )
    try:  # a selection that does not fit this set is dropped, not an error
        atlas.selection = evidence.check_selection(meta.get("selection"), n, n)
    except ExplorerError:
        atlas.selection = []
    return atlas, method


_TEXT_COLUMNS = ("space", "labels", "probe_note", "sample")  # the metrics table's text columns


def _derived(atlas: Atlas, folder: Path, method: str, saved: Manifest) -> list[str]:
    """Put the saved metrics, overlap and similarity tables and neighbour lists whose bytes the
    manifest vouches for into ``atlas`` -> the names of those used."""
    used = []
    models = {s.key: s.model for s in atlas.spaces}
    n = len(atlas.images)
    for name in DERIVED:
        data = _read(folder / name)
        if not saved.matches(name, data):
            continue
        try:
            if name == "metrics.csv":
                table = pd.read_csv(
                    io.BytesIO(data), dtype=dict.fromkeys(_TEXT_COLUMNS, str), keep_default_na=False,
                    na_values={c: [""] for c in METRICS_COLUMNS if c not in _TEXT_COLUMNS},
                )  # fmt: skip
                table.insert(1, "model", table["space"].map(models))
                if "sample" not in table.columns:  # saved before the column: every image scored
                    table["sample"] = ""
                atlas.metrics[method] = table[METRICS_COLUMNS]
            elif name == "similarity.csv":
                atlas.memo.setdefault("similarity", {}).update(_similarity(data, atlas))
            elif name == "overlap.csv":
                table = pd.read_csv(io.BytesIO(data))
                first = str(table.columns[0])
                table[first] = table[first].astype(str)
                atlas.overlaps[int(first.split("@", 1)[1])] = table
            else:
                lists = np.load(io.BytesIO(data))
                for s in atlas.spaces:
                    idx, sim = lists[f"idx_{s.key}"], lists[f"sim_{s.key}"]
                    if idx.shape[0] != n or (idx.size and not 0 <= idx.min() <= idx.max() < n):
                        raise ValueError(f"the neighbour lists of {s.key} do not fit")
                    atlas.neighbour_lists[s.key] = (idx.astype(np.int32), sim.astype(np.float32))
                    if f"recall_{s.key}" in lists.files:
                        got, checked = lists[f"recall_{s.key}"].tolist()
                        atlas.neighbour_recall[s.key] = (float(got), int(checked))
        except (KeyError, ValueError, IndexError):  # vouched for, yet unreadable: recompute
            continue
        used.append(name)
    return used


def _similarity(data: bytes, atlas: Atlas) -> dict[int, dict]:
    """similarity.csv's bytes -> ``{k: {(a, b): SimilarityRow}}`` as
    :func:`explorer.atlas.evidence.similarity_table` keeps them (ValueError unless every pair of
    the atlas's spaces is there)."""
    table = pd.read_csv(io.BytesIO(data), dtype={"space_a": str, "space_b": str})
    column = str(table.columns[3])
    if list(table.columns[:3]) != ["space_a", "space_b", "cka"] or not column.startswith(
        "mutual_knn"
    ):
        raise ValueError("similarity.csv has other columns")
    rows = {
        (a, b): SimilarityRow(a, b, float(cka), float(mutual))
        for a, b, cka, mutual in table.itertuples(index=False)
        if a != b
    }
    keys = [s.key for s in atlas.spaces]
    if any((a, b) not in rows for i, a in enumerate(keys) for b in keys[i + 1 :]):
        raise ValueError("similarity.csv lacks a pair of spaces")
    return {int(column.removeprefix("mutual_knn")): rows}


def _grey_thumbs(n: int, folder: Path) -> list[str]:
    grey = Image.new("RGB", (THUMB_SIDE, THUMB_SIDE), (200, 200, 200))
    return write_thumbs([grey], [embeddings.image_hash(grey)], folder) * n


def _floats(column: pd.Series) -> np.ndarray:
    """A column of decimal text -> (N,) float32, parsed by Arrow (a million cells in ~0.1 s;
    pandas' own cast goes through a Python float a cell, ~0.5 s), or by pandas where Arrow
    refuses a cell (an empty one, say)."""
    try:
        return np.asarray(pc.cast(pa.array(column), pa.float32()), np.float32)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
        return column.astype(np.float32).to_numpy()


def _serve_thumbs(
    folder: Path, names: list[str], saved: Manifest | None, n: int
) -> tuple[list[str], int]:
    """The saved thumbnails, served from a fresh folder under the app's thumbnail folder ->
    their paths and how many had to be checked by decoding them.

    A file whose bytes hash to the manifest's entry is served as it is (linked or copied, by a
    background thread: the paths are a :class:`ServedPaths`, whose reads wait for it). Any
    other is read through the app's own loader and limits: a JPEG of at most
    :data:`THUMB_SIDE` px is then served as it is too, another image is re-encoded as one, an
    unreadable file becomes a grey square. Only files inside the saved folder are read (an
    atlas.json naming an absolute or ``../`` path, or a symbolic link, must not read the rest
    of the disk).
    """
    with Serving() as serving, contextlib.ExitStack() as stack:
        if len(names) != n:
            return _grey_thumbs(n, serving.folder), 0
        root = os.path.realpath(folder)
        dirs: dict[str, int | None] = {}  # a folder of the atlas -> its descriptor (None: refused)
        limits = imaging.limits()
        want = saved.thumbs if saved is not None else []
        out: list[str] = []
        checked = 0
        served: dict[str, tuple[str, str]] = {}  # a name -> (its digest, where it is served)
        for i, t in enumerate(names):
            again = served.get(str(t))
            if again is not None and i < len(want) and again[0] == want[i]:
                out.append(again[1])  # points sharing a vouched-for file share its served copy
                continue
            parent, base = os.path.split(str(t))
            if parent not in dirs:
                dirs[parent] = _open_dir(folder, parent, root, stack)
            fd = dirs[parent]
            ok = fd is not None and base not in ("", ".", "..")
            data = _read_thumb(base, fd) if ok else None
            if data is not None and i < len(want) and manifest.digest(data) == want[i]:
                out.append(serving.defer(i, data, base, fd, want[i]))
                served[str(t)] = (want[i], out[-1])
                continue
            checked += 1
            out.append(_checked_thumb(i, data, base, fd, limits, serving))
        return serving.start(out, stack), checked


def _open_dir(folder: Path, parent: str, root: str, stack: contextlib.ExitStack) -> int | None:
    """A descriptor of ``folder/parent`` when it lies inside ``root`` (resolved), else None."""
    where = os.path.realpath(os.path.join(folder, parent))
    if where != root and not where.startswith(root + os.sep):
        return None
    try:
        fd = os.open(where, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return None
    stack.callback(os.close, fd)
    return fd


def _read_thumb(name: str, dir_fd: int | None) -> bytes | None:
    """A thumbnail's bytes (a symbolic link is not followed; None: unreadable or too big)."""
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0), dir_fd=dir_fd)
    except OSError:
        return None
    try:
        data = os.read(fd, THUMB_MAX_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data if len(data) <= THUMB_MAX_BYTES else None


def _checked_thumb(
    i: int,
    data: bytes | None,
    name: str,
    dir_fd: int | None,
    limits: imaging.Limits,
    serving: Serving,
) -> str:
    """A thumbnail the manifest does not vouch for, decoded and checked -> its served path."""
    try:
        if data is None:
            raise BadImageError("unreadable")
        im = imaging.load_image(data, limits=limits)
    except BadImageError:
        return _grey_thumbs(1, serving.folder)[0]
    if data[:3] == b"\xff\xd8\xff" and max(im.size) <= THUMB_SIDE:
        return serving.add(i, data, name, dir_fd)
    return write_thumbs([im], [embeddings.image_hash(im)], serving.folder)[0]
