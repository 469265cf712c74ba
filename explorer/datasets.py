"""Labelled image sets for the semantic atlas: bundled, zip, folder, uploads, Hugging Face Hub.

Every source becomes an :class:`ImageSet`: RGB images (each read through
:func:`explorer.imaging.load_image`, so hostile files are refused the same way as single
uploads, then downsized so the longer side is at most :data:`MAX_SIDE`), one label per image,
a display path per image, and the files that were skipped with the reason why.

Sources:

* :func:`bundled_set` -- opens offline; built from scikit-image's bundled public-domain / CC0
  photos with labelled augmentations (see its docstring for the construction and licences).
* :func:`from_zip` -- a zip of class folders, read in memory (nothing is ever extracted).
* :func:`from_folder` -- the same rules for a local folder of class folders (CLI use).
* :func:`from_files` -- many uploaded images, labelled from their file names.
* :func:`from_hub` -- a Hugging Face dataset, streamed (needs internet).
* :func:`load_source` -- picks one of the above from a string.

Limits are read from the environment at call time:

* ``EXPLORER_MAX_SET_IMAGES`` (default :data:`MAX_IMAGES`, 10,000): the most images in a set.
* ``EXPLORER_MAX_ZIP_MB`` (default 2048): the largest total uncompressed size of a zip.
* ``EXPLORER_MAX_FILE_MB`` / ``EXPLORER_MAX_PIXELS``: per-image limits (see ``imaging``).

All user-facing failures raise :class:`DatasetError` (an :class:`ExplorerError`) with a
sentence that says what to do.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import stat
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from . import imaging, settings
from .errors import BadImageError, ExplorerError, ModelUnavailableError
from .hub import hub_unreachable_reason
from .runtime import Progress, no_progress

__all__ = [
    "BOMB_MIN_BYTES",
    "BOMB_RATIO",
    "IMAGE_EXTENSIONS",
    "MAX_SIDE",
    "MIN_IMAGES",
    "DatasetError",
    "DatasetUnavailableError",
    "ImageSet",
    "bundled_set",
    "from_files",
    "from_folder",
    "from_hub",
    "from_zip",
    "label_from_filename",
    "load_source",
    "max_set_images",
    "max_zip_bytes",
]

log = logging.getLogger(__name__)


MAX_SIDE: int = 512
"""Every image in a set is downsized so its longer side is at most this many pixels."""

MIN_IMAGES: int = 3
"""The fewest images a set may hold (a 2-D map of fewer points says nothing)."""

BOMB_RATIO: float = 200.0
BOMB_MIN_BYTES: int = 50 * 1024**2
"""A zip member larger than ``BOMB_MIN_BYTES`` uncompressed that compresses more than
``BOMB_RATIO`` times is treated as a zip bomb and the whole archive is refused."""

MAX_ARCHIVE_ENTRIES: int = 200_000
"""A zip with more entries than this is refused before anything is read."""

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".mpo",
        ".webp",
        ".gif",
        ".bmp",
        ".dib",
        ".tif",
        ".tiff",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
        ".ico",
        ".avif",
    }
)
"""Members of a zip or folder with these extensions are read as images (others are skipped)."""

ARCHIVE_EXTENSIONS: frozenset[str] = frozenset(
    {".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".tbz2", ".txz", ".jar"}
)

_IGNORED_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini", "__pycache__"})

_LAYOUT_HINT = (
    "Put the images in one sub-folder per class (for example cats/ and dogs/), "
    "zip those folders together and upload the zip."
)

_HUB_HINT = (
    "Upload a zip of images in class folders instead (one sub-folder per label), "
    "or use the bundled example set."
)


class DatasetError(ExplorerError):
    """An image set could not be built: bad archive, too few images or classes, too many."""


class DatasetUnavailableError(DatasetError, ModelUnavailableError):
    """A Hugging Face dataset cannot be reached (offline) or could not be opened."""


# --------------------------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------------------------


def max_set_images() -> int:
    """The most images in one set: ``EXPLORER_MAX_SET_IMAGES`` (10,000; 1,000 public)."""
    return settings.get().max_set_images


def max_zip_bytes() -> int:
    """The largest total uncompressed zip size: ``EXPLORER_MAX_ZIP_MB`` MiB (2 GiB; 500 MiB public)."""
    return settings.get().max_zip_bytes


def _resolve_limit(max_images: int | None) -> int:
    if max_images is None:
        return max_set_images()
    if isinstance(max_images, bool) or not isinstance(max_images, (int, np.integer)):
        raise ValueError(f"max_images must be a positive int or None, got {max_images!r}")
    if max_images < 1:
        raise ValueError(f"max_images must be at least 1, got {max_images}")
    return int(max_images)


def _fmt_bytes(n: float) -> str:
    if n >= 1024**3:
        return f"{n / 1024**3:.3g} GB"
    return f"{n / 1024**2:.3g} MB"


# --------------------------------------------------------------------------------------------
# The set
# --------------------------------------------------------------------------------------------


def _short_reason(reason: str, limit: int = 60) -> str:
    """A long user-facing sentence -> a short phrase for :meth:`ImageSet.summary`."""
    text = reason.strip()
    text = re.split(r"(?<=[^.])\.\s|;|\s\(", text, maxsplit=1)[0].rstrip(". ")
    for prefix in (
        "This image file is ",
        "This file is ",
        "This image is ",
        "This image ",
        "This member of the zip is ",
        "This member of the zip ",
    ):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


@dataclass
class ImageSet:
    """A labelled set of RGB images (longer side at most :data:`MAX_SIDE`).

    ``paths`` holds a display path or id per image (the relative path inside a zip or folder,
    the file name of an upload, or ``"dataset[i]"``); ``skipped`` lists ``(path, reason)`` for
    every file that could not be used, to show the user.
    """

    name: str
    images: list[Image.Image]
    labels: list[str]
    paths: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    description: str = ""

    def __post_init__(self) -> None:
        n = len(self.images)
        if len(self.labels) != n or len(self.paths) != n:
            raise ValueError(
                f"images, labels and paths must have the same length, got "
                f"{n}, {len(self.labels)} and {len(self.paths)}"
            )

    def __len__(self) -> int:
        return len(self.images)

    @property
    def classes(self) -> list[str]:
        """The distinct labels, in order of first appearance."""
        return list(dict.fromkeys(self.labels))

    def class_counts(self) -> dict[str, int]:
        """``{label: number of images}``, in order of first appearance."""
        counts = Counter(self.labels)
        return {c: counts[c] for c in self.classes}

    def summary(self) -> str:
        """One line for the user, e.g. ``"48 images in 6 classes (8 each); 2 files skipped:
        a.txt (not an image), b.jpg (damaged or incomplete)"``."""
        n = len(self)
        counts = self.class_counts()
        k = len(counts)
        text = f"{n} image{'s' * (n != 1)}"
        if k:
            text += f" in {k} class{'es' * (k != 1)}"
            values = sorted(counts.values())
            if k > 1 and values[0] == values[-1]:
                text += f" ({values[0]} each)"
            elif 1 < k <= 8:
                parts = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                text += " (" + ", ".join(f"{c} {m}" for c, m in parts) + ")"
            elif k > 8:
                text += f" ({values[0]}–{values[-1]} per class)"
        if self.skipped:
            m = len(self.skipped)
            shown = ", ".join(f"{p} ({_short_reason(r)})" for p, r in self.skipped[:3])
            more = f", and {m - 3} more" if m > 3 else ""
            text += f"; {m} file{'s' * (m != 1)} skipped: {shown}{more}"
        return text

    def subset(self, idx: Iterable[int] | slice | np.ndarray) -> ImageSet:
        """A new set with the images at ``idx`` (ints, a boolean mask or a slice), same order.

        ``name``, ``skipped`` and ``description`` are kept; the images are shared, not copied.
        """
        n = len(self)
        if isinstance(idx, slice):
            picks = list(range(n))[idx]
        else:
            arr = np.asarray(list(idx) if not isinstance(idx, np.ndarray) else idx)
            if arr.dtype == np.bool_:
                if arr.shape != (n,):
                    raise ValueError(f"a boolean mask must have length {n}, got {arr.shape}")
                picks = np.flatnonzero(arr).tolist()
            elif arr.size == 0:
                picks = []
            elif np.issubdtype(arr.dtype, np.integer):
                picks = [int(i) for i in arr.ravel()]
                bad = [i for i in picks if not -n <= i < n]
                if bad:
                    raise IndexError(f"index {bad[0]} is out of range for a set of {n} images")
            else:
                raise TypeError(f"subset() takes ints, a boolean mask or a slice, not {arr.dtype}")
        return ImageSet(
            name=self.name,
            images=[self.images[i] for i in picks],
            labels=[self.labels[i] for i in picks],
            paths=[self.paths[i] for i in picks],
            skipped=list(self.skipped),
            description=self.description,
        )


