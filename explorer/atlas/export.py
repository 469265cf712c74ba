"""An atlas on disk: the points table, and a folder that can be reopened (CLI, export button).

:func:`save` writes ``points.csv``, ``metrics.csv`` (with the linear probe's columns),
``similarity.csv`` (linear CKA and mutual 10-NN of every pair of spaces), ``overlap.csv`` (each
image's neighbour overlap for every pair), ``atlas.html`` (drawn by
:func:`explorer.images.plots.atlas_html`), ``embeddings.npz``, ``thumbs/`` and ``atlas.json``
(which also carries the selection), each file atomically
(:func:`explorer.core.files.atomic_write`); :func:`load_saved` reopens such a folder.
"""

from __future__ import annotations

import csv
import io
import json
import math
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from explorer.analysis.probe import POLICY as PROBE_POLICY
from explorer.atlas import evidence
from explorer.atlas.build import coords_for
from explorer.atlas.report import metrics_table
from explorer.atlas.store import THUMB_SIDE, thumb_dir, write_thumbs
from explorer.atlas.types import Atlas, Space
from explorer.core import files
from explorer.core.errors import BadImageError, ExplorerError
from explorer.core.safe_text import csv_cell
from explorer.datasets import ImageSet
from explorer.images import io as imaging
from explorer.images import plots
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
    return df.to_csv(index=False).encode("utf-8")


def _safe_csv(df: pd.DataFrame) -> bytes:
    """A table as CSV that no spreadsheet reads as formulas: every cell through
    :func:`~explorer.core.safe_text.csv_cell`, text quoted (``QUOTE_NONNUMERIC``), NaN empty."""
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    writer.writerow([csv_cell(str(c)) for c in df.columns])
    for row in df.itertuples(index=False):
        writer.writerow(
            ["" if isinstance(v, float) and math.isnan(v) else csv_cell(v) for v in row]
        )
    return buf.getvalue().encode("utf-8")


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def save(atlas: Atlas, out: str | Path, method: str) -> dict[str, Path]:
    """Write points.csv, metrics.csv, similarity.csv, overlap.csv, atlas.html, embeddings.npz,
    thumbs/, atlas.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = {
        "points": out / "points.csv",
        "metrics": out / "metrics.csv",
        "similarity": out / "similarity.csv",
        "overlap": out / "overlap.csv",
        "html": out / "atlas.html",
        "embeddings": out / "embeddings.npz",
        "meta": out / "atlas.json",
    }
    table = metrics_table(atlas, method)
    columns = ["space", "labels", "knn5", "knn10", "chance", "silhouette", "trustworthiness"]
    columns += evidence.PROBE_COLUMNS
    files.atomic_write(written["points"], _csv(points_frame(atlas, method)))
    files.atomic_write(written["metrics"], _csv(table[columns]))
    files.atomic_write(written["similarity"], _safe_csv(evidence.similarity_table(atlas)))
    files.atomic_write(written["overlap"], _safe_csv(evidence.overlap_frame(atlas)))
    files.atomic_write(written["html"], figure_html(atlas, method).encode("utf-8"))
    files.atomic_write(written["embeddings"], _npz(atlas.embeddings))
    tdir = out / "thumbs"
    tdir.mkdir(exist_ok=True)
    thumbs = []
    for i, t in enumerate(atlas.thumbs):
        dst = files.atomic_write(tdir / f"{i:05d}.jpg", Path(t).read_bytes())
        thumbs.append(f"thumbs/{dst.name}")
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
    files.atomic_write(written["meta"], json.dumps(meta, indent=2).encode("utf-8"))
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
        points = pd.read_csv(points_path)
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
    thumbs = write_thumbs(images, [embeddings.image_hash(im) for im in images], thumb_dir())
    image_set = ImageSet(
        meta.get("source", folder.name),
        images,
        points["label"].astype(str).tolist(),
        points["path"].astype(str).tolist(),
        [],
        f"saved atlas {folder}",
        labelings={
            c[len("label_") :]: points[c].astype(str).tolist()
            for c in points.columns
            if c.startswith("label_")
        },
        groups=points["group"].astype(str).tolist() if "group" in points.columns else None,
    )
    coords = {
        method: {s.key: points[[f"x_{s.key}", f"y_{s.key}"]].to_numpy(np.float32) for s in spaces}
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
    try:  # a selection that does not fit this set is dropped, not an error
        atlas.selection = evidence.check_selection(meta.get("selection"), n, n)
    except ExplorerError:
        atlas.selection = []
    return atlas, method
