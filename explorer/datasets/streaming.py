"""Image sets streamed from a Hugging Face dataset (needs internet): :func:`from_hub`.

The Hub's reachability is checked first (:func:`explorer.models.hub.hub_unreachable_reason`, bounded by
:data:`explorer.models.hub.HUB_TIMEOUT_S`), so offline use fails at once with a sentence that says what
to do instead.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from explorer.core.errors import BadImageError
from explorer.core.progress import Progress, no_progress
from explorer.core.safe_text import display_name
from explorer.datasets.imageset import (
    MAX_SIDE,
    DatasetError,
    DatasetUnavailableError,
    ImageSet,
    Skip,
    downsize,
    finish,
    resolve_limit,
)
from explorer.datasets.plan import PixelBudget
from explorer.images import io as imaging
from explorer.models.hub import HUB_TIMEOUT_S, hub_unreachable_reason

__all__ = ["HUB_ID", "from_hub", "is_hub_id"]

log = logging.getLogger(__name__)

_HUB_HINT = (
    "Upload a zip of images in class folders instead (one sub-folder per label), "
    "or use the bundled example set."
)

HUB_ID = re.compile(r"[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*")
"""A Hugging Face dataset id: ``owner/name``. A bare ``name`` is refused: the datasets library reads
a bare ``json``, ``csv``, ``imagefolder`` … as a builtin loader over the server's working folder."""


def is_hub_id(text: str) -> bool:
    """Whether ``text`` has the form of a Hugging Face dataset id (``owner/name``) and names no
    local folder or file (the datasets library would read that from the server's disk)."""
    return HUB_ID.fullmatch(text) is not None and not Path(text).exists()


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
        path = str(value.get("path") or "")
        if path.startswith(("hf://", "https://")):  # a file of the dataset's repository
            import datasets as hf

            return hf.Image().decode_example({"path": path, "bytes": None})
        if path:  # never open a path on this server's disk
            raise BadImageError(
                "This row names a file instead of carrying its image. Only images stored in the "
                "dataset itself are read.",
                short="a file path, not an image",
            )
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise BadImageError(
        "This row holds no image data. Choose another image column.", short="no image data"
    )


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
    if not is_hub_id(dataset_id):
        said = display_name(dataset_id, max_chars=100)  # never echoed whole: it is the visitor's
        raise DatasetError(
            f"'{said}' is not a Hugging Face dataset id. Use the form owner/name "
            "(for example 'owner/my-images'), or upload a zip of class folders."
        )
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"per_class must be an int >= 1, got {per_class!r}")
    limit = resolve_limit(max_images)
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
    pixels = PixelBudget(f"'{dataset_id}'")
    images: list[Image.Image] = []
    labels: list[str] = []
    paths: list[str] = []
    skipped: list[Skip] = []
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
                    im = imaging.load_image(
                        _hub_image(row.get(image_column)),
                        max_side=MAX_SIDE,
                        before_decode=pixels.spend,
                    )
                except BadImageError as exc:
                    skipped.append(Skip(path, str(exc), exc.short))
                else:
                    images.append(downsize(im))
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
    return finish(
        dataset_id,
        f"'{dataset_id}' (split '{split}', first {scanned} rows)",
        images,
        labels,
        paths,
        skipped,
        "Choose another dataset, split or image_column, or upload a zip of class folders.",
        description=(
            f"Up to {per_class} images per class from the Hugging Face dataset '{dataset_id}' "
            f"(split '{split}'), columns '{image_column}' and '{label_column}'."
        ),
    )