def _downsize(im: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    w, h = im.size
    if max(w, h) <= max_side:
        return im
    scale = max_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _finish(
    name: str,
    shown: str,
    images: list[Image.Image],
    labels: list[str],
    paths: list[str],
    skipped: list[tuple[str, str]],
    description: str = "",
    need_classes: bool = True,
    hint: str = _LAYOUT_HINT,
) -> ImageSet:
    """Check the minimums (images, classes) and build the set."""
    if not images:
        detail = ""
        if skipped:
            p, r = skipped[0]
            detail = (
                f" ({len(skipped)} file{'s' * (len(skipped) != 1)} skipped, "
                f"e.g. {p}: {_short_reason(r)})"
            )
        raise DatasetError(f"No readable images were found in {shown}{detail}. {hint}")
    if len(images) < MIN_IMAGES:
        raise DatasetError(
            f"Only {len(images)} readable image{'s' * (len(images) != 1)} found in {shown}; "
            f"at least {MIN_IMAGES} are needed to draw a map. "
            "Add more images (ideally several per class) and try again."
        )
    classes = list(dict.fromkeys(labels))
    if need_classes and len(classes) < 2:
        raise DatasetError(
            f"Found one class '{classes[0]}' in {shown}: put images in at least two "
            "sub-folders, one per label (for example cats/ and dogs/), and try again."
        )
    return ImageSet(name, images, labels, paths, skipped, description)


# --------------------------------------------------------------------------------------------
# Labels and member names
# --------------------------------------------------------------------------------------------

_LABEL_PREFIX = re.compile(r"([^_\-\d]*)")


def label_from_filename(name: str) -> str:
    """``"cat_01.jpg"`` -> ``"cat"``: the file name's stem up to the first ``_``, ``-`` or digit,
    lower-cased and stripped (``"Golden Retriever-3.png"`` -> ``"golden retriever"``,
    ``"cat (2).jpg"`` -> ``"cat"``); ``"unlabelled"`` when that prefix is empty (``"0001.png"``).
    """
    stem = Path(name.replace("\\", "/")).name
    if "." in stem.lstrip("."):
        stem = stem[: stem.rfind(".")]
    prefix = _LABEL_PREFIX.match(stem).group(1)  # type: ignore[union-attr]
    label = prefix.strip().rstrip(" ([{.,;:+").strip().casefold()
    return label or "unlabelled"


def _ignored(parts: Sequence[str]) -> bool:
    """macOS resource forks, dotfiles, dot-folders and OS clutter: silently ignored."""
    return any(p.startswith(".") or p in _IGNORED_NAMES for p in parts)


def _classify(rel: str) -> tuple[str, str]:
    """A safe relative path -> ("ignore"|"skip"|"image", reason or label)."""
    parts = rel.split("/")
    if _ignored(parts):
        return "ignore", ""
    ext = os.path.splitext(parts[-1])[1].lower()
    if ext in ARCHIVE_EXTENSIONS:
        return "skip", "nested archive (not opened): unpack it and add its images instead"
    if ext not in IMAGE_EXTENSIONS:
        what = f"'{ext}' file" if ext else "file without an extension"
        return "skip", f"not an image ({what})"
    label = parts[-2].strip() if len(parts) > 1 else label_from_filename(parts[-1])
    return "image", label or "unlabelled"


def _safe_relpath(name: str) -> str | None:
    """A zip member name -> a clean relative POSIX path, or None if absolute or using ``..``."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm) or "\x00" in norm:
        return None
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return "/".join(parts)


def _member_name(info: zipfile.ZipInfo) -> str:
    """The member's name, repairing UTF-8 names stored without the UTF-8 flag (macOS zips)."""
    name = info.filename
    if not info.flag_bits & 0x800:
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            name = name.encode("cp437").decode("utf-8")
    return name


# --------------------------------------------------------------------------------------------
# Zip and folder
# --------------------------------------------------------------------------------------------


def _too_many(shown: str, count: int | None, limit: int) -> DatasetError:
    """``count=None``: the count is unknown (a folder walk stopped at the limit)."""
    held = f"{count:,} images, more than" if count is not None else f"more than {limit:,} images,"
    return DatasetError(
        f"{shown} holds {held} the limit of {limit:,}. "
        "Use fewer images (for example a few dozen per class), or raise the limit "
        "(max_images, or the EXPLORER_MAX_SET_IMAGES environment variable)."
    )


def _decode_all(
    items: list[tuple[str, str, Callable[[], Any]]],
    skipped: list[tuple[str, str]],
    progress: Progress,
) -> tuple[list[Image.Image], list[str], list[str]]:
    """(path, label, read) triples -> loaded images; failures go to ``skipped``."""
    images: list[Image.Image] = []
    labels: list[str] = []
    paths: list[str] = []
    n = len(items)
    step = max(1, n // 50)
    for i, (path, label, read) in enumerate(items):
        if i % step == 0:
            progress(i / max(n, 1), f"reading image {i + 1}/{n}")
        try:
            im = imaging.load_image(read())
        except BadImageError as exc:
            skipped.append((path, str(exc)))
            continue
        images.append(_downsize(im))
        labels.append(label)
        paths.append(path)
    progress(1.0, f"read {len(images)} images")
    return images, labels, paths


def from_zip(
    path: str | os.PathLike[str],
    max_images: int | None = None,
    progress: Progress | None = None,
) -> ImageSet:
    """A zip of class folders -> :class:`ImageSet`, read in memory (nothing is extracted).

    * Label = the folder directly containing the image (``root/train/cat/x.jpg`` -> ``cat``),
      so a single top folder wrapping the class folders works. Images at the top level of the
      zip are labelled from their file name (:func:`label_from_filename`).
    * Members are chosen by extension (:data:`IMAGE_EXTENSIONS`). Other files are skipped
      with the reason "not an image"; nested archives with "nested archive"; absolute paths
      and ``..`` with "unsafe path"; symbolic links, encrypted members and compression
      methods other than stored/deflate are skipped too. ``__MACOSX``, dotfiles, dot-folders,
      ``Thumbs.db`` and ``desktop.ini`` are ignored silently.
    * Refused before anything is decompressed: more than :data:`MAX_ARCHIVE_ENTRIES` entries,
      a total uncompressed size over :func:`max_zip_bytes`, a member over
      :data:`BOMB_MIN_BYTES` that compresses more than :data:`BOMB_RATIO` times (a zip bomb),
      or more image members than ``max_images`` (default :func:`max_set_images`). The image
      count is taken from the central directory, so the refusal costs no decoding.
    * Each member is read with a hard cap (``imaging.max_file_bytes()``), so a member whose
      header lies about its size cannot expand past the cap; it fails its CRC and is skipped.
      Images that do not decode are skipped with the :class:`BadImageError` reason.

    Raises:
        DatasetError: not a zip or a damaged one, a zip bomb, too many images, no readable
            images, fewer than :data:`MIN_IMAGES` images, or a single class.
    """
    progress = progress or no_progress
    limit = _resolve_limit(max_images)
    p = Path(path)
    shown = f"'{p.name}'"
    if not p.is_file():
        raise DatasetError(f"No zip file was found at {shown}. Check the path, or upload it again.")
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise DatasetError(
            f"{shown} is not a zip archive, or it is damaged ({exc}). "
            f"Create it again with your system's 'Compress' / 'Send to > Zip' command. "
            f"{_LAYOUT_HINT}"
        ) from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ARCHIVE_ENTRIES:
            raise DatasetError(
                f"{shown} holds {len(infos):,} entries, more than the {MAX_ARCHIVE_ENTRIES:,} "
                "this app reads. Zip only the images you want to explore."
            )
        _check_bomb(infos, shown)

        skipped: list[tuple[str, str]] = []
        members: list[tuple[str, str, zipfile.ZipInfo]] = []
        for info in infos:
            if info.is_dir():
                continue
            name = _member_name(info)
            rel = _safe_relpath(name)
            if rel is None:
                skipped.append((name, "unsafe path (absolute or with '..'): not read"))
                continue
            kind, what = _classify(rel)
            if kind == "ignore":
                continue
            if kind == "skip":
                skipped.append((rel, what))
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                skipped.append((rel, "symbolic link (not followed)"))
            elif info.flag_bits & 0x1:
                skipped.append((rel, "encrypted (password-protected): zip it without a password"))
            elif info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                skipped.append(
                    (rel, "unsupported compression method: re-zip with standard (deflate) settings")
                )
            elif info.file_size > imaging.max_file_bytes():
                skipped.append(
                    (
                        rel,
                        f"too large ({_fmt_bytes(info.file_size)}; the limit is "
                        f"{_fmt_bytes(imaging.max_file_bytes())} per image)",
                    )
                )
            else:
                members.append((rel, what, info))
        members.sort(key=lambda m: m[0])
        if len(members) > limit:
            raise _too_many(shown, len(members), limit)

        budget = {"left": max_zip_bytes()}

        def reader(info: zipfile.ZipInfo) -> Callable[[], bytes]:
            def read() -> bytes:
                cap = min(info.file_size, imaging.max_file_bytes())
                try:
                    with zf.open(info) as fh:
                        data = fh.read(cap + 1)
                except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
                    raise BadImageError(
                        f"This member of the zip is damaged ({exc}). "
                        "Create the zip again and upload it."
                    ) from exc
                except Exception as exc:  # zlib.error, NotImplementedError, RuntimeError
                    raise BadImageError(
                        f"This member of the zip could not be read ({type(exc).__name__}: "
                        f"{exc}). Create the zip again with standard settings."
                    ) from exc
                budget["left"] -= len(data)
                if budget["left"] < 0:
                    raise DatasetError(
                        f"{shown} expands to more than {_fmt_bytes(max_zip_bytes())} when read "
                        "(a possible zip bomb), so it was not read further. "
                        "Zip only the images you want to explore."
                    )
                return data

            return read

        items = [(rel, label, reader(info)) for rel, label, info in members]
        images, labels, paths = _decode_all(items, skipped, progress)
    return _finish(
        p.stem,
        shown,
        images,
        labels,
        paths,
        skipped,
        description=f"Images from the zip {shown}, labelled by their class folder.",
    )


def _check_bomb(infos: Sequence[zipfile.ZipInfo], shown: str) -> None:
    """Refuse zip bombs from the central directory alone (no decompression)."""
    total = sum(i.file_size for i in infos)
    limit = max_zip_bytes()
    if total > limit:
        raise DatasetError(
            f"{shown} expands to {_fmt_bytes(total)} uncompressed, more than the limit of "
            f"{_fmt_bytes(limit)} (it may be a zip bomb), so it was not opened. "
            "Zip only the images you want to explore, downscaled if they are large."
        )
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > BOMB_MIN_BYTES and ratio > BOMB_RATIO:
            raise DatasetError(
                f"{shown} looks like a zip bomb: the member '{info.filename}' expands from "
                f"{_fmt_bytes(info.compress_size)} to {_fmt_bytes(info.file_size)} "
                f"({ratio:,.0f} times), so the archive was refused. "
                "Upload a zip that holds only ordinary image files."
            )


def from_folder(
    path: str | os.PathLike[str],
    max_images: int | None = None,
    progress: Progress | None = None,
) -> ImageSet:
    """A local folder of class sub-folders -> :class:`ImageSet` (the rules of :func:`from_zip`).

    Symbolic links to folders are not followed. The walk stops, with an error, as soon as it
    has found more than ``max_images`` image files.

    Raises:
        DatasetError: not a folder, too many images, no readable images, fewer than
            :data:`MIN_IMAGES` images, or a single class.
    """
    progress = progress or no_progress
    limit = _resolve_limit(max_images)
    root = Path(path).expanduser()
    shown = f"'{root.name or root}'"
    if not root.is_dir():
        raise DatasetError(f"No folder was found at '{root}'. Check the path.")
    skipped: list[tuple[str, str]] = []
    members: list[tuple[str, str, Path]] = []

    def walk_error(exc: OSError) -> None:
        skipped.append((str(exc.filename or "?"), f"could not be listed ({exc.strerror})"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=walk_error):
        dirnames[:] = sorted(d for d in dirnames if not _ignored([d]))
        for fn in sorted(filenames):
            full = Path(dirpath) / fn
            rel = full.relative_to(root).as_posix()
            kind, what = _classify(rel)
            if kind == "ignore":
                continue
            if kind == "skip":
                skipped.append((rel, what))
                continue
            members.append((rel, what, full))
            if len(members) > limit:
                raise _too_many(shown, None, limit)
    members.sort(key=lambda m: m[0])
    items = [(rel, label, (lambda f=full: f)) for rel, label, full in members]
    images, labels, paths = _decode_all(items, skipped, progress)
    return _finish(
        root.name or str(root),
        shown,
        images,
        labels,
        paths,
        skipped,
        description=f"Images from the folder {shown}, labelled by their class folder.",
    )


def from_files(
    paths: Sequence[str | os.PathLike[str]],
    labels: Sequence[str] | None = None,
    max_images: int | None = None,
    progress: Progress | None = None,
) -> ImageSet:
    """Uploaded image files -> :class:`ImageSet`.

    Labels come from ``labels`` or else from each file name (:func:`label_from_filename`:
    ``"cat_01.jpg"`` -> ``"cat"``, ``"0001.png"`` -> ``"unlabelled"``); a single class is
    allowed here. Every file is tried with ``load_image`` whatever its extension; unreadable
    ones are skipped with the reason. Display paths are the file names.

    Raises:
        ValueError: ``labels`` has a different length than ``paths``.
        DatasetError: more than ``max_images`` files, or fewer than :data:`MIN_IMAGES`
            readable images.
    """
    progress = progress or no_progress
    limit = _resolve_limit(max_images)
    files = [os.fspath(p) for p in paths]
    if labels is not None and len(labels) != len(files):
        raise ValueError(f"got {len(labels)} labels for {len(files)} files")
    if len(files) > limit:
        raise _too_many("The upload", len(files), limit)
    names = [Path(f).name or f for f in files]
    labs = (
        [str(lab).strip() or "unlabelled" for lab in labels]
        if labels is not None
        else [label_from_filename(n) for n in names]
    )
    items = [(n, lab, (lambda f=f: f)) for n, lab, f in zip(names, labs, files, strict=True)]
    skipped: list[tuple[str, str]] = []
    images, out_labels, out_paths = _decode_all(items, skipped, progress)
    return _finish(
        "uploaded images",
        "the uploaded files",
        images,
        out_labels,
        out_paths,
        skipped,
        description="Uploaded images, labelled by the prefix of their file names.",
        need_classes=False,
        hint="Upload PNG, JPEG, WebP or GIF images named like cat_01.jpg, dog_01.jpg.",
    )


# --------------------------------------------------------------------------------------------
# Bundled set
# --------------------------------------------------------------------------------------------

# (label, file in skimage.data.data_dir, licence as stated in skimage.data's docstrings)
_BUNDLED_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("astronaut", "astronaut.png", "NASA (Eileen Collins), public domain"),
    ("cat", "chelsea.png", "CC0, Stefan van der Walt"),
    ("coffee", "coffee.png", "CC0, Rachel Michetti (Pikolo Espresso Bar)"),
    ("rocket", "rocket.jpg", "SpaceX (DSCOVR launch), public domain"),
    ("galaxy", "hubble_deep_field.jpg", "NASA Hubble eXtreme Deep Field, public domain"),
    ("retina", "retina.jpg", "CC0, Mikael Häggström (Wikimedia)"),
    ("photographer", "camera.png", "CC0, Lav Varshney"),
    ("clock", "clock_motion.png", "public domain, Stefan van der Walt"),
    ("coins", "coins.png", "Brooklyn Museum, no known copyright restrictions"),
    ("horse", "horse.png", "openclipart, CC0, Andreas Preuss"),
    ("brick", "brick.png", "CC0 Textures, CC0"),
    ("grass", "grass.png", "DeviantArt (linolafett), CC0"),
    ("gravel", "gravel.png", "CC0 Textures, CC0"),
)

# (object, palette donor): the object's photo recoloured to the donor's colour distribution.
_PALETTE_SWAPS: tuple[tuple[str, str], ...] = (
    ("cat", "coffee"),
    ("coffee", "rocket"),
    ("rocket", "cat"),
    ("astronaut", "retina"),
    ("retina", "astronaut"),
    ("galaxy", "coffee"),
    ("clock", "cat"),
    ("coins", "retina"),
)

_PHOTOMETRIC = ("hue", "blur", "brightness", "colour")

BUNDLED_DESCRIPTION = """\
Bundled example set, built offline from scikit-image's sample data (skimage.data).

Photos (label: file, licence as stated in skimage.data): astronaut (NASA, public domain),
cat (chelsea, CC0 Stefan van der Walt), coffee (CC0 Rachel Michetti), rocket (SpaceX, public
domain), galaxy (Hubble deep field, NASA, public domain), retina (CC0 Mikael Häggström),
photographer (camera, CC0 Lav Varshney), clock (public domain, Stefan van der Walt), coins
(Brooklyn Museum, no known copyright restrictions), horse (silhouette, openclipart CC0),
brick, grass, gravel (CC0 textures). Faces and non-faces: skimage.data.lfw_subset (25x25 crops
from Labeled Faces in the Wild; faces and background patches).

Each photo appears once plus n_aug seeded augmentations (random crop, flip, then in turn a hue
rotation / tint, a blur, a brightness change or a colour shift) labelled with the photo's
class: the same object in different colours. Some photos also appear recoloured with another
photo's colour distribution (e.g. the cat in the coffee's palette), still labelled with their
object: similar colours, different objects. A pixel-level latent tends to group those by
colour, a semantic embedding by object."""


@lru_cache(maxsize=4)
def _bundled_sources(size: int) -> tuple[tuple[str, str, Image.Image], ...]:
    """(label, file, RGB image with longer side ``size``) for every bundled photo present."""
    from skimage import data as skdata

    out = []
    for label, fname, _licence in _BUNDLED_SOURCES:
        path = Path(skdata.data_dir) / fname
        if not path.is_file():  # never download: use only what ships with scikit-image
            log.warning("Bundled set: %s is missing from scikit-image's data; skipped.", fname)
            continue
        im = imaging.load_image(path)
        out.append((label, fname, _downsize(im, size)))
    return tuple(out)


@lru_cache(maxsize=1)
def _lfw_subset() -> np.ndarray | None:
    from skimage import data as skdata

    path = Path(skdata.data_dir) / "lfw_subset.npy"
    if not path.is_file():
        log.warning("Bundled set: lfw_subset.npy is missing from scikit-image's data; skipped.")
        return None
    arr = np.load(path, allow_pickle=False)
    return arr if arr.ndim == 3 and arr.shape[0] >= 2 else None


def _rotate_hue(im: Image.Image, degrees: float) -> Image.Image:
    hsv = np.array(im.convert("HSV"))
    shift = round(degrees / 360.0 * 256) % 256
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + shift) % 256
    return Image.fromarray(hsv, mode="HSV").convert("RGB")


def _is_grey(im: Image.Image) -> bool:
    a = np.asarray(im, dtype=np.int16)
    return bool(
        np.abs(a[..., 0] - a[..., 1]).max() <= 2 and np.abs(a[..., 1] - a[..., 2]).max() <= 2
    )


def _match_palette(im: Image.Image, ref: Image.Image) -> Image.Image:
    """Per-channel histogram matching: ``im``'s content with ``ref``'s colour distribution."""
    src = np.asarray(im)
    dst = np.asarray(ref)
    out = np.empty_like(src)
    for c in range(3):
        s_counts = np.bincount(src[..., c].ravel(), minlength=256).astype(np.float64)
        r_counts = np.bincount(dst[..., c].ravel(), minlength=256).astype(np.float64)
        s_cdf = np.cumsum(s_counts) / s_counts.sum()
        r_cdf = np.cumsum(r_counts) / r_counts.sum()
        lut = np.interp(s_cdf, r_cdf, np.arange(256))
        out[..., c] = np.rint(lut).astype(np.uint8)[src[..., c]]
    return Image.fromarray(out, mode="RGB")


def _augment(im: Image.Image, rng: np.random.Generator, k: int) -> tuple[Image.Image, str]:
    """Random crop (+ flip) then the k-th photometric change -> (image, description)."""
    w, h = im.size
    area = rng.uniform(0.55, 0.9) * w * h
    ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    cw = max(8, min(w, round(math.sqrt(area * ratio))))
    ch = max(8, min(h, round(math.sqrt(area / ratio))))
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    out = im.resize((w, h), Image.Resampling.BICUBIC, box=(x0, y0, x0 + cw, y0 + ch))
    ops = ["crop"]
    if rng.random() < 0.5:
        out = ImageOps.mirror(out)
        ops.append("flip")
    kind = _PHOTOMETRIC[(k - 1) % len(_PHOTOMETRIC)]
    if kind == "hue":
        if _is_grey(out):
            hue = float(rng.uniform(0, 360))
            dark = _rotate_hue(Image.new("RGB", (1, 1), (60, 25, 10)), hue).getpixel((0, 0))
            light = _rotate_hue(Image.new("RGB", (1, 1), (255, 225, 170)), hue).getpixel((0, 0))
            out = ImageOps.colorize(out.convert("L"), dark, light)  # type: ignore[arg-type]
            ops.append(f"tint {hue:.0f}°")
        else:
            deg = float(rng.uniform(90, 270))
            out = _rotate_hue(out, deg)
            ops.append(f"hue {deg:+.0f}°")
    elif kind == "blur":
        radius = float(rng.uniform(1.5, 3.0)) * max(w, h) / 256
        out = out.filter(ImageFilter.GaussianBlur(radius))
        ops.append(f"blur {radius:.1f}px")
    elif kind == "brightness":
        factor = float(rng.uniform(0.5, 0.75) if rng.random() < 0.5 else rng.uniform(1.3, 1.6))
        out = ImageEnhance.Brightness(out).enhance(factor)
        ops.append(f"brightness ×{factor:.2f}")
    else:
        sat = float(rng.uniform(0.3, 1.8))
        gains = rng.uniform(0.7, 1.3, size=3)
        arr = np.asarray(ImageEnhance.Color(out).enhance(sat), dtype=np.float32) * gains
        out = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="RGB")
        ops.append(f"saturation ×{sat:.2f}, RGB gains " + "/".join(f"{g:.2f}" for g in gains))
    return out, ", ".join(ops)


