"""The JSON the atlas's linked panels draw in the browser (see explorer/static/atlas.js).

A set bigger than ``EXPLORER_DISPLAY_MAX_POINTS`` is drawn as a seeded sample that keeps every
class's share (:func:`display_indices`), with a note saying so; the metrics and the neighbours
are computed on every point elsewhere and are not touched here. A click answers with a small
update (:func:`payload` with ``update=True``: the selection and its neighbours only), which the
browser applies to the panels it already drew.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from explorer.atlas import Atlas, coords_for, evidence
from explorer.core import settings
from explorer.core.safe_text import display_names
from explorer.images.plots import class_styles

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


def _common_prefix(urls: list[str]) -> str:
    return os.path.commonprefix(urls) if urls else ""  # noqa: RUF071 (characters, on purpose)


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
    """An atlas's ``method`` maps ((N,2) per space, rounded to 5 decimals), the labels of the
    labelling it is coloured by with one colour and marker shape per class (the export uses the
    same; each label as its display name, :func:`display_names`), thumbnail URLs
    (``url_for(path)``, sent as one shared prefix and a suffix per point,
    fetched by the browser only when a point is hovered) and the current selection -> the
    component's JSON.

    At most ``cap`` points (``EXPLORER_DISPLAY_MAX_POINTS``) are sent: ``ids`` then lists the
    drawn points' indices in the set (absent when every point is drawn). Selection, neighbours,
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
    colors, symbols = class_styles(len(classes))
    count = count_note(int(ids.size), n)
    panels = [
        {
            "key": s.key,
            "title": s.title,
            "count": count,
            "x": np.round(xy[s.key][ids, 0], 5).tolist(),
            "y": np.round(xy[s.key][ids, 1], 5).tolist(),
        }
        for s in atlas.spaces
    ]
    urls = [url_for(atlas.thumbs[i]) for i in ids] if atlas.thumbs else []
    prefix = _common_prefix(urls)
    out.update(
        {
            "panels": panels,
            "n": n,
            "ids": ids.tolist() if sampled else None,
            "labels": [shown[labels[i]] for i in ids],
            "classes": classes,
            "colors": colors,
            "symbols": symbols,
            "color_by": atlas.color_by or atlas.images.labeling_names[0],
            "thumb_prefix": prefix,
            "thumbs": [u[len(prefix) :] for u in urls] if urls else None,
            # the labelling's note only while the points wear the labelling's colours
            "note": " ".join(
                t
                for t in (
                    colour_note(atlas) if atlas.overlap_pair is None else "",
                    sample_note(int(ids.size), n),
                )
                if t
            ),
            "overlap": _overlap(atlas, ids),
        }
    )
    return json.dumps(out)


def _overlap(atlas: Atlas, ids: np.ndarray) -> dict | None:
    """The per-point neighbour overlap colouring of the drawn points (None: coloured by label):
    the two spaces, their titles, k, whether own groups are left out, one value in [0,1] per
    drawn point (rounded to 3 decimals)."""
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
        "values": [None if not np.isfinite(v) else round(float(v), 3) for v in values],
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
