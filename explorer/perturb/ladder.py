"""The perturbation lab's analysis core: what moves each embedding space, and by how much.

One photo is perturbed along ladders of growing strength (hue rotation, darkening, blur, JPEG,
a few pixels of shift, a small rotation, a mirror image, ...), every rung is embedded in every
space, and each rung's distance from the unperturbed photo is measured *in units of an
unrelated photo*: 1.0 means "as far away as a different picture". A VAE's latents move a lot
for a mirror image or a 10° rotation (the layout changed) and hardly at all for blur or JPEG
(measured with TAEF2: see ``tests/test_perturb.py``); a space that follows meaning (CLIP,
DINOv2) should barely move for a mirror image and should move for another photo of the same
thing less than for an unrelated one (the ``same_meaning`` ladder).

Pure: PIL images and numpy arrays in, lists, dataclasses and a pandas DataFrame out. Sizes are
bounded for a public app: images are prepared to a square side of at most :data:`MAX_SIZE`
pixels, a ladder has at most :data:`MAX_STRENGTHS` rungs, and there are at most
:data:`MAX_PERTURBATIONS` perturbations.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from explorer.core.files import atomic_write
from explorer.core.safe_text import csv_bytes
from explorer.images import io as imaging

__all__ = [
    "COLUMNS",
    "CSV_NAME",
    "MAX_PERTURBATIONS",
    "MAX_SIZE",
    "MAX_STRENGTHS",
    "MIN_REFERENCES",
    "NAMES",
    "PERTURBATIONS",
    "Perturbation",
    "all_ladders",
    "cosine_distances",
    "distances",
    "ladder",
    "run",
    "write_csv",
]

COLUMNS: tuple[str, ...] = ("perturbation", "strength", "space", "distance")
CSV_NAME = "perturb.csv"
REFERENCE_SIZE = 256  # pixel strengths (blur radius, shift) are given for a 256-px image
MIN_SIZE, MAX_SIZE = 64, 512
MAX_STRENGTHS = 8  # rungs per ladder, strength 0 included
MAX_PERTURBATIONS = 12
MIN_REFERENCES = 3
SAME_MEANING = "same_meaning"

Ladder = list[tuple[float, Image.Image]]
Embedder = Callable[[list[Image.Image]], np.ndarray]
ImageSource = str | os.PathLike[str] | Image.Image


@dataclass(frozen=True)
class Perturbation:
    """One row of :data:`PERTURBATIONS`: ``strengths`` start at 0 (the unperturbed image) and
    grow with how much the image is perturbed, in ``unit``."""

    name: str
    unit: str
    strengths: tuple[float, ...]
    description: str


_P = Perturbation
PERTURBATIONS: tuple[Perturbation, ...] = (
    _P("hue", "degrees", (0, 30, 60, 90, 180), "hue turned round the colour wheel (HSV)"),
    _P("brightness", "1 − factor", (0, 0.15, 0.3, 0.45, 0.6), "darker: pixels × (1 − strength)"),
    _P("greyscale", "fraction", (0, 0.25, 0.5, 0.75, 1.0), "colour faded towards grey"),
    _P("blur", "px at 256 px", (0, 0.5, 1, 2, 4, 8), "Gaussian blur of that radius"),
    _P("noise", "sigma in [0, 1]", (0, 0.02, 0.05, 0.1, 0.2), "one seeded noise pattern, scaled"),
    _P("jpeg", "100 − quality", (0, 10, 30, 50, 70, 85, 95), "JPEG at quality 90 … 5"),
    _P("shift", "px at 256 px", (0, 2, 4, 8, 16), "moved right, left edge reflect-filled"),
    _P("crop", "side cut away", (0, 0.1, 0.2, 0.3, 0.4, 0.5), "centre crop, resized back"),
    _P("flip", "0 or 1", (0, 1), "mirrored left to right"),
    _P("rotate", "degrees", (0, 5, 10, 20, 45), "turned anticlockwise, corners reflect-filled"),
    _P(SAME_MEANING, "other photo", (0,), "other photos of the same meaning (from the caller)"),
)
"""Every perturbation, in display order. Pixel strengths (blur radius, shift) are for a 256-px
image and scale with the side; strength 0 is always the unperturbed image."""
NAMES: tuple[str, ...] = tuple(p.name for p in PERTURBATIONS)
_BY_NAME = {p.name: p for p in PERTURBATIONS}


# --------------------------------------------------------------------------- the ladders


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise ValueError(f"size must be an int, got {size!r}")
    s = int(size)
    if s % 8 or not MIN_SIZE <= s <= MAX_SIZE:
        raise ValueError(f"size must be a multiple of 8 in [{MIN_SIZE}, {MAX_SIZE}], got {s}")
    return s


def _lookup(name: str) -> Perturbation:
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown perturbation {name!r}; choose one of {', '.join(NAMES)}"
        ) from None


def _from_array(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")


def _hue(base: Image.Image, degrees: float) -> Image.Image:
    h, s, v = base.convert("HSV").split()
    step = round(degrees / 360 * 256) % 256
    h = h.point(lambda x: (x + step) % 256)
    return Image.merge("HSV", (h, s, v)).convert("RGB")


def _jpeg(base: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    base.save(buf, "JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return im.convert("RGB")


def _shift(base: Image.Image, px: float) -> Image.Image:
    """Content moved ``px`` pixels right (sub-pixel by bicubic); the gap is reflect-filled."""
    pad = math.ceil(px) + 2
    arr = np.pad(np.asarray(base), ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    padded = Image.fromarray(arr, "RGB")
    return padded.transform(
        base.size,
        Image.Transform.AFFINE,
        (1, 0, pad - px, 0, 1, pad),
        resample=Image.Resampling.BICUBIC,
    )


def _rotate(base: Image.Image, degrees: float) -> Image.Image:
    """Rotated about the centre; the corners come from a reflect-padded border, never black."""
    w, h = base.size
    t = math.radians(degrees)
    pad = math.ceil(max(w, h) * (abs(math.cos(t)) + abs(math.sin(t)) - 1) / 2) + 2
    arr = np.pad(np.asarray(base), ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    turned = Image.fromarray(arr, "RGB").rotate(degrees, resample=Image.Resampling.BICUBIC)
    return turned.crop((pad, pad, pad + w, pad + h))


def _crop(source: Image.Image, cut: float, size: int) -> Image.Image:
    """The centre ``1 - cut`` of the source's centre square, resized to ``size`` in one pass."""
    w, h = source.size
    side = min(w, h) * (1 - cut)
    left, top = (w - side) / 2, (h - side) / 2
    box = (round(left), round(top), round(left + side), round(top + side))
    return imaging.prepare(source.crop(box), size, "square")


