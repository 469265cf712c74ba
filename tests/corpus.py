"""A corpus of hostile and awkward image files, written to a folder for loader and app tests.

``build_corpus(folder)`` writes one file per case and returns ``{name: CorpusCase}``. Each
case says whether the app must accept it (``expect="ok"``: it loads to 8-bit RGB) or refuse
it with a user-facing :class:`explorer.core.errors.BadImageError` (``expect="refuse"``).

``build_zip_corpus(folder)`` does the same for hostile ``.zip`` uploads (a zip bomb, ``../``
and absolute member paths, 10,000 tiny files, nested and damaged archives...): ``expect="ok"``
means the set opens (bad members skipped and reported), ``expect="refuse"`` a clear message;
``says`` is a phrase that status or message must contain.

All content is generated (deterministically) here; nothing is downloaded. Building the whole
image corpus takes well under a second, most of it the decompression bomb; the zip corpus
about a second, most of it compressing the zip bomb's 300 MiB of zeros.
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, features

from tests.helpers import noise_image

Expect = Literal["ok", "refuse"]


@dataclass(frozen=True)
class CorpusCase:
    """One corpus file: ``name``, where it is, whether it must load or be refused, and why."""

    name: str
    path: Path
    expect: Expect
    note: str
    says: str = ""  # zip cases: a phrase the app's status ("ok") or error ("refuse") contains


# Colours the tests look for.
RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)

BOMB_SIDE = 30_000  # the decompression bomb's declared width and height
PNG16_SIZE = (256, 16)  # width, height of the 16-bit gradient
EXIF_SIZE = (40, 20)  # stored width, height of the EXIF-rotated JPEG (displayed as 20x40)


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
    jpeg = _save(noise_image(1, (96, 96)), "JPEG", quality=90)
    add(
        "truncated_jpeg",
        "truncated.jpg",
        "refuse",
        jpeg[: len(jpeg) * 6 // 10],
        "JPEG cut at 60% of its bytes: the scan data ends early (interrupted download).",
    )
    png = _save(noise_image(2, (96, 96)), "PNG")
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
        _save(noise_image(4, (64, 48)), "JPEG", quality=85, progressive=True),
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


# --------------------------------------------------------------------------------------------
# Zip uploads
# --------------------------------------------------------------------------------------------

#: The class folders of every zip that should open (distinctive names, so a test can tell an
#: extracted member from anything else on disk).
ZIP_CLASSES: tuple[str, str] = ("lsx_red", "lsx_blue")
ZIP_GOOD_PER_CLASS = 2  # so each zip that opens holds 4 readable images in 2 classes

#: Member file names used for path-traversal attempts: none may ever appear on disk.
TRAVERSAL_NAMES: tuple[str, ...] = (
    "lsx_evil.txt",
    "lsx_pwned.png",
    "lsx_pwned_abs.png",
    "lsx_evil_win.png",
    "lsx_pwned_drive.png",
)
ZIP_BOMB_MIB = 300  # uncompressed size of the zip bomb's single member
TINY_FILES = 10_000


def class_image(label: str, i: int, side: int = 24) -> bytes:
    """A small, valid PNG for class ``label``: a flat colour per class plus seeded noise."""
    base = {"lsx_red": (200, 40, 40), "lsx_blue": (40, 60, 200)}.get(
        label, (40 + 37 * (len(label) % 5), 160, 90)
    )
    rng = np.random.default_rng([i, len(label), sum(label.encode())])
    arr = np.clip(np.array(base) + rng.integers(-25, 26, (side, side, 3)), 0, 255)
    return _save(Image.fromarray(arr.astype(np.uint8), mode="RGB"), "PNG")


def write_good_images(folder: Path) -> list[Path]:
    """Three readable PNGs of two labels (``ripe_1.png``, ``ripe_2.png``, ``unripe_1.png``):
    the minimum an upload of several images needs to open, labelled from the file names."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, name in enumerate(("ripe_1.png", "ripe_2.png", "unripe_1.png")):
        path = folder / name
        path.write_bytes(class_image(name.split("_")[0], i))
        out.append(path)
    return out


def _write_good_members(z: zipfile.ZipFile, per_class: int = ZIP_GOOD_PER_CLASS) -> None:
    for label in ZIP_CLASSES:
        for i in range(per_class):
            z.writestr(f"{label}/{label}_{i}.png", class_image(label, i))


