"""The teaching set: photos whose colours and meanings are crossed on purpose.

Every source photo (what it shows: its *meaning*) is recoloured into every *appearance* family
(a palette and tone), so colour says nothing about meaning and meaning says nothing about
colour. A space that groups by meaning (CLIP, DINOv2) puts a sepia cat near a blue cat; a
space that follows colour, tone and layout (a VAE's latents) puts it near a sepia rocket.
Variants of one photo share a *source* id, so metrics can leave them out of each other's
neighbourhoods (:func:`explorer.analysis.metrics.knn_accuracy_grouped`): otherwise a recoloured copy
finds its own photo by layout alone and any space looks as if it "knew" the meaning.

Only files that ship inside the scikit-image and scikit-learn wheels are used, each under a
free licence (see :data:`SOURCES` and ``assets/README.md``); nothing is downloaded and a file
that is missing is skipped with a warning.

The set is an :class:`~explorer.datasets.ImageSet` whose ``labels`` are the meanings, with all
three labellings in ``labelings`` and the source photos as its ``groups``.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from skimage.exposure import match_histograms

from explorer.datasets.imageset import ImageSet
from explorer.images import io as imaging

log = logging.getLogger(__name__)

MIN_SIZE, MAX_SIZE = 32, 2048
_MAX_SOURCE_PIXELS = 4096 * 4096  # the largest bundled photo is 1411 x 1411


@dataclass(frozen=True)
class Source:
    """One source photo: where it ships, what it shows and under which licence."""

    package: str  # "skimage" (skimage.data.data_dir) or "sklearn" (sklearn/datasets/images)
    file: str
    meaning: str
    shows: str
    licence: str

    @property
    def id(self) -> str:
        return f"{self.package}:{self.file}"


# Every meaning has at least two different photos, and no meaning's photos share one texture
# or tone (no "textures" class): the brick wall sits with the temple, the grass with the
# flower, the blurred clock with the coins and the coffee cup.
SOURCES: tuple[Source, ...] = (
    Source(
        "skimage",
        "astronaut.png",
        "person",
        "astronaut Eileen Collins (NASA portrait)",
        "public domain (NASA)",
    ),
    Source(
        "skimage",
        "camera.png",
        "person",
        "a man with a camera on a tripod",
        "CC0 (Lav Varshney)",
    ),
    Source("skimage", "chelsea.png", "animal", "Chelsea the cat", "CC0 (Stefan van der Walt)"),
    Source(
        "skimage",
        "horse.png",
        "animal",
        "a horse (silhouette drawing)",
        "CC0 (Andreas Preuss, openclipart)",
    ),
    Source(
        "skimage",
        "rocket.jpg",
        "space",
        "Falcon 9 launching DSCOVR",
        "public domain (SpaceX)",
    ),
    Source(
        "skimage",
        "hubble_deep_field.jpg",
        "space",
        "Hubble eXtreme Deep Field galaxies",
        "public domain (NASA)",
    ),
    Source(
        "sklearn",
        "flower.jpg",
        "plant",
        "a dahlia flower",
        "CC BY 2.0 (Flickr user vultilion; see assets/README.md)",
    ),
    Source("skimage", "grass.png", "plant", "grass", "CC0 (linolafett, DeviantArt)"),
    Source(
        "sklearn",
        "china.jpg",
        "building",
        "a Chinese temple (Summer Palace)",
        "CC BY 2.0 (danielbuechele on Flickr)",
    ),
    Source("skimage", "brick.png", "building", "a brick wall", "CC0 (CC0Textures)"),
    Source(
        "skimage",
        "clock_motion.png",
        "object",
        "a wall clock, motion-blurred",
        "public domain (Stefan van der Walt)",
    ),
    Source(
        "skimage",
        "coins.png",
        "object",
        "Greek coins from Pompeii",
        "no known copyright restrictions (Brooklyn Museum)",
    ),
    Source(
        "skimage",
        "coffee.png",
        "object",
        "a cup of coffee on a saucer",
        "CC0 (Rachel Michetti)",
    ),
    Source(
        "skimage",
        "cell.png",
        "biology",
        "a cell floating in saline (phase image)",
        "CC0 (Paul Müller et al.)",
    ),
    Source(
        "skimage",
        "ihc.png",
        "biology",
        "colonic glands, immunohistochemical stain",
        "no known copyright restrictions (CMMI)",
    ),
    Source(
        "skimage",
        "retina.jpg",
        "biology",
        "fundus photograph of a human retina",
        "CC0 (Mikael Häggström, Wikimedia)",
    ),
)


def _identity(t: np.ndarray) -> np.ndarray:
    return t


def _high_contrast(t: np.ndarray) -> np.ndarray:
    """Stretch the 2nd-98th percentile to the full range, then a steep S-curve."""
    lo, hi = np.percentile(t, [2.0, 98.0])
    t = np.clip((t - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    return np.clip(0.5 + 1.6 * (t - 0.5), 0.0, 1.0)


@dataclass(frozen=True)
class Appearance:
    """A colour-grading family: colour stops along the tone axis, a tone curve, and whether the
    photo's own colour variation is dropped first (a grey family must come out grey)."""

    name: str
    stops: tuple[tuple[float, tuple[int, int, int]], ...]  # (tone in [0, 1], sRGB 0-255)
    tone: Callable[[np.ndarray], np.ndarray] = _identity
    desaturate: bool = False

    def ramp(self, t: np.ndarray) -> np.ndarray:
        """Tones in [0, 1] (any shape) -> RGB in [0, 1] (shape + (3,)), piecewise linear."""
        pos = [p for p, _ in self.stops]
        cols = np.array([c for _, c in self.stops], np.float64) / 255.0
        return np.stack([np.interp(t, pos, cols[:, i]) for i in range(3)], axis=-1)


