"""Labelled image sets for the semantic atlas: bundled, zip, folder, uploads, Hugging Face Hub.

Every source becomes an :class:`ImageSet`: RGB images (each read through
:func:`explorer.images.io.load_image`, so hostile files are refused the same way as single
uploads, then downsized so the longer side is at most :data:`MAX_SIDE`), one label per image,
a display path per image, and the files that were skipped with the reason why.

Sources, one module each:

* :func:`teaching_set` (``bundled``, ``teaching``) -- the set the app opens, offline: freely
  licensed photos whose colours and meanings are crossed on purpose, labelled by meaning,
  appearance and source photo.
* :func:`augmented_set` (``augmented``) -- each class one photo and its augmentations: the
  counter-example where near-duplicates make every space look good.
* :func:`from_zip`, :func:`from_folder`, :func:`from_files` (``archives``) -- a zip of class
  folders read in memory (nothing is ever extracted), the same rules for a local folder, and
  many uploaded images labelled from their file names.
* :func:`from_hub` (``streaming``) -- a Hugging Face dataset, streamed (needs internet).
* :func:`load_source` (``sources``) -- picks one of the above from a string.

The type, the shared limits (:func:`max_set_images`, :func:`max_zip_bytes`, read through
``explorer.core.settings.get()`` at call time) and the errors live in ``imageset``. All user-facing
failures raise :class:`DatasetError` (an :class:`~explorer.core.errors.ExplorerError`) with a
sentence that says what to do.
"""

from __future__ import annotations

from explorer.datasets.archives import (
    ARCHIVE_EXTENSIONS,
    BOMB_MIN_BYTES,
    BOMB_RATIO,
    IMAGE_EXTENSIONS,
    MAX_ARCHIVE_ENTRIES,
    from_files,
    from_folder,
    from_zip,
    label_from_filename,
    plan_files,
    plan_zip,
)
from explorer.datasets.augmented import AUGMENTED_DESCRIPTION, augmented_set
from explorer.datasets.imageset import (
    DEFAULT_LABELING,
    MAX_SIDE,
    MIN_IMAGES,
    DatasetError,
    DatasetUnavailableError,
    ImageSet,
    Skip,
    file_key,
    max_set_images,
    max_zip_bytes,
)
from explorer.datasets.plan import SetPlan, max_set_pixels
from explorer.datasets.sources import load_source
from explorer.datasets.streaming import from_hub
from explorer.datasets.teaching import APPEARANCES, SOURCES, teaching_set
from explorer.datasets.teaching import describe as describe_teaching_set

__all__ = [
    "APPEARANCES",
    "ARCHIVE_EXTENSIONS",
    "AUGMENTED_DESCRIPTION",
    "BOMB_MIN_BYTES",
    "BOMB_RATIO",
    "DEFAULT_LABELING",
    "IMAGE_EXTENSIONS",
    "MAX_ARCHIVE_ENTRIES",
    "MAX_SIDE",
    "MIN_IMAGES",
    "SOURCES",
    "DatasetError",
    "DatasetUnavailableError",
    "ImageSet",
    "SetPlan",
    "Skip",
    "augmented_set",
    "describe_teaching_set",
    "file_key",
    "from_files",
    "from_folder",
    "from_hub",
    "from_zip",
    "label_from_filename",
    "load_source",
    "max_set_images",
    "max_set_pixels",
    "max_zip_bytes",
    "plan_files",
    "plan_zip",
    "teaching_set",
]
