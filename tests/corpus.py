"""A corpus of hostile and awkward image files, written to a folder for loader and app tests.

``build_corpus(folder)`` writes one file per case and returns ``{name: CorpusCase}``. Each
case says whether the app must accept it (``expect="ok"``: it loads to 8-bit RGB) or refuse
it with a user-facing :class:`explorer.errors.BadImageError` (``expect="refuse"``).

All content is generated (deterministically) here; nothing is downloaded. Building the whole
corpus takes well under a second, most of it the decompression bomb.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, features

Expect = Literal["ok", "refuse"]


@dataclass(frozen=True)
class CorpusCase:
    """One corpus file: ``name``, where it is, whether it must load or be refused, and why."""

    name: str
    path: Path
    expect: Expect
    note: str


# Colours the tests look for.
RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)

BOMB_SIDE = 30_000  # the decompression bomb's declared width and height
PNG16_SIZE = (256, 16)  # width, height of the 16-bit gradient
EXIF_SIZE = (40, 20)  # stored width, height of the EXIF-rotated JPEG (displayed as 20x40)


def _noise(w: int, h: int, seed: int) -> Image.Image:
    """Random RGB noise: compresses badly, so truncating the file cuts into pixel data."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), mode="RGB")


def _wide_gradient(w: int, h: int) -> Image.Image:
    """Red ramps up left to right, blue down; a green stripe marks the middle row."""
    x = np.linspace(0, 255, w).round().astype(np.uint8)
    rgb = np.zeros((h, w, 3), dtype=np.uint8)
    rgb[:, :, 0] = x
    rgb[:, :, 2] = 255 - x
    rgb[h // 2, :, 1] = 255
    return Image.fromarray(rgb, mode="RGB")


def _halves(w: int, h: int, left, right, mode: str = "RGB") -> Image.Image:
    im = Image.new(mode, (w, h), left)
    im.paste(Image.new(mode, (w - w // 2, h), right), (w // 2, 0))
    return im


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def _bomb_png(side: int = BOMB_SIDE) -> bytes:
    """A valid 1-bit greyscale PNG of side x side zero pixels (about 110 KB on disk).

    Decoded naively it is ``side**2`` pixels (900 megapixels: ~2.7 GB as RGB). Written by hand
    with a streaming compressor so building it never holds the raw image in memory.
    """
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    block = row * 1000
    parts = []
    full, rest = divmod(side, 1000)
    for _ in range(full):
        parts.append(comp.compress(block))
    parts.append(comp.compress(row * rest))
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # bit depth 1, greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


def _save(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _cases() -> list[tuple[str, str, Expect, bytes, str]]:
    """(name, file name, expect, content, note) for every case."""
    cases: list[tuple[str, str, Expect, bytes, str]] = []

    def add(name: str, filename: str, expect: Expect, content: bytes, note: str) -> None:
        cases.append((name, filename, expect, content, note))

    # --- refuse -------------------------------------------------------------------------
    jpeg = _save(_noise(96, 96, seed=1), "JPEG", quality=90)
    add(
        "truncated_jpeg",
        "truncated.jpg",
        "refuse",
        jpeg[: len(jpeg) * 6 // 10],
        "JPEG cut at 60% of its bytes: the scan data ends early (interrupted download).",
    )
    png = _save(_noise(96, 96, seed=2), "PNG")
    add(
        "truncated_png",
        "truncated.png",
        "refuse",
        png[: len(png) * 6 // 10],
        "PNG cut at 60% of its bytes: the IDAT chunk ends early.",
    )
    add(
        "decompression_bomb",
        "bomb.png",
        "refuse",
        _bomb_png(),
        f"Valid 1-bit PNG whose header declares {BOMB_SIDE}x{BOMB_SIDE} (900 MP) in ~110 KB; "
        "must be refused from the header, before decoding.",
    )
    add(
        "text_as_jpg",
        "text.jpg",
        "refuse",
        ("This is a plain text file, renamed to .jpg.\n" * 20).encode(),
        "Plain UTF-8 text with a .jpg name.",
    )
    add(
        "html_as_jpg",
        "page.jpg",
        "refuse",
        b"<!DOCTYPE html>\n<html><head><title>Cat</title></head>\n"
        b'<body><img src="https://example.com/cat.jpg"></body></html>\n',
        "An HTML page saved with a .jpg name (a 'Save link as' mistake).",
    )
    add(
        "svg_as_jpg",
        "drawing.jpg",
        "refuse",
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
        b'<rect width="64" height="64" fill="red"/></svg>\n',
        "An SVG (vector) drawing with a .jpg name; Pillow cannot rasterise SVG.",
    )
    add("empty_file", "empty.jpg", "refuse", b"", "Zero bytes (a failed upload).")
    add(
        "random_bytes",
        "random.jpg",
        "refuse",
        random.Random(1234).randbytes(4096),
        "4 KiB of seeded random bytes with a .jpg name.",
    )

    # --- ok -----------------------------------------------------------------------------
    w16, h16 = PNG16_SIZE
    grad16 = np.tile(np.linspace(0, 65535, w16).round().astype(np.uint16), (h16, 1))
    add(
        "png16",
        "gray16.png",
        "ok",
        _save(Image.fromarray(grad16), "PNG"),
        "16-bit greyscale ('I;16') horizontal gradient 0..65535: must stay a gradient, "
        "not clip to white.",
    )
    add(
        "cmyk_jpeg",
        "cmyk.jpg",
        "ok",
        _save(_halves(32, 32, (255, 0, 0, 0), (0, 0, 0, 0), mode="CMYK"), "JPEG", quality=95),
        "CMYK JPEG: left half pure cyan, right half blank paper (white).",
    )
    pal = Image.new("P", (32, 32), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0, 0, 0] * 254)
    pal.paste(1, (16, 0, 32, 32))
    add(
        "palette_alpha_png",
        "palette_alpha.png",
        "ok",
        _save(pal, "PNG", transparency=0),
        "Palette PNG: left half palette index 0 (black, transparent via tRNS), right half red.",
    )
    add(
        "rgba_png",
        "rgba.png",
        "ok",
        _save(_halves(32, 32, (0, 0, 0, 0), (255, 0, 0, 255), mode="RGBA"), "PNG"),
        "RGBA PNG: left half fully transparent black, right half opaque red.",
    )
    add(
        "la_png",
        "la.png",
        "ok",
        _save(_halves(32, 32, (0, 0), (0, 255), mode="LA"), "PNG"),
        "Grey+alpha PNG: left half transparent black, right half opaque black.",
    )
    gif_frames = [Image.new("RGB", (24, 24), c) for c in (RED, GREEN, BLUE)]
    add(
        "animated_gif",
        "animated.gif",
        "ok",
        _save(gif_frames[0], "GIF", save_all=True, append_images=gif_frames[1:], loop=0),
        "3-frame GIF (red, green, blue): the first frame (red) must be used.",
    )
    if features.check("webp"):
        add(
            "animated_webp",
            "animated.webp",
            "ok",
            _save(
                gif_frames[0],
                "WEBP",
                save_all=True,
                append_images=gif_frames[1:],
                lossless=True,
                duration=100,
            ),
            "3-frame lossless WebP (red, green, blue): the first frame (red) must be used.",
        )
    add(
        "animated_png",
        "animated.png",
        "ok",
        _save(gif_frames[0], "PNG", save_all=True, append_images=gif_frames[1:], duration=100),
        "3-frame APNG (red, green, blue): the first frame (red) must be used.",
    )
    ew, eh = EXIF_SIZE
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    add(
        "exif_rotated_jpeg",
        "exif_rotated.jpg",
        "ok",
        _save(_halves(ew, eh, RED, BLUE), "JPEG", quality=95, exif=exif.tobytes()),
        f"{ew}x{eh} JPEG (left red, right blue) with EXIF Orientation=6: displays as "
        f"{eh}x{ew} with red on top.",
    )
    add(
        "tiny_1x1",
        "tiny.png",
        "ok",
        _save(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG"),
        "A single pixel.",
    )
    add(
        "wide_20000x10",
        "wide.png",
        "ok",
        _save(_wide_gradient(20000, 10), "PNG"),
        "20000x10: extreme aspect ratio (200 kP, well under the pixel limit).",
    )
    ramp = np.tile(np.arange(64, dtype=np.uint8) * 4, (16, 1))
    add(
        "grayscale_png",
        "gray.png",
        "ok",
        _save(Image.fromarray(ramp, mode="L"), "PNG"),
        "8-bit greyscale ('L') ramp.",
    )
    add(
        "bw_1bit_png",
        "bw.png",
        "ok",
        _save(_halves(32, 32, 0, 1, mode="1"), "PNG"),
        "1-bit black/white PNG: left black, right white.",
    )
    fgrad = np.tile(np.linspace(0.0, 1.0, 64, dtype=np.float32), (8, 1))
    add(
        "float_tiff",
        "float.tif",
        "ok",
        _save(Image.fromarray(fgrad, mode="F"), "TIFF"),
        "32-bit float ('F') TIFF gradient 0..1.",
    )
    add(
        "progressive_jpeg",
        "progressive.jpg",
        "ok",
        _save(_noise(64, 48, seed=4), "JPEG", quality=85, progressive=True),
        "Progressive JPEG.",
    )
    return cases


def build_corpus(folder: Path) -> dict[str, CorpusCase]:
    """Write every corpus file into ``folder`` (created if needed) -> ``{name: CorpusCase}``.

    ``animated_webp`` is left out when this Pillow build has no WebP support.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    corpus: dict[str, CorpusCase] = {}
    for name, filename, expect, content, note in _cases():
        path = folder / filename
        path.write_bytes(content)
        corpus[name] = CorpusCase(name=name, path=path, expect=expect, note=note)
    return corpus


#: Names of every case, in the order :func:`build_corpus` writes them (for parametrisation
#: without building files at collection time).
CASE_NAMES: tuple[str, ...] = (
    "truncated_jpeg",
    "truncated_png",
    "decompression_bomb",
    "text_as_jpg",
    "html_as_jpg",
    "svg_as_jpg",
    "empty_file",
    "random_bytes",
    "png16",
    "cmyk_jpeg",
    "palette_alpha_png",
    "rgba_png",
    "la_png",
    "animated_gif",
    "animated_webp",
    "animated_png",
    "exif_rotated_jpeg",
    "tiny_1x1",
    "wide_20000x10",
    "grayscale_png",
    "bw_1bit_png",
    "float_tiff",
    "progressive_jpeg",
)