def bundled_set(n_aug: int = 4, seed: int = 0, size: int = 256) -> ImageSet:
    """The bundled example set: opens offline, labelled, deterministic for a ``seed``.

    Built from scikit-image's sample photos (read from ``skimage.data.data_dir``; files that
    are missing are left out, nothing is downloaded):

    ============  =========================  ============================================
    label         file                       licence (from skimage.data's docstrings)
    ============  =========================  ============================================
    astronaut     astronaut.png              NASA, public domain
    cat           chelsea.png                CC0, Stefan van der Walt
    coffee        coffee.png                 CC0, Rachel Michetti
    rocket        rocket.jpg                 SpaceX, public domain
    galaxy        hubble_deep_field.jpg      NASA, public domain
    retina        retina.jpg                 CC0, Mikael Häggström
    photographer  camera.png                 CC0, Lav Varshney
    clock         clock_motion.png           public domain, Stefan van der Walt
    coins         coins.png                  Brooklyn Museum, no known copyright restr.
    horse         horse.png                  openclipart, CC0, Andreas Preuss
    brick         brick.png                  CC0 Textures, CC0
    grass         grass.png                  CC0 (DeviantArt, linolafett)
    gravel        gravel.png                 CC0 Textures, CC0
    face          lfw_subset.npy [0:100]     Labeled Faces in the Wild crops (via skimage)
    non-face      lfw_subset.npy [100:200]   background crops from the same photos
    ============  =========================  ============================================

    (scikit-image's ``moon``, ``page``, ``text``, ``logo`` and others state no licence or no
    object and are not used; nothing that needs pooch is used.)

    Construction, each photo first resized to ``size`` pixels on the longer side:

    * the photo itself, plus ``n_aug`` augmented copies, each a random crop (55-90 % of the
      area, resized back) with a random flip followed by, in turn, a hue rotation of 90-270
      degrees (a colour tint for greyscale photos), a Gaussian blur, a brightness change, or a
      saturation + per-channel colour shift -- *same object, different colours*;
    * for a few photos, one copy recoloured by per-channel histogram matching to another
      photo's colours (:data:`_PALETTE_SWAPS`, e.g. the cat with the coffee's palette), still
      labelled with its object -- *same colours, different object*;
    * ``max(4, 2 * (n_aug + 1))`` faces and as many non-faces drawn (seeded) from
      ``lfw_subset``, upscaled from 25x25 to ``size // 2``.

    With the defaults that is 93 images in 15 classes, built in well under 2 s (the decoded
    photos are cached per process). The random draws for each photo depend only on
    ``(seed, photo, k)``, so the same seed always gives the same pixels.

    Raises:
        ValueError: ``n_aug`` negative, or ``size`` outside [32, :data:`MAX_SIDE`].
    """
    if isinstance(n_aug, bool) or not isinstance(n_aug, (int, np.integer)) or n_aug < 0:
        raise ValueError(f"n_aug must be an int >= 0, got {n_aug!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise ValueError(f"size must be an int, got {size!r}")
    if not 32 <= size <= MAX_SIDE:
        raise ValueError(f"size must be in [32, {MAX_SIDE}], got {size}")
    sources = _bundled_sources(int(size))
    images: list[Image.Image] = []
    labels: list[str] = []
    paths: list[str] = []

    def add(im: Image.Image, label: str, path: str) -> None:
        images.append(im)
        labels.append(label)
        paths.append(path)

    by_label = {label: (fname, im) for label, fname, im in sources}
    for s, (label, fname, im) in enumerate(sources):
        add(im.copy(), label, f"skimage:{fname}")
        for k in range(1, n_aug + 1):
            rng = np.random.default_rng([seed, s, k])
            aug, desc = _augment(im, rng, k)
            add(aug, label, f"skimage:{fname} (aug {k}: {desc})")
    for obj, donor in _PALETTE_SWAPS:
        if obj in by_label and donor in by_label:
            fname, im = by_label[obj]
            dname, dim = by_label[donor]
            add(_match_palette(im, dim), obj, f"skimage:{fname} (palette of {dname})")

    lfw = _lfw_subset()
    if lfw is not None:
        n = max(4, 2 * (n_aug + 1))
        half = lfw.shape[0] // 2
        rng = np.random.default_rng([seed, 1_000_003])
        side = max(32, int(size) // 2)
        for label, lo in (("face", 0), ("non-face", half)):
            picks = np.sort(rng.choice(half, size=min(n, half), replace=False)) + lo
            for i in picks:
                im = imaging.load_image(lfw[int(i)])
                add(
                    im.resize((side, side), Image.Resampling.BICUBIC),
                    label,
                    f"skimage:lfw_subset[{i}]",
                )

    return ImageSet(
        name="bundled",
        images=images,
        labels=labels,
        paths=paths,
        skipped=[],
        description=BUNDLED_DESCRIPTION,
    )


# --------------------------------------------------------------------------------------------
# Hugging Face Hub
# --------------------------------------------------------------------------------------------

HUB_TIMEOUT_S: float = 3.0
"""Seconds allowed for the reachability check (DNS + TCP connect) before giving up."""

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.\-]*(/[A-Za-z0-9][\w.\-]*)?")
_LABEL_NAMES = ("label", "labels", "fine_label", "class", "category", "target", "coarse_label")


def _detect_columns(
    features: Any,
    example: dict[str, Any] | None,
    image_column: str | None,
    label_column: str | None,
) -> tuple[str, str, list[str] | None]:
    """-> (image column, label column, class names or None for raw values)."""
    import datasets as hf

    feats = dict(features) if features is not None else {}
    columns = list(feats) if feats else list(example or {})
    if image_column is None:
        image_cols = [c for c, f in feats.items() if isinstance(f, hf.Image)]
        if not image_cols and example is not None:
            image_cols = [
                c
                for c, v in example.items()
                if isinstance(v, Image.Image) or (isinstance(v, dict) and "bytes" in v)
            ]
        if not image_cols:
            raise DatasetError(
                f"No image column was found (columns: {', '.join(columns) or 'none'}). "
                "Pass image_column=<name>, or choose a dataset of images."
            )
        image_column = image_cols[0]
    elif columns and image_column not in columns:
        raise DatasetError(
            f"There is no column '{image_column}' (columns: {', '.join(columns)}). "
            "Pass one of these as image_column."
        )
    if label_column is None:
        class_cols = [c for c, f in feats.items() if isinstance(f, hf.ClassLabel)]
        if class_cols:
            preferred = [c for c in _LABEL_NAMES if c in class_cols]
            label_column = preferred[0] if preferred else class_cols[0]
        else:
            named = [c for c in _LABEL_NAMES if c in columns and c != image_column]
            if not named:
                raise DatasetError(
                    f"No label column was found (columns: {', '.join(columns)}). "
                    "Pass label_column=<name> with the class of each image."
                )
            label_column = named[0]
    elif columns and label_column not in columns:
        raise DatasetError(
            f"There is no column '{label_column}' (columns: {', '.join(columns)}). "
            "Pass one of these as label_column."
        )
    feat = feats.get(label_column)
    names = list(feat.names) if isinstance(feat, hf.ClassLabel) else None
    return image_column, label_column, names


def _hub_image(value: Any) -> Any:
    """A streamed image cell -> something :func:`imaging.load_image` accepts."""
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict):
        if value.get("bytes"):
            return value["bytes"]
        if value.get("path"):
            import datasets as hf

            return hf.Image().decode_example({"path": value["path"], "bytes": None})
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise BadImageError("This row holds no image data. Choose another image column.")


