"""Build the example photos in assets/ from scikit-image's bundled (public-domain/CC0) images.

Each image is centre-cropped to a square and resized (LANCZOS) to 512x512, then saved as a
quality-90 JPEG next to this script. Run from anywhere::

    python assets/build_examples.py

Only images whose scikit-image docstring declares them public domain or CC0 are used; see
assets/README.md for the source and licence of each file.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from skimage import data

SIZE = 512
QUALITY = 90
HERE = Path(__file__).resolve().parent

# name -> (skimage.data loader name, licence as stated in its scikit-image docstring)
SOURCES: dict[str, tuple[str, str]] = {
    "astronaut": ("astronaut", "Public domain (NASA; 'No known copyright restrictions')"),
    "chelsea": ("chelsea", "CC0 (photographer Stefan van der Walt)"),
    "coffee": ("coffee", "CC0 (photographer Rachel Michetti)"),
    "rocket": ("rocket", "Public domain (released by SpaceX)"),
}


def square_512(image: Image.Image, size: int = SIZE) -> Image.Image:
    """Centre-crop to the largest square and resize to ``size`` x ``size`` with LANCZOS."""
    w, h = image.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    box = (left, top, left + s, top + s)
    return image.convert("RGB").resize((size, size), Image.Resampling.LANCZOS, box=box)


def build(out_dir: Path = HERE) -> list[Path]:
    """Write ``<name>.jpg`` for every entry of :data:`SOURCES` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (loader, _licence) in SOURCES.items():
        array = getattr(data, loader)()
        path = out_dir / f"{name}.jpg"
        # no EXIF, no ICC profile: plain sRGB-assumed JPEG; optimize for smaller files
        square_512(Image.fromarray(array)).save(
            path, "JPEG", quality=QUALITY, optimize=True, subsampling="4:2:0"
        )
        written.append(path)
    return written


if __name__ == "__main__":
    for p in build():
        print(f"{p.name}: {p.stat().st_size / 1024:.0f} KiB")
