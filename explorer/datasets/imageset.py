"""The :class:`ImageSet` type, the limits every loader shares, and the helpers that build a set.

An image set is RGB images (longer side at most :data:`MAX_SIDE`), one label per image, a
display path per image, and the files that were left out, each a :class:`Skip` with the reason
why. Loaders (``archives``, ``bundled``, ``streaming``) end with :func:`finish`, which checks the
minimums and builds the set.

Limits are read through :func:`explorer.core.settings.get` at call time:

* ``EXPLORER_MAX_SET_IMAGES`` (10,000; 1,000 public): the most images in a set.
* ``EXPLORER_MAX_ZIP_MB`` (2048; 500 public): the largest total uncompressed size of a zip.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import PIL
from PIL import Image

from explorer.core import settings
from explorer.core.errors import ExplorerError, ModelUnavailableError
from explorer.core.safe_text import display_name

__all__ = [
    "DEFAULT_LABELING",
    "MAX_SIDE",
    "MIN_IMAGES",
    "DatasetError",
    "DatasetUnavailableError",
    "ImageSet",
    "Skip",
    "downsize",
    "file_key",
    "finish",
    "fmt_bytes",
    "max_set_images",
    "max_zip_bytes",
    "resolve_limit",
]


MAX_SIDE: int = 512
"""Every image in a set is downsized so its longer side is at most this many pixels."""

DEFAULT_LABELING = "label"
"""The name of a set's labelling when it has only one (a folder per class, a Hub label column)."""

MIN_IMAGES: int = 3
"""The fewest images a set may hold (a 2-D map of fewer points says nothing)."""


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


def resolve_limit(max_images: int | None) -> int:
    """A loader's ``max_images`` argument -> the limit to apply (None: :func:`max_set_images`).

    Raises:
        ValueError: not a positive int (a programming error, not a user's).
    """
    if max_images is None:
        return max_set_images()
    if isinstance(max_images, bool) or not isinstance(max_images, (int, np.integer)):
        raise ValueError(f"max_images must be a positive int or None, got {max_images!r}")
    if max_images < 1:
        raise ValueError(f"max_images must be at least 1, got {max_images}")
    return int(max_images)


def fmt_bytes(n: float) -> str:
    """``1.5 * 2**20`` -> ``"1.5 MB"``; GB from one GiB up (three significant digits)."""
    if n >= 1024**3:
        return f"{n / 1024**3:.3g} GB"
    return f"{n / 1024**2:.3g} MB"


# --------------------------------------------------------------------------------------------
# The set
# --------------------------------------------------------------------------------------------


class Skip(tuple[str, str]):
    """A file left out of a set: the pair ``(path, reason)`` plus ``short``, the few words the
    summary line shows beside the path (``"not an image"``, ``"damaged or incomplete"``).

    It is a 2-tuple, so it unpacks, compares and builds dicts like ``(path, reason)``; the short
    form is given where the file is skipped (or taken from ``BadImageError.short``), never parsed
    back out of the sentence. Without one, the whole reason is shown.
    """

    short: str

    def __new__(cls, path: str, reason: str, short: str = "") -> Skip:
        self = super().__new__(cls, (path, reason))
        self.short = short or reason
        return self

    def __getnewargs__(self) -> tuple[str, str, str]:  # copy / pickle keep the short form
        return (self[0], self[1], self.short)

    @property
    def path(self) -> str:
        return self[0]

    @property
    def reason(self) -> str:
        return self[1]


def _as_skip(item: tuple[str, str]) -> Skip:
    return item if isinstance(item, Skip) else Skip(*item)


