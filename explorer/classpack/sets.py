"""The open class pack's image sets, as the atlas opens them: each set with the spaces the pack
embedded it in (its rows are in the pack's embedding cache, so opening costs no model time)."""

from __future__ import annotations

from explorer import datasets
from explorer.core import pack
from explorer.core.errors import ExplorerError
from explorer.datasets import ImageSet

__all__ = ["open_pack_set", "open_pack_set_spaces", "pack_set_names"]

SHIPPED = ("bundled", "augmented")  # sets that ship with the app: the pack holds no copy


def pack_set_names() -> list[str]:
    """() -> the names of the open pack's sets, in the manifest's order ([] without a pack)."""
    found = pack.active()
    return [] if found is None else [str(s["name"]) for s in found.sets]


def open_pack_set_spaces(name: str) -> list[str]:
    """A set name of the open pack -> the spaces the pack embedded it in (no image is read)."""
    found = _open_pack()
    return [str(s) for s in found.set_named(str(name or "").strip()).get("spaces", [])]


def _open_pack() -> pack.Pack:
    found = pack.active()
    if found is None:
        raise ExplorerError(
            "No class pack is open: start the app with EXPLORER_PACK=DIR (a folder written by "
            "`python -m explorer classpack`)."
        )
    return found


def open_pack_set(name: str) -> tuple[ImageSet, list[str]]:
    """A set name of the open pack -> (the image set, the spaces the pack embedded it in, in the
    manifest's order). :class:`ExplorerError` without a pack or for a name it does not hold."""
    found = _open_pack()
    entry = found.set_named(str(name or "").strip())
    source = str(entry["source"])
    if source in SHIPPED:
        image_set = datasets.load_source(source)
    else:
        where = (found.root / str(entry.get("path", ""))).resolve()
        if not where.is_relative_to((found.root / pack.SETS_DIR).resolve()):
            raise pack.PackError(f"The class pack's set {name!r} does not lie in its sets folder.")
        image_set = datasets.load_source(where)
    return image_set, [str(s) for s in entry.get("spaces", [])]
