"""The semantic atlas: one image set embedded in several spaces, projected, measured, queried.

What the UI and the CLI call for the atlas (no gradio here), one concern a module:

* ``build`` -- :class:`Atlas` / :class:`Space`, :func:`build`, :func:`coords_for`,
  :func:`neighbours`, :func:`query_image`, :func:`text_query`;
* ``store`` -- :data:`STORE` (the open atlases, a bounded :class:`~explorer.core.lru.LRU`) and
  the hover thumbnails;
* ``report`` -- :func:`metrics_table`, :func:`overlap_table` and :func:`verdict` (a
  :class:`Verdict`: the reading of the numbers, as data);
* ``evidence`` -- linear probes, space-to-space similarity, per-point neighbour overlap, what a
  selection shares and where each space stands against the controls;
* ``export`` -- :func:`points_frame`, :func:`save`, :func:`load_saved`.

The words (the verdict's sentence) and the JSON the browser draws live in ``explorer.ui``; the
plotly page of ``atlas.html`` in ``explorer.images.plots``.
"""

from __future__ import annotations

from explorer.atlas.build import (
    MAX_QUERY_CHARS,
    MAX_SPACES,
    build,
    coords_for,
    default_spaces,
    from_arrays,
    neighbours,
    query_image,
    text_query,
)
from explorer.atlas.export import figure_html, load_saved, points_frame, save
from explorer.atlas.report import (
    COUNTED,
    METRICS_COLUMNS,
    MIN_PER_CLASS,
    TIE,
    Verdict,
    metrics_table,
    overlap_table,
    unet_position,
    verdict,
)
from explorer.atlas.store import (
    STORE,
    THUMB_SIDE,
    AtlasStore,
    atlas_nbytes,
    thumb_dir,
    write_thumbs,
)
from explorer.atlas.types import CONTROL_FAMILIES, FAMILY_TITLES, Atlas, Space

__all__ = [
    "CONTROL_FAMILIES",
    "COUNTED",
    "FAMILY_TITLES",
    "MAX_QUERY_CHARS",
    "MAX_SPACES",
    "METRICS_COLUMNS",
    "MIN_PER_CLASS",
    "STORE",
    "THUMB_SIDE",
    "TIE",
    "Atlas",
    "AtlasStore",
    "Space",
    "Verdict",
    "atlas_nbytes",
    "build",
    "coords_for",
    "default_spaces",
    "figure_html",
    "from_arrays",
    "load_saved",
    "metrics_table",
    "neighbours",
    "overlap_table",
    "points_frame",
    "query_image",
    "save",
    "text_query",
    "thumb_dir",
    "unet_position",
    "verdict",
    "write_thumbs",
]