def _noise(base: Image.Image, sigma: float, seed: int) -> Image.Image:
    z = np.random.default_rng(seed).standard_normal((base.height, base.width, 3))
    return _from_array(np.asarray(base, np.float64) + 255.0 * sigma * z)


def _apply(
    name: str, strength: float, base: Image.Image, source: Image.Image, seed: int
) -> Image.Image:
    size = base.width
    scale = size / REFERENCE_SIZE
    if name == "hue":
        return _hue(base, strength)
    if name == "brightness":
        return ImageEnhance.Brightness(base).enhance(1 - strength)
    if name == "greyscale":
        return ImageEnhance.Color(base).enhance(1 - strength)
    if name == "blur":
        return base.filter(ImageFilter.GaussianBlur(strength * scale))
    if name == "noise":
        return _noise(base, strength, seed)
    if name == "jpeg":
        return _jpeg(base, round(100 - strength))
    if name == "shift":
        return _shift(base, strength * scale)
    if name == "crop":
        return _crop(source, strength, size)
    if name == "flip":
        return ImageOps.mirror(base)
    if name == "rotate":
        return _rotate(base, strength)
    raise ValueError(f"unknown perturbation {name!r}")  # pragma: no cover - table and code agree


def _ladder(
    name: str,
    base: Image.Image,
    source: Image.Image,
    seed: int,
    same_meaning: Sequence[Image.Image] | None,
) -> Ladder:
    rungs: Ladder = [(0.0, base.copy())]
    if name == SAME_MEANING:
        others = list(same_meaning or [])
        if not others:
            raise ValueError("the same_meaning ladder needs same_meaning images from the caller")
        if len(others) > MAX_STRENGTHS - 1:
            raise ValueError(
                f"at most {MAX_STRENGTHS - 1} same_meaning images, got {len(others)}; "
                "pass fewer (e.g. the first ones)"
            )
        size = base.width
        return rungs + [(float(i), imaging.prepare(o, size)) for i, o in enumerate(others, 1)]
    strengths = _lookup(name).strengths
    return rungs + [(float(s), _apply(name, s, base, source, seed)) for s in strengths[1:]]


