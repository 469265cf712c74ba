"""What the atlas's linked panels draw in the browser (see explorer/static/atlas.js): a short
JSON (titles, classes, colours, the selection, notes) and, beside it, one binary file of columns
(each panel's x and y as float32, each point's class code, thumbnail names, the overlap
colouring), fetched by the browser as it is: a million points is 8 MB a panel, not a million
JSON objects.

A set bigger than ``EXPLORER_DISPLAY_MAX_POINTS`` is drawn as a seeded sample that keeps every
class's share (:func:`display_indices`), with a note saying so; the metrics and the neighbours
are computed on every point elsewhere and are not touched here. A click answers with a small
update (:func:`payload` with ``update=True``: the selection and its neighbours only), which the
browser applies to the panels it already drew.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from explorer.atlas import Atlas, coords_for, evidence, thumb_dir
from explorer.atlas.store import ServedPaths
from explorer.core import files, settings
from explorer.core.safe_text import display_names
from explorer.images.plots import point_colours

SAMPLE_SEED = 0


def display_indices(labels: Sequence[str], cap: int, seed: int = SAMPLE_SEED) -> np.ndarray:
    """N labels, a cap -> sorted indices of the points to draw: all N when N <= cap, else
    exactly ``cap`` of them, drawn with a fixed seed, every class keeping its share of the set
    (rounded by largest remainder; each class keeps at least one point while ``cap`` allows)."""
    labels = np.asarray(list(labels), dtype=object)
    n = labels.shape[0]
    if n <= cap:
        return np.arange(n)
    classes, codes = np.unique(labels.astype(str), return_inverse=True)
    sizes = np.bincount(codes, minlength=classes.size)
    exact = sizes * cap / n
    quota = np.floor(exact).astype(int)
    if cap >= classes.size:
        quota = np.maximum(quota, 1)
    # hand out what is left (or take back what the minimum of 1 added) by remainder
    spare = cap - int(quota.sum())
    order = np.argsort(-(exact - quota), kind="stable")
    if spare > 0:
        quota[order[:spare]] += 1
    while spare < 0:  # only when the minimum of 1 overshot: trim the largest quotas
        big = int(np.argmax(quota))
        quota[big] -= 1
        spare += 1
    rng = np.random.default_rng(seed)
    picked = [
        rng.choice(np.flatnonzero(codes == c), size=int(q), replace=False)
        for c, q in enumerate(quota)
        if q > 0
    ]
    return np.sort(np.concatenate(picked))


def count_note(shown: int, total: int) -> str:
    """The line under each panel's title: how many points it draws."""
    if shown >= total:
        return f"{total:,} points"
    return f"showing {shown:,} of {total:,} points (sampled)"


def sample_note(shown: int, total: int) -> str:
    """The sentence under the panels when they draw a sample ('' when they draw every point)."""
    if shown >= total:
        return ""
    return (
        f"The panels draw {shown:,} of the {total:,} images: a sample with a fixed seed that keeps "
        "every class's share (EXPLORER_DISPLAY_MAX_POINTS caps what the browser receives). The "
        f"metrics table, the neighbours and the searches use all {total:,}."
    )


def colour_note(atlas: Atlas) -> str:
    """The one-line legend note of a set that groups its images (variants of one photo): what a
    tight cluster is under the colouring shown ('' for a set without groups)."""
    images = atlas.images
    if images.groups is None:
        return ""
    size = max(Counter(images.groups).values())
    shown = atlas.color_by or images.labeling_names[0]
    by_group = images.labeling(shown) == images.groups
    if by_group:
        return (
            f"Coloured by {shown}: each colour is one photo, in its {size} versions — a tight "
            "single-colour cluster is one photo, not a group of photos with one meaning. Colour "
            "by another labelling to see whether different photos sit together."
        )
    return (
        f"Coloured by {shown}: a tight cluster of {size} is usually one photo in its {size} "
        "versions (colour by source to check), so a single-colour cluster here is not by itself "
        f"evidence that the space groups different photos by {shown}: the table's numbers leave "
        "a photo's own versions out."
    )


