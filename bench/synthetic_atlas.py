"""A synthetic atlas of any size, without models or image files: clustered points in three
spaces, labels, and small generated thumbnails, saved as a folder the app reopens ("A saved
atlas folder"). For the browser benchmark (bench.browser_scale) and its test.

    python -m bench.synthetic_atlas 50000 /tmp/atlas-50k   # writes the folder, prints its path
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from explorer import atlas

# In a page showing such an atlas: where (page pixels) a drawn point of panel p lies, from
# plotly's own axes (WebGL panels have no SVG point to find), and its index; the point nearest
# the middle of the panel, so that nothing (the legend, the mode bar) covers it. For
# bench/browser_scale.py and tests/test_browser.py.
LOCATE = """
([p]) => {
  const div = document.querySelectorAll('.atlas-panel')[p];
  const fl = div._fullLayout, box = div.getBoundingClientRect();
  const xa = fl.xaxis, ya = fl.yaxis;
  const cx = (xa.range[0] + xa.range[1]) / 2, cy = (ya.range[0] + ya.range[1]) / 2;
  let best = null;
  div.data.forEach((t) => t.x.forEach((x, k) => {
    const d = (x - cx) ** 2 + (t.y[k] - cy) ** 2;
    if (!best || d < best.d) best = { d, x, y: t.y[k], idx: t.customdata[k] };
  }));
  return { idx: best.idx, px: box.left + fl._size.l + xa.d2p(best.x),
           py: box.top + fl._size.t + ya.d2p(best.y) };
}
"""

SPACES = {"vae": 1.6, "clip": 0.45, "dino": 0.35}
"""Space key -> spread of its clusters (the VAE groups badly, CLIP and DINOv2 well)."""


def synthetic_atlas(n: int, classes: int = 20, dim: int = 32, side: int = 24, seed: int = 0):
    """n points in ``classes`` classes -> an :class:`explorer.atlas.Atlas` with (n, dim)
    clustered embeddings per space of :data:`SPACES`, a 'pca' map per space (the first two
    coordinates: no projection is run) and one side×side thumbnail per point (its class's
    colour with per-point noise, so every image is distinct)."""
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
    pixels = base[codes][:, None, None, :] + rng.integers(-40, 41, (n, side, side, 3))
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    images = [Image.fromarray(p) for p in pixels]
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