def ladder(
    image: Image.Image,
    name: str,
    size: int = 256,
    seed: int = 0,
    same_meaning: Sequence[Image.Image] | None = None,
) -> Ladder:
    """Any PIL image -> [(strength, size×size RGB image)], strength 0 first and increasing.

    The image is first prepared as the app prepares images (centre square, LANCZOS resize to
    ``size``, a multiple of 8 in [64, 512]); strength 0 is that prepared image, unperturbed.
    Pixel strengths (blur radius, shift) are in pixels of a 256-px image and scale with
    ``size``. ``"same_meaning"`` needs ``same_meaning`` (1 to 7 other photos with the same
    meaning label, strengths 1..n); other perturbations ignore it. Deterministic: the same
    arguments give the same pixels (``seed`` drives the noise).
    """
    size = _check_size(size)
    _lookup(name)
    base = imaging.prepare(image, size, "square")
    return _ladder(name, base, image, int(seed), same_meaning)


def all_ladders(
    image: Image.Image,
    size: int = 256,
    seed: int = 0,
    same_meaning: Sequence[Image.Image] | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, Ladder]:
    """Any PIL image -> {name: ladder} for ``names`` (default: every perturbation, in table order).

    ``"same_meaning"`` is included by default only when ``same_meaning`` images are given.
    See :func:`ladder` for sizes, strengths and determinism.
    """
    size = _check_size(size)
    if names is None:
        names = [n for n in NAMES if n != SAME_MEANING or same_meaning]
    names = list(dict.fromkeys(names))
    for n in names:
        _lookup(n)
    base = imaging.prepare(image, size, "square")
    return {n: _ladder(n, base, image, int(seed), same_meaning) for n in names}


# --------------------------------------------------------------------------- distances


def cosine_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, D), (M, D) -> (N, M) cosine distances 1 − cos in [0, 2] (a zero row is orthogonal
    to everything, so at distance 1)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    na = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-300)
    nb = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-300)
    return np.clip(1.0 - na @ nb.T, 0.0, 2.0)


def _image_key(im: Image.Image) -> str:
    h = hashlib.sha256(f"{im.mode}|{im.size}|".encode())
    h.update(im.tobytes())
    return h.hexdigest()


def _embed(fn: Embedder, images: list[Image.Image], space: str, what: str) -> np.ndarray:
    out = np.asarray(fn(images), dtype=np.float64)
    if out.ndim != 2 or out.shape[0] != len(images) or out.shape[1] == 0:
        raise ValueError(
            f"space {space!r} returned shape {out.shape} for {len(images)} {what}; "
            "an embedder must return (N, D) rows, one per image"
        )
    if not np.isfinite(out).all():
        raise ValueError(f"space {space!r} returned non-finite values for the {what}")
    return out


