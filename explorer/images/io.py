"""Images in and out: any upload -> 8-bit RGB PIL image -> (N,3,H,W) float32 tensors in [0,1].

Everything a user can hand the app goes through :func:`load_image`, which either returns a
plain 8-bit RGB :class:`PIL.Image.Image` or raises :class:`~explorer.core.errors.BadImageError`
with a sentence that says what is wrong and what to do. The rest of the module converts
between PIL images, ``torch`` tensors (``(N,3,H,W)`` float32 in ``[0, 1]``) and numpy arrays
(``(H,W,3)`` float64 in ``[0, 1]``), and builds the small visual helpers the UI shows: error
heatmaps, side-by-side strips and looping GIFs.

Limits are read from the environment at call time, so a test or a deployment can change them
without reloading the module:

* ``EXPLORER_MAX_PIXELS`` (default 40,000,000): the largest ``width * height`` accepted,
  checked from the file header before any pixel is decoded.
* ``EXPLORER_MAX_FILE_MB`` (default 50): the largest file accepted, in MiB.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from explorer.core import settings
from explorer.core.errors import BadImageError
from explorer.images.sizes import DRAFT_FORMATS, decoded_size, fit_size

if TYPE_CHECKING:
    import torch

__all__ = [
    "ALLOWED_FORMATS",
    "DRAFT_FORMATS",
    "Limits",
    "decoded_size",
    "example_images",
    "fit_size",
    "image_bytes",
    "image_header",
    "limits",
    "load_image",
    "max_file_bytes",
    "max_pixels",
    "prepare",
    "to_numpy_hwc",
    "to_pil",
    "to_rgb",
    "to_tensor",
]

log = logging.getLogger(__name__)

ALLOWED_FORMATS: tuple[str, ...] = (
    "PNG",
    "JPEG",
    "MPO",
    "WEBP",
    "GIF",
    "BMP",
    "TIFF",
    "PPM",
    "ICO",
    "AVIF",
)
"""Pillow decoders :func:`load_image` will use for files and bytes (formats this Pillow build
lacks are skipped). Obscure decoders are left out on purpose: they widen the attack surface,
and some (TGA) have no magic number, so random bytes could be "decoded" as an image."""

_UPLOAD_HINT = "Upload a PNG, JPEG, WebP or GIF."

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"

# Never decode half an image silently: a truncated upload must be refused, not padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False


# --------------------------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------------------------


def max_pixels() -> int:
    """The largest accepted ``width * height``: ``EXPLORER_MAX_PIXELS`` (40 MP; 16 MP public)."""
    return settings.get().max_pixels


_default_max_pixels = max_pixels  # load_image's ``max_pixels`` argument shadows the name


def max_file_bytes() -> int:
    """The largest accepted file size in bytes: ``EXPLORER_MAX_FILE_MB`` MiB (50; 20 public)."""
    return settings.get().max_file_bytes


class Limits(NamedTuple):
    """The limits :func:`load_image` checks, read once (:func:`limits`) for a whole set."""

    max_pixels: int
    max_file_bytes: int


def limits() -> Limits:
    """:func:`max_pixels` and :func:`max_file_bytes` from one reading of the settings."""
    s = settings.get()
    return Limits(s.max_pixels, s.max_file_bytes)


def _fmt_mb(n_bytes: float) -> str:
    return f"{n_bytes / (1024 * 1024):.3g} MB"


def _check_pixels(width: int, height: int, limit: int) -> None:
    if width <= 0 or height <= 0:
        raise BadImageError(
            f"This image has no pixels (its size is {width}x{height}). "
            f"Upload a different image. {_UPLOAD_HINT}",
            short="has no pixels",
        )
    if width * height > limit:
        raise BadImageError(
            f"This image is too large: {width}x{height} is {width * height / 1e6:.1f} megapixels, "
            f"and the limit is {limit / 1e6:.1f} megapixels. "
            "Downscale it (for example to 2048 pixels on the long side) and upload it again.",
            short=f"too large ({width * height / 1e6:.1f} megapixels)",
        )


def _check_file_size(n_bytes: int, limit: int | None = None) -> None:
    if n_bytes == 0:
        raise BadImageError(
            f"This file is empty (0 bytes). The upload may have failed: try again. {_UPLOAD_HINT}",
            short="empty",
        )
    limit = max_file_bytes() if limit is None else limit
    if n_bytes > limit:
        raise BadImageError(
            f"This file is too large ({_fmt_mb(n_bytes)}; the limit is {_fmt_mb(limit)}). "
            "Save it as a smaller JPEG or downscale it, then upload it again.",
            short="too large",
        )


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _non_image_error(data: bytes) -> BadImageError:
    """The error for bytes that no allowed Pillow decoder recognised, saying what they look like."""
    head = data[:4096]
    text = head.lstrip(b"\xef\xbb\xbf\xff\xfe\xfe\xff \t\r\n").lower()
    if text.startswith(b"<"):
        if b"<svg" in text:
            return BadImageError(
                "This file is an SVG drawing (vector graphics), not a pixel image. "
                "Export it as PNG or JPEG and upload that.",
                short="an SVG drawing",
            )
        if b"<html" in text or b"<!doctype html" in text or b"<head" in text or b"<body" in text:
            return BadImageError(
                "This file is a web page (HTML), not an image; this often happens when a "
                "download link saves the page around an image. "
                "Save the image itself (PNG, JPEG, WebP or GIF) and upload that.",
                short="a web page",
            )
        return BadImageError(
            f"This file is a text document (XML/HTML-like markup), not an image. {_UPLOAD_HINT}",
            short="a text document",
        )
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        decoded = None
    if (
        decoded is not None
        and decoded
        and sum(c.isprintable() or c.isspace() for c in decoded) >= (0.95 * len(decoded))
    ):
        return BadImageError(
            "This file is not an image Pillow can read (got 'text/plain'-like content). "
            f"{_UPLOAD_HINT}",
            short="not an image Pillow can read",
        )
    return BadImageError(
        "This file is not an image Pillow can read (unrecognised or unsupported format). "
        f"{_UPLOAD_HINT}",
        short="not an image Pillow can read",
    )


def _bomb_error() -> BadImageError:
    return BadImageError(
        "This image declares an enormous size in its header (a possible decompression bomb), "
        "so it was not decoded. Downscale it and upload it again.",
        short="declares an enormous size in its header",
    )


def _corrupt_error(kind: str = "file") -> BadImageError:
    return BadImageError(
        f"This image {kind} is damaged or incomplete (it could not be fully decoded); "
        "it may have been cut off while downloading or uploading. "
        "Re-save or re-download it, then upload it again.",
        short="damaged or incomplete",
    )


def image_header(data: bytes) -> tuple[str, int, int] | None:
    """The start of an image file -> ``(format, width, height)`` read from its header by the
    decoders :func:`load_image` uses (no pixel decoded), or None where none recognises it (or
    the header lies beyond ``data``)."""
    Image.init()
    formats = [f for f in ALLOWED_FORMATS if f in Image.OPEN]
    try:
        with Image.open(io.BytesIO(data), formats=formats) as im:
            return str(im.format), int(im.width), int(im.height)
    except Exception:  # unidentified, a bomb warning, a header cut short
        return None


def _open_bytes(
    data: bytes,
    limit: int,
    max_side: int | None = None,
    before_decode: Callable[[int, int], None] | None = None,
) -> Image.Image:
    """Open, size-check from the header, fully decode (a JPEG at a reduced scale covering
    ``max_side``) and return the first frame as RGB."""
    Image.init()
    formats = [f for f in ALLOWED_FORMATS if f in Image.OPEN]
    try:
        im = Image.open(io.BytesIO(data), formats=formats)
    except UnidentifiedImageError as exc:
        raise _non_image_error(data) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_error() from exc
    except Exception as exc:  # a decoder choking on a malformed header
        raise _corrupt_error() from exc

    with im:
        _check_pixels(im.width, im.height, limit)  # header only: nothing decoded yet
        if max_side and im.format in DRAFT_FORMATS:
            with contextlib.suppress(Exception):  # a decoder that cannot scale decodes it all
                im.draft(None, fit_size(im.width, im.height, max_side))
        if before_decode is not None:
            before_decode(im.width, im.height)  # what is about to be decoded
        try:
            im.seek(0)  # first frame of animated GIF / WebP / APNG
            im.load()  # force the full decode so truncation shows up here, not later
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb_error() from exc
        except MemoryError as exc:
            raise BadImageError(
                "This image needs more memory to decode than is available. "
                "Downscale it and upload it again.",
                short="needs more memory to decode than is available",
            ) from exc
        except Exception as exc:  # OSError('image file is truncated'), zlib/struct errors...
            raise _corrupt_error() from exc
        oriented, fresh = _exif_transpose(im)
        return to_rgb(oriented, copy=not fresh)


def _exif_transpose(im: Image.Image) -> tuple[Image.Image, bool]:
    """Apply the EXIF orientation tag -> (image, whether it is a new image).

    A malformed EXIF block is ignored rather than refused: it should not cost the user their
    image.
    """
    try:
        orientation = im.getexif().get(0x0112, 1)
        if orientation in (2, 3, 4, 5, 6, 7, 8):
            out = ImageOps.exif_transpose(im)
            if out is not None:
                return out, True
    except Exception:
        log.debug("Ignoring unreadable EXIF orientation.", exc_info=True)
    return im, False


def _scale_high_bit_depth(im: Image.Image) -> Image.Image:
    """16/32-bit integer and float single-band images -> 8-bit 'L', scaled (not clipped)."""
    arr = np.asarray(im)
    if im.mode.startswith("I;16"):
        scaled = arr.astype(np.float64) / 65535.0
    else:
        a = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo = float(a.min()) if a.size else 0.0
        hi = float(a.max()) if a.size else 0.0
        if im.mode == "F" and lo >= 0.0 and hi <= 1.0:
            scaled = a  # float images in [0, 1]
        elif im.mode == "F" and lo >= 0.0 and hi <= 255.0:
            scaled = a / 255.0  # float images holding 8-bit values
        elif im.mode == "I" and lo >= 0.0 and hi <= 65535.0:
            scaled = a / 65535.0  # 16-bit data that Pillow widened to 32-bit 'I'
        else:
            scaled = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)  # min-max
    out = np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(out, mode="L")


def _composite_on_white(rgba: Image.Image) -> Image.Image:
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def to_rgb(im: Image.Image, copy: bool = True) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB image; transparency is composited on white.

    The result is always a new image, except for an RGB input with ``copy=False``.
    """
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        grey = _scale_high_bit_depth(im)
        trns = im.info.get("transparency")
        if isinstance(trns, (int, float)) and not isinstance(trns, bool):
            # rare: a 16-bit grey PNG with a tRNS colour key
            alpha = Image.fromarray(np.where(np.asarray(im) == trns, 0, 255).astype(np.uint8))
            return _composite_on_white(Image.merge("RGBA", (grey, grey, grey, alpha)))
        return grey.convert("RGB")
    has_alpha = "A" in im.getbands() or mode in ("RGBa", "La") or "transparency" in im.info
    if has_alpha:
        if mode in ("RGBa", "La"):  # premultiplied alpha
            im = im.convert("RGBA") if mode == "RGBa" else im.convert("LA")
        return _composite_on_white(im.convert("RGBA"))
    if mode == "RGB":
        return im.copy() if copy else im
    try:
        return im.convert("RGB")
    except (ValueError, OSError) as exc:
        raise BadImageError(
            f"This image uses the '{mode}' colour mode, which cannot be converted to RGB here. "
            f"Re-save it as an RGB image. {_UPLOAD_HINT}",
            short=f"uses the '{mode}' colour mode",
        ) from exc


