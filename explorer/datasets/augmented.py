"""The augmentation set: each class is one photo and its augmentations (offline, deterministic).

Kept as a counter-example for the lesson on evaluation: near-duplicates share layout, so every
space -- the VAE's too -- "groups by meaning" here. The set the app opens is the teaching set
(``teaching.py``), where colour and meaning are crossed and variants are grouped.

Built from scikit-image's bundled public-domain / CC0 photos with labelled augmentations (see
:func:`augmented_set` for the construction and the licences). The decoded photos are kept per
process in a :class:`~explorer.core.lru.LRU` (:data:`SAMPLES`).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps
from skimage.exposure import match_histograms

from explorer.core.lru import LRU
from explorer.datasets.imageset import MAX_SIDE, ImageSet, downsize
from explorer.images import io as imaging

__all__ = ["AUGMENTED_DESCRIPTION", "SAMPLES", "augmented_set"]

log = logging.getLogger(__name__)

# (label, file in skimage.data.data_dir, licence as stated in skimage.data's docstrings)
_AUGMENTED_SOURCES: tuple[tuple[str, str, str], ...] = (
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

AUGMENTED_DESCRIPTION = """\
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


SAMPLES: LRU[object] = LRU(5)
"""scikit-image's sample data, decoded once per process: ``("photos", size)`` -> the photos at
that size (a few sizes kept), ``"lfw"`` -> the face crops."""


def _augmented_sources(size: int) -> tuple[tuple[str, str, Image.Image], ...]:
    """(label, file, RGB image with longer side ``size``) for every bundled photo present."""

    def build() -> tuple[tuple[str, str, Image.Image], ...]:
        from skimage import data as skdata

        out = []
        for label, fname, _licence in _AUGMENTED_SOURCES:
            path = Path(skdata.data_dir) / fname
            if not path.is_file():  # never download: use only what ships with scikit-image
                log.warning("Bundled set: %s is missing from scikit-image's data; skipped.", fname)
                continue
            im = imaging.load_image(path)
            out.append((label, fname, downsize(im, size)))
        return tuple(out)

    return SAMPLES.get_or_build(("photos", size), build)  # type: ignore[return-value]


def _lfw_subset() -> np.ndarray | None:
    """(N,25,25) float greyscale crops from ``lfw_subset.npy`` (faces first), or None if absent."""

    def build() -> np.ndarray | None:
        from skimage import data as skdata

        path = Path(skdata.data_dir) / "lfw_subset.npy"
        if not path.is_file():
            log.warning("Bundled set: lfw_subset.npy is missing from scikit-image's data; skipped.")
            return None
        arr = np.load(path, allow_pickle=False)
        return arr if arr.ndim == 3 and arr.shape[0] >= 2 else None

    return SAMPLES.get_or_build("lfw", build)  # type: ignore[return-value]


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


def _recolour(im: Image.Image, ref: Image.Image) -> Image.Image:
    """``im``'s content with ``ref``'s colour distribution: scikit-image's per-channel histogram
    matching, as 8-bit RGB (deterministic: no randomness in the matching)."""
    out = match_histograms(np.asarray(im), np.asarray(ref), channel_axis=-1)
    if out.dtype != np.uint8:  # scikit-image versions that return floats
        out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
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


def augmented_set(n_aug: int = 4, seed: int = 0, size: int = 256) -> ImageSet:
    """The augmentation set: opens offline, labelled, deterministic for a ``seed``.

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
    sources = _augmented_sources(int(size))
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
            add(_recolour(im, dim), obj, f"skimage:{fname} (palette of {dname})")

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
        name="augmented",
        images=images,
        labels=labels,
        paths=paths,
        skipped=[],
        description=AUGMENTED_DESCRIPTION,
    )