APPEARANCES: tuple[Appearance, ...] = (
    Appearance("sepia", ((0.0, (40, 22, 10)), (0.5, (150, 100, 55)), (1.0, (245, 225, 180)))),
    Appearance("cyan-blue", ((0.0, (5, 15, 60)), (0.5, (20, 110, 200)), (1.0, (170, 240, 255)))),
    Appearance("magenta-pink", ((0.0, (50, 0, 40)), (0.5, (200, 40, 150)), (1.0, (255, 200, 235)))),
    Appearance("green", ((0.0, (5, 35, 10)), (0.5, (60, 150, 40)), (1.0, (215, 250, 160)))),
    Appearance(
        "grey high-contrast",
        ((0.0, (0, 0, 0)), (1.0, (255, 255, 255))),
        _high_contrast,
        desaturate=True,
    ),
    Appearance("orange-red", ((0.0, (40, 0, 0)), (0.5, (220, 80, 0)), (1.0, (255, 240, 120)))),
    Appearance(
        "pastel low-contrast",
        ((0.0, (150, 140, 190)), (0.5, (190, 215, 200)), (1.0, (250, 240, 220))),
    ),
)

DESCRIPTION = """\
Teaching set: colour and meaning are crossed on purpose. {n_sources} freely licensed photos \
that ship with scikit-image and scikit-learn ({n_meanings} meanings: {meanings}; at least two \
different photos each) are each recoloured into all {n_appearances} appearance families \
({appearances}) by histogram-matching the photo to the family's colour ramp at the photo's own \
tones, after a small seeded crop and flip: {n_images} images. So every colour appears with \
every meaning: a space that follows meaning (CLIP, DINOv2) puts a sepia cat near a blue cat, a \
space that follows colour, tone and layout (a VAE's latents) puts it near a sepia rocket. Colour \
by "meaning", "appearance" or "source" (variants of one photo share a source); when scoring \
meaning, leave same-source neighbours out, or a recoloured copy finds its own photo by layout \
alone."""


