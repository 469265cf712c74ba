"""The JSON the atlas's linked panels draw in the browser (see explorer/static/atlas.js)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np

from ..atlas import Atlas, coords_for
from ..plots import class_styles


def payload(
    atlas: Atlas,
    method: str,
    url_for: Callable[[str], str] = str,
    selected: int | None = None,
    neighbors: dict[str, list[int]] | None = None,
    highlight: Sequence[int] | None = None,
    message: str = "",
) -> str:
    """An atlas's ``method`` maps ((N,2) per space, rounded to 5 decimals), the labels of the
    labelling it is coloured by with one colour and marker shape per class (the export uses the
    same), thumbnail URLs (``url_for(path)``) and the current selection -> the component's JSON."""
    xy = coords_for(atlas, method)
    labels = atlas.images.labeling(atlas.color_by)
    classes = list(dict.fromkeys(labels))
    colors, symbols = class_styles(len(classes))
    panels = [
        {
            "key": s.key,
            "title": s.title,
            "x": np.round(xy[s.key][:, 0], 5).tolist(),
            "y": np.round(xy[s.key][:, 1], 5).tolist(),
        }
        for s in atlas.spaces
    ]
    return json.dumps(
        {
            "panels": panels,
            "labels": labels,
            "classes": classes,
            "colors": colors,
            "symbols": symbols,
            "color_by": atlas.color_by or atlas.images.labeling_names[0],
            "thumbs": [url_for(t) for t in atlas.thumbs] if atlas.thumbs else None,
            "paths": list(atlas.images.paths),
            "selected": selected,
            "neighbors": neighbors or {},
            "highlight": list(highlight or []),
            "message": message,
            "method": method,
        }
    )


def payload_empty(message: str = "") -> str:
    """The component's value before any set is open."""
    return json.dumps({"panels": [], "message": message or "Open an image set to see its atlas."})