def distances(
    embed: Mapping[str, Embedder],
    ladders: Mapping[str, Sequence[tuple[float, Image.Image]]],
    reference_images: Sequence[Image.Image],
) -> pd.DataFrame:
    """Ladders -> DataFrame ``perturbation, strength, space, distance`` (distance >= 0, 1.0 =
    as far as an unrelated photo), one row per rung and space.

    ``embed``: ``{space: f}`` with ``f(list of PIL images) -> (N, D)`` rows. In every space the
    distance is the cosine distance 1 − cos between a rung's row and its ladder's strength-0
    row, divided by the median cosine distance between pairs of ``reference_images`` (at least
    3 different, unrelated photos, prepared like the ladders), so spaces compare: 1.0 means "as
    far as an unrelated photo". Strength 0 is exactly 0. Cosine ignores scale, so a space whose
    rows just scale with brightness (raw pixels) does not see darkening at all. Each space's
    ``f`` is called twice: once for every distinct ladder image, once for the references.
    """
    refs = list(reference_images)
    if len(refs) < MIN_REFERENCES:
        raise ValueError(
            f"need at least {MIN_REFERENCES} reference images (different photos) to measure "
            f"the typical distance between unrelated photos, got {len(refs)}"
        )
    if not embed:
        raise ValueError("no embedding spaces given")
    if len(ladders) > MAX_PERTURBATIONS:
        raise ValueError(f"at most {MAX_PERTURBATIONS} perturbations, got {len(ladders)}")
    keys: dict[str, int] = {}
    unique: list[Image.Image] = []
    index: dict[str, list[int]] = {}
    for name, rungs in ladders.items():
        if not rungs or float(rungs[0][0]) != 0.0:
            raise ValueError(f"ladder {name!r} must start with its strength-0 (unperturbed) image")
        if len(rungs) > MAX_STRENGTHS:
            raise ValueError(f"ladder {name!r} has {len(rungs)} rungs; at most {MAX_STRENGTHS}")
        index[name] = []
        for _, im in rungs:
            key = _image_key(im)
            if key not in keys:
                keys[key] = len(unique)
                unique.append(im)
            index[name].append(keys[key])

    rows: list[tuple[str, float, str, float]] = []
    for space, fn in embed.items():
        x = _embed(fn, unique, space, "ladder images")
        r = _embed(fn, refs, space, "reference images")
        pairs = cosine_distances(r, r)[np.triu_indices(len(refs), k=1)]
        typical = float(np.median(pairs))
        if not typical > 0:
            raise ValueError(
                f"the reference images are not told apart in space {space!r} (median distance "
                f"{typical:g}); use different photos"
            )
        for name, rungs in ladders.items():
            ids = index[name]
            d = cosine_distances(x[ids[:1]], x[ids])[0] / typical
            d[0] = 0.0
            rows.extend(
                (name, float(s), space, float(v)) for (s, _), v in zip(rungs, d, strict=True)
            )
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    return df.astype({"strength": np.float64, "distance": np.float64})


# --------------------------------------------------------------------------- files


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """DataFrame with :data:`COLUMNS` -> a CSV file at ``path`` (normally ``.../perturb.csv``),
    written atomically; returns the path."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"the DataFrame lacks columns {missing}; expected {list(COLUMNS)}")
    rows = df[list(COLUMNS)].itertuples(index=False, name=None)
    return atomic_write(path, csv_bytes(COLUMNS, rows, float_format=".6g"))  # no formulas


def run(
    image_path: ImageSource,
    out_dir: str | os.PathLike[str],
    embed: Mapping[str, Embedder],
    references: Sequence[ImageSource],
    same_meaning: Sequence[ImageSource] | None = None,
    size: int = 256,
    seed: int = 0,
) -> Path:
    """Photo (path or PIL image) -> ``out_dir/perturb.csv`` of :func:`distances` over
    :func:`all_ladders`; returns the CSV's path.

    ``references`` (at least 3 unrelated photos) and ``same_meaning`` are paths or PIL images,
    read with :func:`explorer.images.io.load_image`; references are prepared to ``size`` like the
    ladders.
    """
    size = _check_size(size)
    image = imaging.load_image(image_path)
    refs = [imaging.prepare(imaging.load_image(r), size, "square") for r in references]
    others = [imaging.load_image(o) for o in same_meaning] if same_meaning else None
    ladders = all_ladders(image, size, seed, same_meaning=others)
    return write_csv(distances(embed, ladders, refs), Path(out_dir) / CSV_NAME)