def _good_zip_bytes(extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        _write_good_members(z)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def _zip_bomb(path: Path) -> None:
    """4 good images + one member of ZIP_BOMB_MIB MiB of zeros, written streaming (~300 KB)."""
    block = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        _write_good_members(z)
        with z.open("lsx_red/lsx_zeros.png", "w", force_zip64=True) as fh:
            for _ in range(ZIP_BOMB_MIB):
                fh.write(block)


def _zip_traversal(path: Path) -> None:
    """Good images, members escaping the folder (``../``, absolute, Windows ``..\\``, drive
    letter) and a symbolic link member; a naive extractor would write outside its folder."""
    png = class_image("lsx_red", 99)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        # the unsafe members first, so the status line names them
        z.writestr("../lsx_evil.txt", b"written outside the extraction folder\n")
        z.writestr("../" * 12 + "tmp/lsx_pwned.png", png)
        z.writestr("/tmp/lsx_pwned_abs.png", png)  # zipfile keeps a writestr name as given
        z.writestr("..\\..\\lsx_evil_win.png", png)
        z.writestr("C:/lsx_pwned_drive.png", png)
        link = zipfile.ZipInfo("lsx_red/lsx_link.png")
        link.external_attr = 0o120777 << 16  # a symbolic link to a file outside
        z.writestr(link, "/etc/passwd")
        _write_good_members(z)


def _zip_many(path: Path, n: int, images: bool) -> None:
    """``n`` tiny members: 1x1 PNG images in the two class folders, or 1-line text files (plus
    the 4 good images)."""
    tiny_png = _save(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        if images:
            for i in range(n):
                z.writestr(f"{ZIP_CLASSES[i % 2]}/lsx_tiny_{i:05d}.png", tiny_png)
        else:
            _write_good_members(z)
            for i in range(n):
                z.writestr(f"lsx_notes/lsx_note_{i:05d}.txt", b"tiny\n")


def _zip_nested(path: Path, with_images: bool) -> None:
    inner = _good_zip_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("lsx_inner.zip", inner)
    deeper = buf.getvalue()  # a zip holding a zip
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("lsx_red/lsx_inner.zip", inner)
        if with_images:
            z.writestr("lsx_deeper.zip", deeper)
            _write_good_members(z)


def _zip_corrupt_member(path: Path) -> None:
    """A sound archive whose fifth image has 64 bytes of its compressed data flipped."""
    victim = "lsx_blue/lsx_blue_corrupt.png"
    data = bytearray(_good_zip_bytes({victim: _save(noise_image(7, (48, 48)), "PNG")}))
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo(victim)
    off = info.header_offset
    name_len, extra_len = struct.unpack("<HH", data[off + 26 : off + 30])
    start = off + 30 + name_len + extra_len + info.compress_size // 2
    for k in range(start, start + 64):
        data[k] ^= 0xFF
    path.write_bytes(bytes(data))


def _zip_hostile_members(path: Path) -> None:
    """Good images plus image-corpus files inside the class folders (truncated, bomb, text)."""
    jpeg = _save(noise_image(1, (96, 96)), "JPEG", quality=90)
    path.write_bytes(
        _good_zip_bytes(
            {
                "lsx_red/lsx_truncated.jpg": jpeg[: len(jpeg) * 6 // 10],
                "lsx_red/lsx_bomb.png": _bomb_png(),
                "lsx_blue/lsx_text.jpg": b"plain text, not a JPEG\n" * 10,
                "lsx_blue/lsx_empty.png": b"",
            }
        )
    )


def build_zip_corpus(folder: Path) -> dict[str, CorpusCase]:
    """Write every zip case into ``folder`` -> ``{name: CorpusCase}`` (about a second).

    ``expect="ok"``: the set opens with the 4 good images of :data:`ZIP_CLASSES` (the bad
    members skipped and reported); ``expect="refuse"``: the upload is refused with a message.
    Either way ``says`` is a phrase the status line or the message contains.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    corpus: dict[str, CorpusCase] = {}

    def add(name: str, filename: str, expect: Expect, write, note: str, says: str) -> None:
        path = folder / filename
        if isinstance(write, bytes):
            path.write_bytes(write)
        else:
            write(path)
        corpus[name] = CorpusCase(name=name, path=path, expect=expect, note=note, says=says)

    add(
        "zip_bomb",
        "bomb.zip",
        "refuse",
        _zip_bomb,
        f"~300 KB zip with one {ZIP_BOMB_MIB} MiB member of zeros (ratio ~1000:1) beside 4 "
        "images: must be refused from the central directory, with the default limits.",
        "zip bomb",
    )
    add(
        "zip_traversal",
        "traversal.zip",
        "ok",
        _zip_traversal,
        "Members named ../lsx_evil.txt, ../../…/tmp/lsx_pwned.png, /tmp/lsx_pwned_abs.png, "
        "..\\..\\lsx_evil_win.png, C:/lsx_pwned_drive.png and a symlink, beside 4 images: the "
        "unsafe ones are skipped, nothing is written anywhere.",
        "unsafe path",
    )
    add(
        "zip_10000_tiny_files",
        "tiny_files.zip",
        "ok",
        lambda p: _zip_many(p, TINY_FILES, images=False),
        f"4 images and {TINY_FILES:,} one-line text files: opens, the text files are skipped "
        "and counted.",
        f"{TINY_FILES} files skipped",
    )
    add(
        "zip_10001_tiny_images",
        "tiny_images.zip",
        "refuse",
        lambda p: _zip_many(p, TINY_FILES + 1, images=True),
        f"{TINY_FILES + 1:,} 1x1 PNGs: one over the default set limit; refused from the "
        "central directory before any image is decoded.",
        "more than the limit",
    )
    add(
        "zip_nested",
        "nested.zip",
        "ok",
        lambda p: _zip_nested(p, with_images=True),
        "4 images, a zip inside a class folder and a zip holding a zip: the archives are "
        "skipped (not opened).",
        "nested archive",
    )
    add(
        "zip_only_nested",
        "only_nested.zip",
        "refuse",
        lambda p: _zip_nested(p, with_images=False),
        "A zip holding nothing but another zip.",
        "No readable images",
    )
    good = _good_zip_bytes({"lsx_red/lsx_late.png": _save(noise_image(5, (64, 64)), "PNG")})
    add(
        "zip_truncated",
        "truncated.zip",
        "refuse",
        good[: len(good) * 6 // 10],
        "A zip cut at 60% of its bytes: no central directory (interrupted download).",
        "not a zip archive, or it is damaged",
    )
    add(
        "zip_corrupt_member",
        "corrupt_member.zip",
        "ok",
        _zip_corrupt_member,
        "A sound archive with 64 flipped bytes inside one member's data: that member fails "
        "to inflate or its CRC and is skipped.",
        "lsx_blue_corrupt.png (damaged)",
    )
    add(
        "zip_hostile_members",
        "hostile_members.zip",
        "ok",
        _zip_hostile_members,
        "4 images plus a truncated JPEG, a 900 MP PNG bomb, text named .jpg and an empty PNG "
        "inside the class folders: each is skipped with its reason.",
        "4 files skipped",
    )
    add(
        "text_as_zip",
        "notes.zip",
        "refuse",
        ("Meeting notes, not an archive.\n" * 20).encode(),
        "Plain text with a .zip name.",
        "not a zip archive",
    )
    add(
        "empty_zip_file",
        "empty.zip",
        "refuse",
        b"",
        "Zero bytes named .zip (a failed upload).",
        "not a zip archive",
    )
    add(
        "zip_without_images",
        "no_images.zip",
        "refuse",
        _text_only_zip(),
        "A valid zip holding only a README and a spreadsheet.",
        "No readable images",
    )
    return corpus


def _text_only_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("lsx_docs/README.txt", b"no images here\n")
        z.writestr("lsx_docs/table.csv", b"a,b\n1,2\n")
    return buf.getvalue()


#: Names of every zip case, in the order :func:`build_zip_corpus` writes them.
ZIP_CASE_NAMES: tuple[str, ...] = (
    "zip_bomb",
    "zip_traversal",
    "zip_10000_tiny_files",
    "zip_10001_tiny_images",
    "zip_nested",
    "zip_only_nested",
    "zip_truncated",
    "zip_corrupt_member",
    "zip_hostile_members",
    "text_as_zip",
    "empty_zip_file",
    "zip_without_images",
)
