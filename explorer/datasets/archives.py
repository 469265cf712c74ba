"""Image sets from files: a zip of class folders, a local folder of them, or uploaded images.

Every file goes through :func:`explorer.images.io.load_image`, so hostile files are refused the
same way as single uploads, and is then downsized (:func:`~.imageset.downsize`).

* :func:`from_zip` -- a zip of class folders, read in memory (nothing is ever extracted).
* :func:`from_folder` -- the same rules for a local folder of class folders (CLI use).
* :func:`from_files` -- many uploaded images, labelled from their file names.

Files that cannot be used are listed in the set's ``skipped`` with the reason, and a short form
of it for the summary line, both given here where the file is skipped.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from explorer.core import pool
from explorer.core.errors import BadImageError
from explorer.core.progress import Progress, no_progress
from explorer.datasets.imageset import (
    MAX_SIDE,
    DatasetError,
    ImageSet,
    Skip,
    downsize,
    file_key,
    finish,
    fmt_bytes,
    max_zip_bytes,
    resolve_limit,
)
from explorer.datasets.plan import PixelBudget, SetPlan, check, plan
from explorer.images import io as imaging

__all__ = [
    "ARCHIVE_EXTENSIONS",
    "BOMB_MIN_BYTES",
    "BOMB_RATIO",
    "IMAGE_EXTENSIONS",
    "LAYOUT_HINT",
    "MAX_ARCHIVE_ENTRIES",
    "from_files",
    "from_folder",
    "from_zip",
    "label_from_filename",
    "plan_files",
    "plan_zip",
]

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

LAYOUT_HINT = (
    "Put the images in one sub-folder per class (for example cats/ and dogs/), "
    "zip those folders together and upload the zip."
)


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


def _classify(rel: str) -> Skip | str | None:
    """A safe relative path -> None (ignored silently), a :class:`Skip` (not read), or the
    label of the image it holds."""
    parts = rel.split("/")
    if _ignored(parts):
        return None
    ext = os.path.splitext(parts[-1])[1].lower()
    if ext in ARCHIVE_EXTENSIONS:
        return Skip(
            rel,
            "nested archive (not opened): unpack it and add its images instead",
            "nested archive",
        )
    if ext not in IMAGE_EXTENSIONS:
        what = f"'{ext}' file" if ext else "file without an extension"
        return Skip(rel, f"not an image ({what})", "not an image")
    label = parts[-2].strip() if len(parts) > 1 else label_from_filename(parts[-1])
    return label or "unlabelled"


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
    skipped: list[Skip],
    progress: Progress,
    budget: PixelBudget,
) -> tuple[list[Image.Image], list[str], list[str], list[str]]:
    """(path, label, read) triples -> (images, labels, paths, content keys); failures go to
    ``skipped``. ``read()`` gives the file's bytes or its path (called here, one at a time, in
    order: a zip's members and its size budget are read by one thread); the files are then
    read, decoded, downsized and hashed on a bounded pool of threads (:mod:`explorer.core.pool`),
    with the limits read once for the set. Each key is :func:`file_key` of the very bytes that
    were decoded. JPEGs are decoded at the reduced scale that covers :data:`MAX_SIDE`;
    ``budget`` is spent before each decode (a set past it is refused with DatasetError)."""
    limits = imaging.limits()

    def sources():
        for path, label, read in items:
            try:
                yield path, label, read(), None
            except BadImageError as exc:
                yield path, label, None, exc

    def decode(item: tuple[str, str, Any, BadImageError | None]):
        path, label, source, error = item
        if error is not None:
            return path, label, error
        try:
            data = imaging.image_bytes(source, limits=limits)
            im = imaging.load_image(
                data, limits=limits, max_side=MAX_SIDE, before_decode=budget.spend
            )
        except BadImageError as exc:
            return path, label, exc
        return path, label, (downsize(im), file_key(data))

    images: list[Image.Image] = []
    labels: list[str] = []
    paths: list[str] = []
    keys: list[str] = []
    n = len(items)
    step = max(1, n // 50)
    for i, (path, label, got) in enumerate(pool.imap_ordered(decode, sources())):
        if i % step == 0:
            progress(i / max(n, 1), f"reading image {i + 1}/{n}")
        if isinstance(got, BadImageError):
            skipped.append(Skip(path, str(got), got.short))
            continue
        images.append(got[0])
        labels.append(label)
        paths.append(path)
        keys.append(got[1])
    progress(1.0, f"read {len(images)} images")
    return images, labels, paths, keys


def _open_zip(p: Path, shown: str) -> zipfile.ZipFile:
    if not p.is_file():
        raise DatasetError(f"No zip file was found at {shown}. Check the path, or upload it again.")
    try:
        return zipfile.ZipFile(p)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise DatasetError(
            f"{shown} is not a zip archive, or it is damaged ({exc}). "
            f"Create it again with your system's 'Compress' / 'Send to > Zip' command. "
            f"{LAYOUT_HINT}"
        ) from exc


def _zip_members(
    zf: zipfile.ZipFile, shown: str, limit: int
) -> tuple[list[tuple[str, str, zipfile.ZipInfo]], list[Skip]]:
    """A zip's central directory -> its image members ``(path, label, info)`` in path order and
    the files skipped; refuses (DatasetError) too many entries, a bomb or too many images, all
    without decompressing anything."""
    infos = zf.infolist()
    if len(infos) > MAX_ARCHIVE_ENTRIES:
        raise DatasetError(
            f"{shown} holds {len(infos):,} entries, more than the {MAX_ARCHIVE_ENTRIES:,} "
            "this app reads. Zip only the images you want to explore."
        )
    _check_bomb(infos, shown)

    skipped: list[Skip] = []
    members: list[tuple[str, str, zipfile.ZipInfo]] = []
    for info in infos:
        if info.is_dir():
            continue
        name = _member_name(info)
        rel = _safe_relpath(name)
        if rel is None:
            skipped.append(
                Skip(name, "unsafe path (absolute or with '..'): not read", "unsafe path")
            )
            continue
        label = _classify(rel)
        if label is None:
            continue
        if isinstance(label, Skip):
            skipped.append(label)
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            skipped.append(Skip(rel, "symbolic link (not followed)", "symbolic link"))
        elif info.flag_bits & 0x1:
            skipped.append(
                Skip(
                    rel,
                    "encrypted (password-protected): zip it without a password",
                    "encrypted",
                )
            )
        elif info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            skipped.append(
                Skip(
                    rel,
                    "unsupported compression method: re-zip with standard (deflate) settings",
                    "unsupported compression method",
                )
            )
        elif info.file_size > imaging.max_file_bytes():
            skipped.append(
                Skip(
                    rel,
                    f"too large ({fmt_bytes(info.file_size)}; the limit is "
                    f"{fmt_bytes(imaging.max_file_bytes())} per image)",
                    "too large",
                )
            )
        else:
            members.append((rel, label, info))
    members.sort(key=lambda m: m[0])
    if len(members) > limit:
        raise _too_many(shown, len(members), limit)
    return members, skipped


def _zip_head(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[int | None], bytes]:
    """``head(n)``: the first ``n`` bytes of a member (None: all of it, within the file cap)."""

    def head(n: int | None) -> bytes:
        cap = min(info.file_size, imaging.max_file_bytes())
        with zf.open(info) as fh:
            return fh.read(min(n, cap + 1) if n is not None else cap + 1)

    return head


def _file_head(path: str | os.PathLike[str]) -> Callable[[int | None], bytes]:
    def head(n: int | None) -> bytes:
        with open(path, "rb") as fh:
            return fh.read(n if n is not None else imaging.max_file_bytes() + 1)

    return head


def plan_zip(path: str | os.PathLike[str], max_images: int | None = None) -> SetPlan:
    """What :func:`from_zip` would decode (from the central directory and each member's header;
    nothing decoded). Raises DatasetError where from_zip refuses before decoding (not a zip, a
    bomb, too many images)."""
    p = Path(path)
    shown = f"'{p.name}'"
    zf = _open_zip(p, shown)
    with zf:
        members, _ = _zip_members(zf, shown, resolve_limit(max_images))
        return plan([_zip_head(zf, info) for _, _, info in members])


def plan_files(paths: Sequence[str | os.PathLike[str]]) -> SetPlan:
    """What :func:`from_files` would decode (from each file's header; nothing decoded)."""
    return plan([_file_head(f) for f in paths])


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
    * Refused before any pixel is decoded: a set whose images would decode to more than
      ``EXPLORER_MAX_SET_MEGAPIXELS`` (read from each member's header, :mod:`.plan`). JPEGs
      are decoded at the reduced scale that covers :data:`MAX_SIDE`, not at full size.
    * Each member is read with a hard cap (``imaging.max_file_bytes()``), so a member whose
      header lies about its size cannot expand past the cap; it fails its CRC and is skipped.
      Images that do not decode are skipped with the :class:`BadImageError` reason.

    Raises:
        DatasetError: not a zip or a damaged one, a zip bomb, too many images, no readable
            images, fewer than :data:`MIN_IMAGES` images, or a single class.
    """
    progress = progress or no_progress
    limit = resolve_limit(max_images)
    p = Path(path)
    shown = f"'{p.name}'"
    zf = _open_zip(p, shown)
    with zf:
        members, skipped = _zip_members(zf, shown, limit)
        heads = [_zip_head(zf, info) for _, _, info in members]
        pixels = PixelBudget(shown)
        check(plan(heads), shown, pixels.limit)  # before any pixel is decoded
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
                        "Create the zip again and upload it.",
                        short="damaged",
                    ) from exc
                except Exception as exc:  # zlib.error, NotImplementedError, RuntimeError
                    raise BadImageError(
                        f"This member of the zip could not be read ({type(exc).__name__}: "
                        f"{exc}). Create the zip again with standard settings.",
                        short="could not be read",
                    ) from exc
                budget["left"] -= len(data)
                if budget["left"] < 0:
                    raise DatasetError(
                        f"{shown} expands to more than {fmt_bytes(max_zip_bytes())} when read "
                        "(a possible zip bomb), so it was not read further. "
                        "Zip only the images you want to explore."
                    )
                return data

            return read

        items = [(rel, label, reader(info)) for rel, label, info in members]
        images, labels, paths, keys = _decode_all(items, skipped, progress, pixels)
    return finish(
        p.stem,
        shown,
        images,
        labels,
        paths,
        skipped,
        LAYOUT_HINT,
        description=f"Images from the zip {shown}, labelled by their class folder.",
        keys=keys,
    )


def _check_bomb(infos: Sequence[zipfile.ZipInfo], shown: str) -> None:
    """Refuse zip bombs from the central directory alone (no decompression)."""
    total = sum(i.file_size for i in infos)
    limit = max_zip_bytes()
    if total > limit:
        raise DatasetError(
            f"{shown} expands to {fmt_bytes(total)} uncompressed, more than the limit of "
            f"{fmt_bytes(limit)} (it may be a zip bomb), so it was not opened. "
            "Zip only the images you want to explore, downscaled if they are large."
        )
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > BOMB_MIN_BYTES and ratio > BOMB_RATIO:
            raise DatasetError(
                f"{shown} looks like a zip bomb: the member '{info.filename}' expands from "
                f"{fmt_bytes(info.compress_size)} to {fmt_bytes(info.file_size)} "
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
    limit = resolve_limit(max_images)
    root = Path(path).expanduser()
    shown = f"'{root.name or root}'"
    if not root.is_dir():
        raise DatasetError(f"No folder was found at '{root}'. Check the path.")
    skipped: list[Skip] = []
    members: list[tuple[str, str, Path]] = []

    def walk_error(exc: OSError) -> None:
        where = str(exc.filename or "?")
        skipped.append(Skip(where, f"could not be listed ({exc.strerror})", "could not be listed"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=walk_error):
        dirnames[:] = sorted(d for d in dirnames if not _ignored([d]))
        for fn in sorted(filenames):
            full = Path(dirpath) / fn
            rel = full.relative_to(root).as_posix()
            label = _classify(rel)
            if label is None:
                continue
            if isinstance(label, Skip):
                skipped.append(label)
                continue
            members.append((rel, label, full))
            if len(members) > limit:
                raise _too_many(shown, None, limit)
    members.sort(key=lambda m: m[0])
    pixels = PixelBudget(shown)
    check(plan([_file_head(full) for _, _, full in members]), shown, pixels.limit)
    items = [(rel, label, (lambda f=full: f)) for rel, label, full in members]
    images, labels, paths, keys = _decode_all(items, skipped, progress, pixels)
    return finish(
        root.name or str(root),
        shown,
        images,
        labels,
        paths,
        skipped,
        LAYOUT_HINT,
        description=f"Images from the folder {shown}, labelled by their class folder.",
        keys=keys,
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
    limit = resolve_limit(max_images)
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
    skipped: list[Skip] = []
    pixels = PixelBudget("the uploaded files")
    check(plan_files(files), "The upload", pixels.limit)
    images, out_labels, out_paths, keys = _decode_all(items, skipped, progress, pixels)
    return finish(
        "uploaded images",
        "the uploaded files",
        images,
        out_labels,
        out_paths,
        skipped,
        "Upload PNG, JPEG, WebP or GIF images named like cat_01.jpg, dog_01.jpg.",
        description="Uploaded images, labelled by the prefix of their file names.",
        need_classes=False,
        keys=keys,
    )