def _base(atlas: Atlas, method: str, cap: int) -> str:
    """Names what the panels draw (set, projection, colouring, cap): a click's update applies
    only to panels drawn from the same base."""
    key = f"{atlas.id}|{method}|{atlas.color_by}|{cap}|{atlas.overlap_pair}"
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def _overlay_coords(
    xy: dict[str, np.ndarray], ids: set[int], drawn: set[int] | None
) -> dict[str, dict[str, list[float]]]:
    """``{str(i): {space key: [x, y]}}`` for the overlay points the panels do not draw."""
    missing = sorted(i for i in ids if drawn is not None and i not in drawn)
    return {
        str(i): {k: [round(float(v[i, 0]), 5), round(float(v[i, 1]), 5)] for k, v in xy.items()}
        for i in missing
    }


def payload(
    atlas: Atlas,
    method: str,
    url_for: Callable[[str], str] = str,
    selected: int | None = None,
    neighbors: dict[str, list[int]] | None = None,
    highlight: Sequence[int] | None = None,
    message: str = "",
    update: bool = False,
    cap: int | None = None,
) -> str:
    """An atlas's ``method`` maps ((N,2) float32 per space), the labels of the labelling it is
    coloured by (a uint16 code per point into ``classes``, each its display name,
    :func:`display_names`; one colour per class, :func:`point_colours`), thumbnail URLs
    (``url_for(path)``, a shared prefix and a rule or a fixed-width column for the rest, fetched
    by the browser only when a point is hovered) and the current selection -> the component's
    JSON; the per-point columns go to one binary file (``columns``: its URL and each column's
    offset, dtype and length; :func:`read_columns` reads them back).

    At most ``cap`` points (``EXPLORER_DISPLAY_MAX_POINTS``) are sent: the ``ids`` column then
    lists the drawn points' indices in the set (absent when every point is drawn). Selection, neighbours,
    highlights and ``selection`` (the atlas's shared selection, in every payload) are indices in
    the whole set; ``overlap`` colours the points by two spaces' neighbour overlap where the
    atlas asks for it; ``extra`` carries the coordinates of those the
    sample leaves out. ``update=True``: only the selection (the panels, labels and thumbnails
    stay those of the payload with the same ``base``).
    """
    cap = settings.get().display_max_points if cap is None else int(cap)
    xy = coords_for(atlas, method)
    labels = atlas.images.labeling(atlas.color_by)
    n = len(labels)
    ids = display_indices(labels, cap)
    sampled = ids.size < n
    drawn = set(ids.tolist()) if sampled else None
    marked = set(highlight or []) | {i for v in (neighbors or {}).values() for i in v}
    if selected is not None:
        marked.add(int(selected))
    xy_by_key = {s.key: xy[s.key] for s in atlas.spaces}
    out: dict = {
        "base": _base(atlas, method, cap),
        "selected": selected,
        "neighbors": neighbors or {},
        "highlight": list(highlight or []),
        "extra": _overlay_coords(xy_by_key, marked, drawn),
        "message": message,
        "method": method,
        "selection": [int(i) for i in atlas.selection],
    }
    if update:
        out["update"] = True
        return json.dumps(out)
    shown = display_names(labels)  # one short line each, no bidi controls, none alike
    classes = [shown[c] for c in dict.fromkeys(labels)]
    code_of = {c: k for k, c in enumerate(dict.fromkeys(labels))}
    colors = point_colours(len(classes))
    count = count_note(int(ids.size), n)
    cols: dict[str, np.ndarray] = {"codes": np.array([code_of[labels[i]] for i in ids], "<u2")}
    panels = []
    for s in atlas.spaces:
        v = np.asarray(xy[s.key], np.float32)
        cols["x:" + s.key], cols["y:" + s.key] = v[ids, 0], v[ids, 1]
        panels.append({"key": s.key, "title": s.title, "count": count, "bounds": _bounds(v)})
    if sampled:
        cols["ids"] = ids.astype("<u4")
    thumbs = None
    if atlas.thumbs:
        # (a reopened atlas's paths, their files linked meanwhile: hovered only once drawn)
        paths = atlas.thumbs.planned if isinstance(atlas.thumbs, ServedPaths) else atlas.thumbs
        thumbs, names = _thumb_names([url_for(paths[i]) for i in ids], ids)
        if names is not None:
            cols["thumbs"] = names
    overlap = _overlap(atlas, ids)
    if overlap is not None:
        cols["overlap"] = overlap.pop("values")
    out.update(
        {
            "panels": panels,
            "n": n,
            "drawn": int(ids.size),
            "sampled": sampled,
            "classes": classes,
            "colors": colors,
            "color_by": atlas.color_by or atlas.images.labeling_names[0],
            "thumbs": thumbs,
            "columns": _columns(cols, url_for),
            # the labelling's note only while the points wear the labelling's colours
            "note": " ".join(
                t
                for t in (
                    colour_note(atlas) if atlas.overlap_pair is None else "",
                    sample_note(int(ids.size), n),
                )
                if t
            ),
            "overlap": overlap,
        }
    )
    return json.dumps(out)


