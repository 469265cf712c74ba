"""Class packs: prepare once with internet (:func:`build_pack`, ``python -m explorer classpack``),
teach anywhere without it (``EXPLORER_PACK=DIR``; the checks are :mod:`explorer.core.pack`)."""

from __future__ import annotations

from explorer.classpack.build import (
    MODEL_FAMILIES,
    baseline_spaces,
    build_pack,
    model_names,
    pack_spaces,
    set_name,
)
from explorer.classpack.sets import open_pack_set, open_pack_set_spaces, pack_set_names

__all__ = [
    "MODEL_FAMILIES",
    "baseline_spaces",
    "build_pack",
    "model_names",
    "open_pack_set",
    "open_pack_set_spaces",
    "pack_set_names",
    "pack_spaces",
    "set_name",
]
