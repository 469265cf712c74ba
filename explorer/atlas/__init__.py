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
* ``export`` -- :func:`points_frame`, :func:`save`, :func:`load_saved`; ``manifest`` -- the
  content hashes a saved folder is checked by.

The words (the verdict's sentence) and the JSON the browser draws live in ``explorer.ui``; the
plotly page of ``atlas.html`` in ``explorer.images.plots``.
"""

from __future__ import annotations

from explorer.atlas.build import (
    MAX_QUERY_CHARS,
    MAX_SPACES,
    build,
    coords_for,
    default_colouring,
    default_spaces,
    from_arrays,
    group_mask,
    neighbours,
    query_group,
    query_image,
    text_query,
)
from explorer.atlas.export import figure_html, load_saved, points_frame, save
from explorer.atlas.report import (
    ABOVE_CHANCE,
    COUNTED,
    METRICS_COLUMNS,
    MIN_PER_CLASS,
    TIE,
    Verdict,
    metrics_table,
    near_chance,
    overlap_k,
    overlap_table,
    ranked_readings,
    unet_position,
    verdict,
)
from explorer.atlas.store import (
    STORE,
    THUMB_SIDE,
    AtlasStore,
    LazyImages,
    atlas_nbytes,
    thumb_dir,
    thumbnails,
    write_thumbs,
)
from explorer.atlas.types import CONTROL_FAMILIES, FAMILY_TITLES, Atlas, Reopened, Space

__all__ = [
    "ABOVE_CHANCE",
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
    "LazyImages",
    "Reopened",
    "Space",
    "Verdict",
    "atlas_nbytes",
    "build",
    "coords_for",
    "default_colouring",
    "default_spaces",
    "figure_html",
    "from_arrays",
    "group_mask",
    "load_saved",
    "metrics_table",
    "near_chance",
    "neighbours",
    "overlap_k",
    "overlap_table",
    "points_frame",
    "query_group",
    "query_image",
    "ranked_readings",
    "save",
    "text_query",
    "thumb_dir",
    "thumbnails",
    "unet_position",
    "verdict",
    "write_thumbs",
]