def _data_dir(package: str) -> Path | None:
    """Where a package's bundled images live, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "data" if package == "skimage" else root / "datasets" / "images"


@lru_cache(maxsize=len(SOURCES))
def _decoded(package: str, file: str) -> Image.Image | None:
    """The full-size RGB photo, decoded once per process; None (with a warning) if missing."""
    folder = _data_dir(package)
    path = folder / file if folder is not None else None
    if path is None or not path.is_file():
        log.warning("Teaching set: %s:%s is not installed; skipped.", package, file)
        return None
    try:
        return imaging.load_image(path, max_pixels=_MAX_SOURCE_PIXELS)
    except Exception as exc:  # a damaged file must not take the whole set down
        log.warning("Teaching set: %s:%s could not be read (%s); skipped.", package, file, exc)
        return None


@lru_cache(maxsize=4 * len(SOURCES))
def _working_copy(package: str, file: str, size: int) -> Image.Image | None:
    """The photo reduced once to twice ``size`` on the longer side (never enlarged): crops are
    resampled from this instead of from the full-size photo, which is several times faster."""
    photo = _decoded(package, file)
    if photo is None:
        return None
    scale = min(1.0, 2 * size / max(photo.size))
    if scale >= 1.0:
        return photo
    w, h = max(1, round(photo.width * scale)), max(1, round(photo.height * scale))
    return photo.resize((w, h), Image.Resampling.LANCZOS)


def _crop_resize(im: Image.Image, size: int, rng: np.random.Generator) -> Image.Image:
    """A random crop of 75-100 % of the area (same aspect), resized to longer side ``size``,
    mirrored half of the time."""
    w, h = im.size
    scale = size / max(w, h)
    out_w, out_h = max(1, round(w * scale)), max(1, round(h * scale))
    side = float(np.sqrt(rng.uniform(0.75, 1.0)))
    cw, ch = w * side, h * side
    x0, y0 = float(rng.uniform(0.0, w - cw)), float(rng.uniform(0.0, h - ch))
    out = im.resize((out_w, out_h), Image.Resampling.LANCZOS, box=(x0, y0, x0 + cw, y0 + ch))
    return ImageOps.mirror(out) if rng.random() < 0.5 else out


def recolour(image: Image.Image, appearance: Appearance) -> Image.Image:
    """Grade an RGB image into an appearance family, keeping its tones.

    The reference is the family's colour ramp evaluated at the image's own luminance (after the
    family's tone curve), so dark photos stay dark and bright ones bright; each channel of the
    image is then histogram-matched to it (``skimage.exposure.match_histograms``), which keeps
    some of the photo's own colour variation -- unless the family desaturates, in which case
    the luminance is matched in all three channels. Works on 8-bit values throughout.
    """
    a = np.asarray(image.convert("RGB"))
    luminance = a @ np.array([0.299, 0.587, 0.114]) / 255.0
    if appearance.desaturate:
        grey = np.clip(np.rint(luminance * 255.0), 0, 255).astype(np.uint8)
        a = np.repeat(grey[..., None], 3, axis=-1)
    reference = np.rint(appearance.ramp(appearance.tone(luminance)) * 255.0).astype(np.uint8)
    out = match_histograms(a, reference, channel_axis=-1)
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), mode="RGB")


def _check_int(name: str, value: object, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        bounds = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be {bounds}, got {value}")
    return int(value)


def describe() -> str:
    """The paragraph the UI shows about the set: how it was built and why (no image is built)."""
    meanings = list(dict.fromkeys(src.meaning for src in SOURCES))
    return DESCRIPTION.format(
        n_sources=len(SOURCES),
        n_meanings=len(meanings),
        meanings=", ".join(meanings),
        n_appearances=len(APPEARANCES),
        appearances=", ".join(a.name for a in APPEARANCES),
        n_images=len(SOURCES) * len(APPEARANCES),
    )


def source_photo(source: Source, size: int = 256) -> Image.Image | None:
    """One source photo itself (not recoloured), reduced to at most ``2 * size`` on the longer
    side; None (with a warning) when its file is not installed."""
    return _working_copy(source.package, source.file, _check_int("size", size, MIN_SIZE, MAX_SIZE))


def teaching_set(size: int = 128, seed: int = 0) -> ImageSet:
    """Every source photo in :data:`SOURCES` x every family in :data:`APPEARANCES`.

    Each image is a seeded crop (75-100 % of the area) and mirror of the photo, resized to
    ``size`` pixels on the longer side and recoloured with :func:`recolour`. Labelings:
    ``"meaning"`` (what the photo shows), ``"appearance"`` (the family) and ``"source"`` (the
    photo id, shared by its variants). The crop for (photo, family) depends only on
    ``(seed, photo, family)``, so the same arguments always give the same pixels. Decoded
    photos are cached per process; missing files are skipped with a warning.

    Raises:
        ValueError: ``size`` not an int in [32, 2048], or ``seed`` not an int >= 0.
    """
    size = _check_int("size", size, MIN_SIZE, MAX_SIZE)
    seed = _check_int("seed", seed, 0)
    images: list[Image.Image] = []
    paths: list[str] = []
    labelings: dict[str, list[str]] = {"meaning": [], "appearance": [], "source": []}
    present = []
    for s, src in enumerate(SOURCES):
        photo = _working_copy(src.package, src.file, size)
        if photo is None:
            continue
        present.append(src)
        for a, appearance in enumerate(APPEARANCES):
            rng = np.random.default_rng([seed, s, a])
            images.append(recolour(_crop_resize(photo, size, rng), appearance))
            paths.append(f"{src.id} (palette: {appearance.name})")
            labelings["meaning"].append(src.meaning)
            labelings["appearance"].append(appearance.name)
            labelings["source"].append(src.id)
    meanings = list(dict.fromkeys(src.meaning for src in present))
    description = DESCRIPTION.format(
        n_sources=len(present),
        n_meanings=len(meanings),
        meanings=", ".join(meanings),
        n_appearances=len(APPEARANCES),
        appearances=", ".join(a.name for a in APPEARANCES),
        n_images=len(images),
    )
    return ImageSet(
        name="teaching",
        images=images,
        labels=list(labelings["meaning"]),
        paths=paths,
        description=description,
        labelings=labelings,
        groups=list(labelings["source"]),
    )


_MATCH_SIDE = 32
_MATCH_TOLERANCE = 0.04  # mean absolute grey difference (0..1) that still counts as "that photo"
_MATCH_REFERENCE_SIZE = 256


def _match_thumb(im: Image.Image) -> np.ndarray:
    small = ImageOps.fit(im.convert("L"), (_MATCH_SIDE, _MATCH_SIDE), Image.Resampling.BILINEAR)
    return np.asarray(small, np.float64) / 255.0


@lru_cache(maxsize=1)
def _source_thumbs() -> dict[str, np.ndarray]:
    out = {}
    for src in SOURCES:
        photo = source_photo(src, _MATCH_REFERENCE_SIZE)
        if photo is not None:
            out[src.id] = _match_thumb(photo)
    return out


def match_source(image: Image.Image) -> Source | None:
    """Which of :data:`SOURCES` ``image`` is (the same picture, whatever its file format or
    size: a 32×32 grey centre square within 4 % on average), or None."""
    thumb = _match_thumb(image)
    best, best_err = None, _MATCH_TOLERANCE
    by_id = {s.id: s for s in SOURCES}
    for sid, ref in _source_thumbs().items():
        err = float(np.abs(thumb - ref).mean())
        if err < best_err:
            best, best_err = by_id[sid], err
    return best


__all__ = [
    "APPEARANCES",
    "SOURCES",
    "Appearance",
    "Source",
    "describe",
    "match_source",
    "recolour",
    "source_photo",
    "teaching_set",
]
