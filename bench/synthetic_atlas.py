"""A synthetic atlas of any size, without models or image files: clustered points in three
spaces, labels, and small generated thumbnails, saved as a folder the app reopens ("A saved
atlas folder"). For the browser benchmark (bench.browser_scale) and its test, and
bench.atlas_million (past 50,000 points the points of a class share a few thumbnails, so that a
million points write 160 thumbnail files, not a million).

    python -m bench.synthetic_atlas 50000 /tmp/atlas-50k   # writes the folder, prints its path
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from explorer import atlas

# In a page showing such an atlas: where (page pixels) a drawn point of panel p lies, from the
# panel's own scales (explorer/static/atlas.js keeps them on the panel as __atlas), and its index;
# the point nearest the middle of the panel, so that nothing (the legend, the tools) covers it. For
# bench/browser_scale.py and tests/test_browser.py.
LOCATE = """
([p]) => {
  const div = document.querySelectorAll('.atlas-panel')[p], q = div.__atlas;
  const box = q.box.getBoundingClientRect(), cx = box.width / 2, cy = box.height / 2;
  let best = -1, bd = Infinity;
  for (let k = 0; k < q.xs.length; k++) {
    const d = (q.xScale(q.xs[k]) - cx) ** 2 + (q.yScale(q.ys[k]) - cy) ** 2;
    if (d < bd) { bd = d; best = k; }
  }
  return { idx: q.ids ? q.ids[best] : best, px: box.left + q.xScale(q.xs[best]),
           py: box.top + q.yScale(q.ys[best]) };
}
"""

SPACES = {"vae": 1.6, "clip": 0.45, "dino": 0.35}
"""Space key -> spread of its clusters (the VAE groups badly, CLIP and DINOv2 well)."""


DISTINCT_UP_TO = 50_000
"""Up to this many points every point has a thumbnail of its own; past it the points of a class
share :data:`VARIANTS` thumbnails (a saved atlas then writes one file for each, not one a point)."""
VARIANTS = 8


def synthetic_atlas(
    n: int,
    classes: int = 20,
    dim: int = 32,
    side: int = 24,
    seed: int = 0,
    distinct: bool | None = None,
):
    """n points in ``classes`` classes -> an :class:`explorer.atlas.Atlas` with (n, dim)
    clustered embeddings per space of :data:`SPACES`, a 'pca' map per space (the first two
    coordinates: no projection is run) and a side×side thumbnail per point (its class's colour
    with noise): one of its own for every point when ``distinct`` (the default up to
    :data:`DISTINCT_UP_TO` points), else one of its class's :data:`VARIANTS`."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, classes, n)
    codes[:classes] = np.arange(classes)  # every class present
    labels = [f"class {c:02d}" for c in codes]
    embs, coords = {}, {}
    for key, spread in SPACES.items():
        centres = rng.normal(0, 1, (classes, dim)).astype(np.float32)
        x = centres[codes] + rng.normal(0, spread, (n, dim)).astype(np.float32)
        embs[key] = x
        coords[key] = x[:, :2].copy()
    base = rng.integers(40, 215, (classes, 3))
    if distinct if distinct is not None else n <= DISTINCT_UP_TO:
        pixels = base[codes][:, None, None, :] + rng.integers(-40, 41, (n, side, side, 3))
        pixels = np.clip(pixels, 0, 255).astype(np.uint8)
        images = [Image.fromarray(p) for p in pixels]
    else:  # class c's variant v is image c·VARIANTS + v; point i shows variant i mod VARIANTS
        shared = np.repeat(base, VARIANTS, axis=0)[:, None, None, :]
        pixels = shared + rng.integers(-40, 41, (classes * VARIANTS, side, side, 3))
        kinds = [Image.fromarray(p) for p in np.clip(pixels, 0, 255).astype(np.uint8)]
        which = codes * VARIANTS + np.arange(n) % VARIANTS
        images = [kinds[j] for j in which.tolist()]
    return atlas.from_arrays(embs, labels, images, coords, "pca", f"synthetic {n:,}")


def write(n: int, out: Path) -> Path:
    """A synthetic atlas of n points saved to ``out`` by the app's own ``atlas.save`` (the
    files the app reopens: atlas.json, points.csv, embeddings.npz, thumbs/, the metrics, overlap
    and neighbour lists computed at save time, manifest.json); skipped when ``out`` already
    holds one of that size with its manifest."""
    out = Path(out)
    meta_path = out / "atlas.json"
    if (
        meta_path.exists()
        and (out / "manifest.json").exists()
        and json.loads(meta_path.read_text()).get("n") == n
    ):
        return out
    atlas.save(synthetic_atlas(n), out, "pca")
    return out


if __name__ == "__main__":
    print(write(int(sys.argv[1]), Path(sys.argv[2])))
