"""An atlas on disk: the points table, and a folder that can be reopened (CLI, export button).

:func:`save` writes ``points.csv``, ``metrics.csv``, ``overlap.csv``, ``atlas.html`` (drawn by
:func:`explorer.images.plots.atlas_html`), ``embeddings.npz``, ``thumbs/`` and ``atlas.json``, each file
atomically (:func:`explorer.core.files.atomic_write`); :func:`load_saved` reopens such a folder.
"""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from explorer.atlas.build import coords_for
from explorer.atlas.report import metrics_table, overlap_table
from explorer.atlas.store import THUMB_SIDE, thumb_dir, thumbnails
from explorer.atlas.types import Atlas, Space
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
    labellings and ``group`` (its source photo) where it has them, then x_<space>, y_<space>
    (the ``method`` map's coordinates, rounded to 6 decimals) for every space."""
    xy = coords_for(atlas, method)
    images = atlas.images
    df = pd.DataFrame({"index": range(len(images)), "path": images.paths, "label": atlas.labels})
    for name, values in images.labelings.items():
        df[f"label_{name}"] = values
    if images.groups is not None:
        df["group"] = images.groups
    for s in atlas.spaces:
        df[f"x_{s.key}"] = np.round(xy[s.key][:, 0], 6)
        df[f"y_{s.key}"] = np.round(xy[s.key][:, 1], 6)
    return df


def figure_html(atlas: Atlas, method: str) -> str:
    """A standalone HTML page (plotly.js inlined, works offline) with one panel per space."""
    xy = coords_for(atlas, method)
    table = metrics_table(atlas, method).to_html(index=False, border=0, float_format="%.3f")
    return plots.atlas_html(
        [(s.title, xy[s.key]) for s in atlas.spaces],
        atlas.images.labeling(atlas.color_by),
        atlas.images.paths,
        title=f"{atlas.source} · {method} · coloured by {atlas.color_by or atlas.images.labeling_names[0]}",
        table_html="<h3>How well each space groups the set</h3>" + table,
    )


def _csv(df: pd.DataFrame) -> bytes:
    """A table as CSV: every text cell quoted and never a spreadsheet formula (``'=...``;
    :func:`load_saved` reads it back as written)."""
    return csv_bytes(list(df.columns), df.itertuples(index=False, name=None))


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def save(
    atlas: Atlas,
    out: str | Path,
    method: str,
    *,
    room: Callable[[int], AbstractContextManager] | None = None,
) -> dict[str, Path]:
    """Write points.csv, metrics.csv, overlap.csv, atlas.html, embeddings.npz, thumbs/, atlas.json.

    ``room(nbytes)``: a context manager the files are written inside, given their total size
    first (:func:`explorer.core.files.room`: a capped folder makes room for them, or refuses)."""
    out = Path(out)
    written = {
        "points": out / "points.csv",
        "metrics": out / "metrics.csv",
        "overlap": out / "overlap.csv",
        "html": out / "atlas.html",
        "embeddings": out / "embeddings.npz",
        "meta": out / "atlas.json",
    }
    table = metrics_table(atlas, method)
    columns = ["space", "labels", "knn5", "knn10", "chance", "silhouette", "trustworthiness"]
    data = {
        "points": _csv(points_frame(atlas, method)),
        "metrics": _csv(table[columns]),
        "overlap": _csv(overlap_table(atlas)),
        "html": figure_html(atlas, method).encode("utf-8"),
        "embeddings": _npz(atlas.embeddings),
    }
    held = atlas.images.images
    thumb_data = [
        held.encoded(i) if isinstance(held, EncodedImages) else Path(t).read_bytes()
        for i, t in enumerate(atlas.thumbs)
    ]
    thumbs = [f"thumbs/{i:05d}.jpg" for i in range(len(thumb_data))]
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
    }
    data["meta"] = json.dumps(meta, indent=2).encode("utf-8")
    total = sum(map(len, data.values())) + sum(map(len, thumb_data))
    with room(total) if room is not None else contextlib.nullcontext():
        out.mkdir(parents=True, exist_ok=True)
        (out / "thumbs").mkdir(exist_ok=True)
        for name, blob in zip(thumbs, thumb_data, strict=True):
            files.atomic_write(out / name, blob)
        for key, blob in data.items():
            files.atomic_write(written[key], blob)
    return written


def load_saved(folder: str | Path) -> tuple[Atlas, str]:
    """Reopen a folder written by :func:`save` (or the CLI); returns the atlas and its method."""
    folder = Path(folder).expanduser()
    meta_path, points_path = folder / "atlas.json", folder / "points.csv"
    if not meta_path.exists() or not points_path.exists():
        raise ExplorerError(
            f"{folder} is not a saved atlas: it needs atlas.json and points.csv, as written by "
            "`python -m explorer atlas SOURCE --out DIR`."
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        points = pd.read_csv(points_path, dtype=str, keep_default_na=False)
        emb = np.load(folder / "embeddings.npz") if (folder / "embeddings.npz").exists() else None
    except (OSError, ValueError) as exc:
        raise ExplorerError(
            f"Could not read the saved atlas in {folder}: {exc}. Write it again."
        ) from exc
    spaces = [Space(s["key"], s["ref"], s["family"], s["model"]) for s in meta["spaces"]]
    method = meta.get("method", "umap")
    root = folder.resolve()
    images = []
    for t in meta.get("thumbs", []):
        path = (folder / str(t)).resolve()
        try:
            # only files inside the saved folder, read through the app's own loader and limits:
            # an atlas.json naming an absolute or ../ path must not read the rest of the disk
            if not path.is_relative_to(root):
                raise BadImageError(f"{t} is outside the saved folder")
            images.append(imaging.load_image(path))
        except (BadImageError, OSError):
            images.append(Image.new("RGB", (THUMB_SIDE, THUMB_SIDE), (200, 200, 200)))
    n = len(points)
    if len(images) != n:
        images = [Image.new("RGB", (THUMB_SIDE, THUMB_SIDE), (200, 200, 200)) for _ in range(n)]
    # copied next to the other thumbnails, which the app serves
    thumbs, held = thumbnails(images, [embeddings.image_hash(im) for im in images], thumb_dir())

    def text(column: str) -> list[str]:  # as written, before save() made it safe (csv_cell)
        return [csv_uncell(v) for v in points[column].astype(str)]

    image_set = ImageSet(
        meta.get("source", folder.name),
        held,
        text("label"),
        text("path"),
        [],
        f"saved atlas {folder}",
        labelings={c[len("label_") :]: text(c) for c in points.columns if c.startswith("label_")},
        groups=text("group") if "group" in points.columns else None,
    )
    coords = {
        method: {
            s.key: points[[f"x_{s.key}", f"y_{s.key}"]].astype(np.float32).to_numpy()
            for s in spaces
        }
    }
    if emb is not None:
        embs = {s.key: emb[s.key] for s in spaces}
    else:  # without embeddings the 2-D maps stand in (neighbours are then map neighbours)
        embs = {s.key: coords[method][s.key] for s in spaces}
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
    return atlas, method