def _array_to_image(arr: np.ndarray, limit: int) -> Image.Image:
    """HxW, HxWx1, HxWx3, HxWx4 arrays (uint8, uint16, bool, float in [0,1]) -> RGB image."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise BadImageError(
            f"This array has shape {tuple(a.shape)}, which is not an image. "
            "Pass an HxW, HxWx3 or HxWx4 array.",
            short=f"an array of shape {tuple(a.shape)}",
        )
    _check_pixels(a.shape[1], a.shape[0], limit)
    if a.dtype == np.bool_:
        a8 = a.astype(np.uint8) * 255
    elif a.dtype == np.uint8:
        a8 = a
    elif a.dtype == np.uint16:
        a8 = np.rint(a.astype(np.float64) / 257.0).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        f = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0)
        a8 = np.rint(np.clip(f, 0.0, 1.0) * 255.0).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer) and a.size and a.min() >= 0 and a.max() <= 255:
        a8 = a.astype(np.uint8)
    else:
        raise BadImageError(
            f"This array has dtype {a.dtype} with values outside 0-255, which is ambiguous. "
            "Pass uint8, uint16, or float values in [0, 1].",
            short=f"an array of {a.dtype} values outside 0-255",
        )
    a8 = np.ascontiguousarray(a8)
    if a8.ndim == 2:
        return Image.fromarray(a8, mode="L").convert("RGB")
    if a8.shape[2] == 4:
        return _composite_on_white(Image.fromarray(a8, mode="RGBA"))
    return Image.fromarray(a8, mode="RGB")


def data_url_bytes(url: str) -> bytes:
    """A ``data:[mime][;base64],...`` URL (a pasted or API-sent image) -> its bytes, held to
    :func:`max_file_bytes` *before* decoding (from the text's length); nothing is decoded as an
    image here: the bytes go through :func:`load_image` like any upload.

    Raises:
        BadImageError: not a base64 data: URL, too large, or not valid base64.
    """
    head, sep, body = (url or "").partition(",")
    if not (head.startswith("data:") and head.endswith(";base64") and sep):
        raise BadImageError(
            f"This image was sent in a form the app does not read. {_UPLOAD_HINT}",
            short="unreadable data",
        )
    _check_file_size(len(body) * 3 // 4)
    try:
        data = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _corrupt_error("data") from exc
    _check_file_size(len(data))
    return data


def _read_path(path: Path, limit: int) -> bytes:
    shown = path.name or str(path)
    if not path.exists():
        raise BadImageError(
            f"No file was found at '{shown}'. Check the path, or upload the image again.",
            short="not found",
        )
    if path.is_dir():
        raise BadImageError(
            f"The path '{shown}' is a folder, not an image file. Choose an image file.",
            short="a folder, not an image file",
        )
    try:
        size = path.stat().st_size
        _check_file_size(size, limit)
        with path.open("rb") as fh:
            return fh.read(limit + 1)
    except OSError as exc:
        raise BadImageError(
            f"The file '{shown}' could not be read ({exc.strerror or 'I/O error'}). "
            "Check that it exists and is readable, or upload it again.",
            short="could not be read",
        ) from exc


def load_image(
    source: str | os.PathLike[str] | bytes | Image.Image | np.ndarray,
    max_pixels: int | None = None,
    *,
    limits: Limits | None = None,
    max_side: int | None = None,
    before_decode: Callable[[int, int], None] | None = None,
) -> Image.Image:
    """Any upload (path, bytes, PIL image, HxW[x3|x4] array) -> 8-bit RGB PIL image.

    * EXIF orientation is applied; animated GIF/WebP/APNG give their first frame.
    * Alpha (RGBA, LA, PA, palette transparency) is composited on white.
    * 16/32-bit integer and float greyscale ('I;16', 'I;16B', 'I', 'F') are scaled to 8 bits
      (16-bit by ``/65535``; others by their natural range or min-max), never clipped.
    * CMYK, 'L' and '1' are converted to RGB.
    * Arrays: uint8, uint16 (``/65535``), bool, or float in ``[0, 1]`` (clamped).

    Files and bytes are checked for size (:func:`max_file_bytes`) and their header for pixel
    count (``max_pixels`` or :func:`max_pixels`) *before* decoding; they are then fully decoded,
    so truncated or corrupt data is refused rather than padded. Only the decoders in
    :data:`ALLOWED_FORMATS` are tried. ``limits``: both limits read once by the caller
    (:func:`limits`), for a loop over many files (``max_pixels`` still wins where given).

    ``max_side`` (files and bytes): the caller will shrink the image to at most this many pixels
    a side, so a JPEG is decoded at the smallest 1/2, 1/4 or 1/8 scale that still covers it
    (:func:`decoded_size`; the result is then larger than ``max_side`` by less than 2x, never
    smaller). ``before_decode(width, height)`` is called with the size about to be decoded,
    after the header checks and before any pixel is; it may raise to stop the decode.

    Raises:
        BadImageError: empty, missing, too large, truncated/corrupt or non-image input; the
            message is a sentence for the user that says what to do.
        TypeError: ``source`` is none of the accepted types (a programming error).
    """
    if max_pixels is not None:
        limit = int(max_pixels)
    else:
        limit = limits.max_pixels if limits is not None else _default_max_pixels()
    if isinstance(source, Image.Image):
        _check_pixels(source.width, source.height, limit)
        try:
            source.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb_error() from exc
        except Exception as exc:
            raise _corrupt_error("data") from exc
        oriented, fresh = _exif_transpose(source)
        return to_rgb(oriented, copy=not fresh)
    if isinstance(source, np.ndarray):
        return _array_to_image(source, limit)
    if isinstance(source, (bytes, bytearray, memoryview, str, os.PathLike)):
        return _open_bytes(image_bytes(source, limits=limits), limit, max_side, before_decode)
    raise TypeError(
        f"load_image() takes a path, bytes, a PIL image or a numpy array, not {type(source)!r}"
    )


def image_bytes(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    limits: Limits | None = None,
) -> bytes:
    """A file path or bytes -> the encoded bytes :func:`load_image` decodes from it, with the
    same checks (no web addresses, missing files, folders, size limit) and messages."""
    limit = limits.max_file_bytes if limits is not None else max_file_bytes()
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        name = os.fspath(source)
        if isinstance(name, str) and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", name):
            raise BadImageError(
                "This looks like a web address; links are not downloaded. "
                "Save the image to your computer and upload the file.",
                short="a web address",
            )
        data = _read_path(Path(name), limit)
    _check_file_size(len(data), limit)  # a file may have changed since stat()
    return data


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------


def _check_resolution(resolution: int) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)):
        raise ValueError(f"resolution must be an int, got {resolution!r}")
    r = int(resolution)
    if r % 8 or not 64 <= r <= 2048:
        raise ValueError(f"resolution must be a multiple of 8 in [64, 2048], got {r}")
    return r


def prepare(image: Image.Image, resolution: int = 512, mode: str = "square") -> Image.Image:
    """RGB image of any size -> RGB image whose sides are multiples of 8 (LANCZOS resampling).

    * ``"square"``: centre-crop to the largest square, then resize to ``resolution`` squared.
    * ``"fit"``: scale so the longer side is ``resolution`` (aspect kept), then centre-crop
      each side down to a multiple of 8. A side that would be shorter than 8 pixels becomes 8
      (e.g. 20000x10 at 512 -> 512x8), so extreme aspect ratios stay small in memory.

    Resizing and cropping happen in a single resampling pass, straight from the source.

    Raises:
        ValueError: ``resolution`` is not a multiple of 8 in [64, 2048], or ``mode`` is unknown.
    """
    r = _check_resolution(resolution)
    if mode not in ("square", "fit"):
        raise ValueError(f"mode must be 'square' or 'fit', got {mode!r}")
    if image.mode != "RGB":
        image = to_rgb(image)
    w, h = image.size
    if w <= 0 or h <= 0:
        raise ValueError(f"image has no pixels ({w}x{h})")
    if mode == "square":
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        return image.resize((r, r), Image.Resampling.LANCZOS, box=(left, top, left + s, top + s))

    scale = r / max(w, h)
    # size after the aspect-preserving resize (at least 8 px so the crop below is possible)
    rw, rh = max(8, round(w * scale)), max(8, round(h * scale))
    tw, th = rw // 8 * 8, rh // 8 * 8  # centre-crop target, multiples of 8
    # map the crop in resized coordinates back to a box in source coordinates
    sx, sy = w / rw, h / rh
    x0, y0 = (rw - tw) / 2 * sx, (rh - th) / 2 * sy
    box = (x0, y0, x0 + tw * sx, y0 + th * sy)
    return image.resize((tw, th), Image.Resampling.LANCZOS, box=box)


# --------------------------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------------------------


def to_tensor(images: Image.Image | Sequence[Image.Image]) -> torch.Tensor:
    """One or more PIL images of the same size -> (N,3,H,W) float32 tensor in [0, 1].

    Non-RGB images are converted as in :func:`load_image`.

    Raises:
        ValueError: no images, or images of different sizes.
    """
    import torch

    batch = [images] if isinstance(images, Image.Image) else list(images)
    if not batch:
        raise ValueError("to_tensor() needs at least one image")
    sizes = {im.size for im in batch}
    if len(sizes) != 1:
        raise ValueError(f"all images must have the same size, got {sorted(sizes)}")
    arrays = [np.asarray(im if im.mode == "RGB" else to_rgb(im), dtype=np.uint8) for im in batch]
    stacked = torch.from_numpy(np.stack(arrays))  # (N,H,W,3) uint8
    return stacked.permute(0, 3, 1, 2).to(torch.float32).div_(255.0).contiguous()


def to_pil(x: torch.Tensor | np.ndarray) -> list[Image.Image]:
    """(N,3,H,W) or (3,H,W) values in [0, 1] (clamped; NaN -> 0) -> list of RGB PIL images.

    A single channel (``(N,1,H,W)`` or ``(1,H,W)``) is repeated to grey RGB.

    Raises:
        ValueError: the shape is not (N,C,H,W) / (C,H,W) with C in {1, 3}.
    """
    import torch

    t = torch.as_tensor(x) if isinstance(x, np.ndarray) else x
    t = t.detach().to("cpu", torch.float32)
    if t.ndim == 3:
        t = t.unsqueeze(0)
    if t.ndim != 4 or t.shape[1] not in (1, 3):
        raise ValueError(f"expected (N,3,H,W) or (3,H,W), got shape {tuple(t.shape)}")
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    t = torch.nan_to_num(t, nan=0.0, posinf=1.0, neginf=0.0).clamp_(0.0, 1.0)
    u8 = t.mul(255.0).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    return [Image.fromarray(a, mode="RGB") for a in u8]


def to_numpy_hwc(image: Image.Image) -> np.ndarray:
    """PIL image -> (H,W,3) float64 array in [0, 1] (non-RGB modes converted first)."""
    rgb = image if image.mode == "RGB" else to_rgb(image)
    return np.asarray(rgb, dtype=np.float64) / 255.0


def example_images() -> dict[str, Path]:
    """Bundled example photos: ``{"astronaut": <repo>/assets/astronaut.jpg, ...}``, sorted.

    Returns an empty dict when the assets folder is missing (e.g. a wheel without data).
    """
    if not ASSETS_DIR.is_dir():
        return {}
    files = sorted(
        p for p in ASSETS_DIR.iterdir() if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg")
    )
    return {p.stem: p for p in files}