def _bounds(v: np.ndarray) -> list[float]:
    """(N,2) map -> [xmin, xmax, ymin, ymax] of its finite values (a flat axis widened to 1)."""
    finite = v[np.isfinite(v).all(axis=1)]
    if not finite.size:
        return [-1.0, 1.0, -1.0, 1.0]
    lo, hi = finite.min(axis=0).astype(float), finite.max(axis=0).astype(float)
    hi = np.where(hi > lo, hi, lo + 1.0)
    return [float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])]


def _thumb_names(urls: list[str], ids: np.ndarray) -> tuple[dict, np.ndarray | None]:
    """The drawn points' thumbnail URLs -> how the browser rebuilds each one: ``{"prefix",
    "indexed": w}`` where point i's is ``prefix + i`` zero-padded to w digits + ``suffix`` (a
    reopened atlas's), else ``{"prefix", "width": w}`` with the suffixes as an (N*w,) ASCII
    column (names of one length, a live atlas's), else the suffixes as a list."""
    prefix = os.path.commonprefix(urls) if urls else ""  # noqa: RUF071 (characters, on purpose)
    rest = [u[len(prefix) :] for u in urls]
    if rest and all(r.endswith(".jpg") for r in rest):
        width = len(rest[0]) - 4
        if all(r == f"{i:0{width}d}.jpg" for r, i in zip(rest, ids.tolist(), strict=True)):
            return {"prefix": prefix, "indexed": width, "suffix": ".jpg"}, None
    if rest and len({len(r) for r in rest}) == 1 and all(r.isascii() for r in rest):
        width = len(rest[0])
        return {"prefix": prefix, "width": width}, np.frombuffer("".join(rest).encode(), np.uint8)
    return {"prefix": prefix, "names": rest}, None


INLINE_COLUMNS_BYTES = 1 << 20
"""Columns of at most this many bytes (about 25,000 points in three panels) travel inside the
JSON, base64-encoded: a fetch of their own would wait behind the app's next events."""


def _columns(cols: dict[str, np.ndarray], url_for: Callable[[str], str]) -> dict:
    """Named 1-D columns -> ``{"key", "bytes", "parts": {name: [byte offset, dtype, length]}}``
    and either ``"inline"`` (the bytes, base64, up to :data:`INLINE_COLUMNS_BYTES`) or ``"url"``:
    one little-endian binary file, each column 8-byte aligned, named by its content (``key``)
    and written once under the thumbnails' folder (served, and pruned with it)."""
    parts, chunks, offset = {}, [], 0
    for name, col in cols.items():
        col = np.ascontiguousarray(col, col.dtype.newbyteorder("<"))
        raw = col.tobytes()
        parts[name] = [offset, col.dtype.name, int(col.size)]
        pad = -len(raw) % 8
        chunks += [raw, b"\0" * pad]
        offset += len(raw) + pad
    blob = b"".join(chunks)
    key = hashlib.sha256(blob).hexdigest()[:32]
    out = {"key": key, "bytes": len(blob), "parts": parts}
    if len(blob) <= INLINE_COLUMNS_BYTES:
        return dict(out, inline=base64.b64encode(blob).decode("ascii"))
    path = thumb_dir() / f"cols-{key}.bin"
    if not path.exists():
        files.atomic_write(path, blob)
    return dict(out, url=url_for(str(path)))


