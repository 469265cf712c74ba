"""One string -> the right loader: :func:`load_source` (the CLI's ``SOURCE`` argument)."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from explorer.datasets.archives import from_folder, from_zip
from explorer.datasets.augmented import augmented_set
from explorer.datasets.imageset import DatasetError, ImageSet
from explorer.datasets.streaming import from_hub, is_hub_id
from explorer.datasets.teaching import teaching_set

__all__ = ["load_source"]

_LOADERS: dict[str, Callable[..., ImageSet]] = {
    "bundled": teaching_set,
    "augmented": augmented_set,
    "zip": from_zip,
    "folder": from_folder,
    "hub": from_hub,
}


def _call(kind: str, first: Any, kw: dict[str, Any]) -> ImageSet:
    """Call a loader with the options it takes; options meant for another source are dropped,
    unknown ones still raise ``TypeError``."""
    fn = _LOADERS[kind]
    own = set(inspect.signature(fn).parameters)
    known = set().union(*(inspect.signature(f).parameters for f in _LOADERS.values()))
    args = {k: v for k, v in kw.items() if k in own or k not in known}
    return fn(**args) if first is None else fn(first, **args)


def load_source(source: str | os.PathLike[str], **kw: Any) -> ImageSet:
    """``"bundled"`` -> :func:`teaching_set`, ``"augmented"`` -> :func:`augmented_set`; an existing folder -> :func:`from_folder`; an
    existing file -> :func:`from_zip`; else ``"owner/name"`` -> :func:`from_hub`.

    Keyword options go to the chosen loader; options that only another source takes (e.g.
    ``per_class`` for a zip) are ignored, so one set of UI options can be passed for any source.

    Raises:
        DatasetError: the source is none of these, or its loader's errors.
    """
    text = os.fspath(source).strip() if isinstance(source, (str, os.PathLike)) else ""
    if not text:
        raise DatasetError(
            "No image source was given. Choose 'bundled', upload a zip of class folders, "
            "or enter a Hugging Face dataset id (owner/name)."
        )
    if text.lower() in ("bundled", "augmented"):
        return _call(text.lower(), None, kw)
    p = Path(text).expanduser()
    if p.is_dir():
        return _call("folder", p, kw)
    if p.is_file():
        return _call("zip", p, kw)
    looks_local = (
        text.startswith((".", "/", "~", "\\"))
        or text.lower().endswith(".zip")
        or text.count("/") != 1
        or "\\" in text
    )
    if looks_local or not is_hub_id(text):
        raise DatasetError(
            f"'{text}' was not found: it is not an existing zip file or folder, 'bundled', or a "
            "Hugging Face dataset id of the form owner/name. Check the path or the id."
        )
    return _call("hub", text, kw)