def from_hub(
    dataset_id: str,
    split: str = "train",
    per_class: int = 10,
    image_column: str | None = None,
    label_column: str | None = None,
    max_images: int | None = None,
    progress: Progress | None = None,
    max_scan: int = 5000,
    timeout: float = HUB_TIMEOUT_S,
) -> ImageSet:
    """A Hugging Face dataset, streamed -> :class:`ImageSet` with up to ``per_class`` per class.

    The image column is the first ``datasets.Image`` feature (or a column holding images),
    the label column the first ``ClassLabel`` (its names become the labels) or else a column
    called ``label``/``labels``/``class``/``category``...; both can be given. Images are
    read undecoded and go through ``load_image`` (bad ones are skipped with the reason).
    Streaming stops when every class has ``per_class`` images, when ``max_images`` images are
    kept, or after ``max_scan`` rows. Rows are taken in the dataset's order: a dataset sorted
    by class may need a larger ``max_scan`` to reach every class.

    The Hub must be reachable: ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` or a failed
    connection to the endpoint's host within ``timeout`` s (through ``HTTPS_PROXY`` when set)
    raise :class:`DatasetUnavailableError` at once, without retries.

    Raises:
        DatasetUnavailableError: offline, or the dataset could not be downloaded.
        DatasetError: a bad id, split or column, or too few images or classes.
    """
    progress = progress or no_progress
    dataset_id = str(dataset_id).strip()
    if not _HUB_ID.fullmatch(dataset_id):
        raise DatasetError(
            f"'{dataset_id}' is not a Hugging Face dataset id. Use the form owner/name "
            "(for example 'owner/my-images'), or upload a zip of class folders."
        )
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"per_class must be an int >= 1, got {per_class!r}")
    limit = _resolve_limit(max_images)
    progress(0.0, "checking the connection to the Hugging Face Hub")
    reason = hub_unreachable_reason(timeout)
    if reason:
        raise DatasetUnavailableError(
            f"Loading the Hugging Face dataset '{dataset_id}' needs internet, and {reason}. "
            f"{_HUB_HINT}"
        )

    progress(0.02, f"opening {dataset_id}")
    import datasets as hf

    try:
        ds = hf.load_dataset(dataset_id, split=split, streaming=True)
    except hf.exceptions.DatasetNotFoundError as exc:
        raise DatasetError(
            f"The dataset '{dataset_id}' was not found on the Hugging Face Hub ({exc}). "
            "Check the id; if it is gated or private, accept its terms on huggingface.co and "
            "log in with `hf auth login`."
        ) from exc
    except (ConnectionError, TimeoutError) as exc:
        raise DatasetUnavailableError(
            f"The dataset '{dataset_id}' could not be downloaded ({exc}). {_HUB_HINT}"
        ) from exc
    except Exception as exc:
        raise DatasetError(
            f"The dataset '{dataset_id}' (split '{split}') could not be opened: {exc}. "
            "Check the split name and the id, or upload a zip of class folders instead."
        ) from exc

    features = getattr(ds, "features", None)
    example = None
    if features is None:
        try:
            example = next(iter(ds.take(1)), None)
        except Exception as exc:
            raise DatasetUnavailableError(
                f"The dataset '{dataset_id}' could not be read ({exc}). {_HUB_HINT}"
            ) from exc
    image_column, label_column, names = _detect_columns(
        features, example, image_column, label_column
    )
    if features is not None and isinstance(features.get(image_column), hf.Image):
        ds = ds.cast_column(image_column, hf.Image(decode=False))
    try:
        ds = ds.select_columns([image_column, label_column])
    except Exception:  # older IterableDataset without select_columns for this source
        log.debug("select_columns failed; streaming every column.", exc_info=True)

    n_classes = len(names) if names else None
    target = min(limit, per_class * n_classes) if n_classes else limit
    counts: Counter[str] = Counter()
    images: list[Image.Image] = []
    labels: list[str] = []
    paths: list[str] = []
    skipped: list[tuple[str, str]] = []
    scanned = 0
    try:
        for i, row in enumerate(ds):
            scanned = i + 1
            raw = row.get(label_column)
            if raw is None or (names and isinstance(raw, int) and not 0 <= raw < len(names)):
                continue  # unlabelled rows (e.g. label -1 in a test split)
            label = names[raw] if names and isinstance(raw, (int, np.integer)) else str(raw)
            if counts[label] < per_class:
                path = f"{dataset_id}[{i}]"
                try:
                    im = imaging.load_image(_hub_image(row.get(image_column)))
                except BadImageError as exc:
                    skipped.append((path, str(exc)))
                else:
                    images.append(_downsize(im))
                    labels.append(label)
                    paths.append(path)
                    counts[label] += 1
            if len(images) >= target or scanned >= max_scan:
                break
            if scanned % 25 == 0:
                progress(
                    0.05 + 0.95 * len(images) / max(target, 1),
                    f"streamed {scanned} rows, kept {len(images)} images",
                )
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetUnavailableError(
            f"Streaming '{dataset_id}' failed after {scanned} rows ({exc}). {_HUB_HINT}"
        ) from exc
    progress(1.0, f"kept {len(images)} images from {scanned} rows")
    return _finish(
        dataset_id,
        f"'{dataset_id}' (split '{split}', first {scanned} rows)",
        images,
        labels,
        paths,
        skipped,
        description=(
            f"Up to {per_class} images per class from the Hugging Face dataset '{dataset_id}' "
            f"(split '{split}'), columns '{image_column}' and '{label_column}'."
        ),
        hint="Choose another dataset, split or image_column, or upload a zip of class folders.",
    )