def read_columns(data: dict, open_url: Callable[[str], bytes] | None = None) -> dict:
    """A full payload's JSON (as a dict) -> the same dict with its binary columns read back:
    ``labels`` (class names), each panel's ``x`` and ``y``, ``ids`` (None when every point is
    drawn), ``thumbs`` (one URL per drawn point, or None) and ``overlap["values"]`` (NaN where
    a point has no value). ``open_url`` reads the columns' URL where they are not inline
    (default: a path on this machine, with the app's ``/gradio_api/file=`` prefix dropped). For
    tests and API users."""
    if "inline" in data["columns"]:
        blob = base64.b64decode(data["columns"]["inline"])
    elif open_url is None:
        blob = Path(data["columns"]["url"].removeprefix("/gradio_api/file=")).read_bytes()
    else:
        blob = open_url(data["columns"]["url"])

    def col(name: str) -> np.ndarray | None:
        if name not in data["columns"]["parts"]:
            return None
        offset, dtype, length = data["columns"]["parts"][name]
        return np.frombuffer(blob, np.dtype(dtype).newbyteorder("<"), length, offset)

    out = dict(data)
    codes = col("codes")
    out["labels"] = [data["classes"][c] for c in codes.tolist()]
    out["panels"] = [
        dict(p, x=col("x:" + p["key"]), y=col("y:" + p["key"])) for p in data["panels"]
    ]
    ids = col("ids")
    out["ids"] = None if ids is None else ids.tolist()
    t = data.get("thumbs")
    if t is None:
        out["thumbs"] = None
    elif "indexed" in t:
        order = ids.tolist() if ids is not None else range(codes.size)
        out["thumbs"] = [f"{t['prefix']}{i:0{t['indexed']}d}{t['suffix']}" for i in order]
    elif "width" in t:
        raw = col("thumbs").tobytes().decode("ascii")
        w = t["width"]
        out["thumbs"] = [t["prefix"] + raw[k : k + w] for k in range(0, len(raw), w)]
    else:
        out["thumbs"] = [t["prefix"] + r for r in t["names"]]
    if data.get("overlap") is not None:
        out["overlap"] = dict(data["overlap"], values=col("overlap"))
    return out


def _overlap(atlas: Atlas, ids: np.ndarray) -> dict | None:
    """The per-point neighbour overlap colouring of the drawn points (None: coloured by label):
    the two spaces, their titles, k, whether own groups are left out, one value in [0,1] per
    drawn point as a float32 column (NaN: no value)."""
    if atlas.overlap_pair is None:
        return None
    a, b = atlas.overlap_pair
    values = evidence.point_overlap(atlas, a, b)[ids]
    return {
        "a": a,
        "b": b,
        "titles": [atlas.space(a).title, atlas.space(b).title],
        "k": evidence.K,
        "own_group_left_out": evidence.lists_leave_groups_out(atlas),
        "values": np.asarray(values, "<f4"),
    }


def selection_update(atlas: Atlas, method: str, cap: int | None = None) -> str:
    """The atlas's shared selection alone, as an update of the panels drawn from the same base
    (the clicked point, its neighbours and the highlights stay as they are)."""
    cap = settings.get().display_max_points if cap is None else int(cap)
    return json.dumps(
        {
            "base": _base(atlas, method, cap),
            "update": True,
            "selection": [int(i) for i in atlas.selection],
        }
    )


def payload_empty(message: str = "") -> str:
    """The component's value before any set is open."""
    return json.dumps({"panels": [], "message": message or "Open an image set to see its atlas."})
