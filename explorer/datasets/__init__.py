"""Labelled image sets for the semantic atlas: bundled, zip, folder, uploads, Hugging Face Hub.

Every source becomes an :class:`ImageSet`: RGB images (each read through
:func:`explorer.imaging.load_image`, so hostile files are refused the same way as single
uploads, then downsized so the longer side is at most :data:`MAX_SIDE`), one label per image,
a display path per image, and the files that were skipped with the reason why.

Sources, one module each:

* :func:`bundled_set` (``bundled``) -- opens offline; built from scikit-image's bundled
  public-domain / CC0 photos with labelled augmentations.
* :func:`from_zip`, :func:`from_folder`, :func:`from_files` (``archives``) -- a zip of class
  folders read in memory (nothing is ever extracted), the same rules for a local folder, and
  many uploaded images labelled from their file names.
* :func:`from_hub` (``streaming``) -- a Hugging Face dataset, streamed (needs internet).
* :func:`load_source` (``sources``) -- picks one of the above from a string.

The type, the shared limits (:func:`max_set_images`, :func:`max_zip_bytes`, read through
``explorer.settings.get()`` at call time) and the errors live in ``imageset``. All user-facing
failures raise :class:`DatasetError` (an :class:`~explorer.errors.ExplorerError`) with a
sentence that says what to do.
"""

from __future__ import annotations

from .archives import (
    ARCHIVE_EXTENSIONS,
    BOMB_MIN_BYTES,
    BOMB_RATIO,
    IMAGE_EXTENSIONS,
    MAX_ARCHIVE_ENTRIES,
    from_files,
    from_folder,
    from_zip,
    label_from_filename,
)
from .bundled import BUNDLED_DESCRIPTION, bundled_set
from .imageset import (
    MAX_SIDE,
    MIN_IMAGES,
    DatasetError,
    DatasetUnavailableError,
    ImageSet,
    Skip,
    max_set_images,
    max_zip_bytes,
)
from .sources import load_source
from .streaming import from_hub

__all__ = [
    "ARCHIVE_EXTENSIONS",
    "BOMB_MIN_BYTES",
    "BOMB_RATIO",
    "BUNDLED_DESCRIPTION",
    "IMAGE_EXTENSIONS",
    "MAX_ARCHIVE_ENTRIES",
    "MAX_SIDE",
    "MIN_IMAGES",
    "DatasetError",
    "DatasetUnavailableError",
    "ImageSet",
    "Skip",
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