@dataclass
class ImageSet:
    """A labelled set of RGB images (longer side at most :data:`MAX_SIDE`).

    ``paths`` holds a display path or id per image (the relative path inside a zip or folder,
    the file name of an upload, or ``"dataset[i]"``); ``skipped`` lists a :class:`Skip`
    ``(path, reason)`` for every file that could not be used, to show the user (plain pairs
    are accepted and turned into :class:`Skip` s).
    """

    name: str
    images: list[Image.Image]
    labels: list[str]
    paths: list[str]
    skipped: list[Skip] = field(default_factory=list)
    description: str = ""
    labelings: dict[str, list[str]] = field(default_factory=dict)
    groups: list[str] | None = None
    keys: list[str] | None = None
    """One content key per image (:func:`file_key` of the bytes it was decoded from), for the
    embedding cache; None: key the images by their pixels (``embeddings.image_hash``)."""

    def __post_init__(self) -> None:
        n = len(self.images)
        if len(self.labels) != n or len(self.paths) != n:
            raise ValueError(
                f"images, labels and paths must have the same length, got "
                f"{n}, {len(self.labels)} and {len(self.paths)}"
            )
        for name, values in self.labelings.items():
            if len(values) != n:
                raise ValueError(f"labeling {name!r} has {len(values)} labels for {n} images")
        if self.groups is not None and len(self.groups) != n:
            raise ValueError(f"groups has {len(self.groups)} entries for {n} images")
        if self.keys is not None and len(self.keys) != n:
            raise ValueError(f"keys has {len(self.keys)} entries for {n} images")
        self.skipped = [_as_skip(s) for s in self.skipped]

    @property
    def labeling_names(self) -> list[str]:
        """The names of the set's labellings: its own (``meaning``, ``appearance``, …) or
        ``["label"]`` for a set with one labelling."""
        return list(self.labelings) or [DEFAULT_LABELING]

    def labeling(self, name: str | None = None) -> list[str]:
        """One label per image under labelling ``name`` (None: the set's main labels)."""
        if name is None or (name == DEFAULT_LABELING and not self.labelings):
            return list(self.labels)
        if name not in self.labelings:
            raise ExplorerError(
                f"This set has no labelling {name!r}; it has {', '.join(self.labeling_names)}."
            )
        return list(self.labelings[name])

    def groups_for(self, name: str | None) -> list[str] | None:
        """The groups that scoring labelling ``name`` must keep out of each other's neighbours
        (variants of one source photo), or None: not when ``name`` is the grouping itself."""
        if self.groups is None or (name is not None and self.labelings.get(name) == self.groups):
            return None
        return list(self.groups)

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
        a.txt (not an image), b.jpg (damaged or incomplete)"`` (names shortened to one clean
        line each, :func:`~explorer.core.safe_text.display_name`; plain text, not Markdown)."""
        n = len(self)
        counts = self.class_counts()
        k = len(counts)
        text = f"{n:,} image{'s' * (n != 1)}"
        if k:
            text += f" in {k:,} class{'es' * (k != 1)}"
            values = sorted(counts.values())
            if k > 1 and values[0] == values[-1]:
                text += f" ({values[0]:,} each)"
            elif 1 < k <= 8:
                parts = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                text += (
                    " ("
                    + ", ".join(f"{display_name(c, max_chars=40)} {m:,}" for c, m in parts)
                    + ")"
                )
            elif k > 8:
                text += f" ({values[0]:,}–{values[-1]:,} per class)"
        if self.skipped:
            m = len(self.skipped)
            shown = ", ".join(
                f"{display_name(s.path, max_chars=60)} ({display_name(s.short, max_chars=80)})"
                for s in self.skipped[:3]
            )
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
            labelings={k: [v[i] for i in picks] for k, v in self.labelings.items()},
            groups=None if self.groups is None else [self.groups[i] for i in picks],
            keys=None if self.keys is None else [self.keys[i] for i in picks],
        )


# --------------------------------------------------------------------------------------------
# Building a set
# --------------------------------------------------------------------------------------------


def downsize(im: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    """An image -> the same image if its longer side is at most ``max_side`` px, else a
    Lanczos-resized copy whose longer side is ``max_side`` (aspect ratio kept)."""
    w, h = im.size
    if max(w, h) <= max_side:
        return im
    scale = max_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def file_key(data: bytes) -> str:
    """The embedding-cache key of an image decoded from the file bytes ``data`` by the set
    loaders (``load_image`` then :func:`downsize`): SHA-256 of the bytes, tagged with what else
    decides the pixels (:data:`MAX_SIDE`, JPEGs decoded at a reduced scale, the Pillow
    version). Hashing the encoded bytes costs a fraction of hashing the decoded pixels; a file
    whose content changes gets a new key."""
    digest = hashlib.sha256(data).hexdigest()
    return f"file-sha256:{digest}|side{MAX_SIDE}|jpeg-draft|pillow{PIL.__version__}"


def finish(
    name: str,
    shown: str,
    images: list[Image.Image],
    labels: list[str],
    paths: list[str],
    skipped: list[Skip],
    hint: str,
    description: str = "",
    need_classes: bool = True,
    keys: list[str] | None = None,
) -> ImageSet:
    """Check the minimums (images, and two classes where ``need_classes``), then build the set.

    ``shown`` names the source in messages (``"'photos.zip'"``); ``hint`` is the sentence that
    ends the "no readable images" message.

    Raises:
        DatasetError: no readable images, fewer than :data:`MIN_IMAGES`, or a single class.
    """
    skipped = [_as_skip(s) for s in skipped]
    if not images:
        detail = ""
        if skipped:
            first = skipped[0]
            detail = (
                f" ({len(skipped)} file{'s' * (len(skipped) != 1)} skipped, "
                f"e.g. {first.path}: {first.short})"
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
    return ImageSet(name, images, labels, paths, skipped, description, keys=keys)