# --------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------

_LOADERS: dict[str, Callable[..., ImageSet]] = {
    "bundled": bundled_set,
    "zip": from_zip,
    "folder": from_folder,
    "hub": from_hub,
}


def _call(kind: str, first: Any, kw: dict[str, Any]) -> ImageSet:
    """Call a loader with the options it takes; options meant for another source are dropped,
    unknown ones still raise ``TypeError``."""
    import inspect

    fn = _LOADERS[kind]
    own = set(inspect.signature(fn).parameters)
    known = set().union(*(inspect.signature(f).parameters for f in _LOADERS.values()))
    args = {k: v for k, v in kw.items() if k in own or k not in known}
    return fn(**args) if first is None else fn(first, **args)


def load_source(source: str | os.PathLike[str], **kw: Any) -> ImageSet:
    """``"bundled"`` -> :func:`bundled_set`; an existing folder -> :func:`from_folder`; an
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
    if text.lower() == "bundled":
        return _call("bundled", None, kw)
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
    if looks_local or not _HUB_ID.fullmatch(text):
        raise DatasetError(
            f"'{text}' was not found: it is not an existing zip file or folder, 'bundled', or a "
            "Hugging Face dataset id of the form owner/name. Check the path or the id."
        )
    return _call("hub", text, kw)
