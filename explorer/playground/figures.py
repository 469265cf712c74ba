"""The playground's figures as arrays, and ``write_report``.

Figure data (float arrays in [0,1], for the app to plot): ``latents``, ``decoded_grid``,
``interpolate``, and, re-exported from ``explorer.playground.digits`` (the measurements use them),
``prior_samples`` and ``codebook_usage``. Rendered figures (uint8 RGB arrays, drawn with PIL
only, no matplotlib): ``scatter_image``, ``tile_images``, ``bar_chart``, ``gray_image``.

``write_report`` trains the three models of ``explorer.playground.digits``, writes
``autoencoders.csv`` (the four measurements per model), ``autoencoders_extras.json`` (context)
and one PNG per figure and model.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from explorer.core.files import atomic_write
from explorer.core.safe_text import csv_bytes
from explorer.playground import digits as pg
from explorer.playground.cache import ModelCache
from explorer.playground.digits import codebook_usage, prior_samples

__all__ = [
    "bar_chart",
    "codebook_usage",
    "decoded_grid",
    "gray_image",
    "grid_tiles",
    "interpolate",
    "latents",
    "prior_samples",
    "scatter_image",
    "tile_images",
    "write_report",
]

# matplotlib's tab10: ten colours that stay apart on white
TAB10 = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)  # fmt: skip
CSV_COLUMNS = ("model", "recon_mse", "prior_kl", "sample_confidence", "latent_knn5")
BG = (255, 255, 255)
INK = (40, 40, 40)
FAINT = (215, 215, 215)


def latents(trained: pg.Trained) -> tuple[np.ndarray, np.ndarray]:
    """Trained -> (N,2) float32 latents of all digits (as ``encode``), (N,) int64 labels 0..9."""
    return pg.encode(trained), pg.digits()[1].copy()


def decoded_grid(
    trained: pg.Trained, n: int = 15, extent: float = 3.0, quantised: bool = True
) -> np.ndarray:
    """n >= 1, extent > 0 -> (n*8, n*8) float32 image in [0,1]: the decoder's map of the latent
    square [-extent, extent]^2 (x to the right, y up). The VQ-VAE's grid points go through the
    quantiser first unless ``quantised=False`` (its decoder has only seen codebook vectors)."""
    ticks = np.linspace(-extent, extent, n, dtype=np.float32)
    gx, gy = np.meshgrid(ticks, ticks[::-1])  # row 0 is the top: the largest z2
    z = np.stack([gx.ravel(), gy.ravel()], axis=1)
    if trained.cfg.model == "vq" and quantised:
        z = pg.quantise(trained, z)[0]
    tiles = pg.decode(trained, z).reshape(n, n, 8, 8)
    return tiles.transpose(0, 2, 1, 3).reshape(n * 8, n * 8)


def interpolate(trained: pg.Trained, i: int, j: int, steps: int = 10) -> np.ndarray:
    """dataset indices i, j, steps >= 2 -> (steps,8,8) float32 in [0,1]: decoded straight line
    from digit i's latent to digit j's (VQ: the continuous latent, re-quantised each step)."""
    x = pg.digits()[0]
    z = pg.encode(trained, x[[i, j]])
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    path = (1 - t) * z[0] + t * z[1]
    if trained.cfg.model == "vq":
        path = pg.quantise(trained, path)[0]
    return pg.decode(trained, path)


def grid_tiles(grid: np.ndarray, n: int) -> np.ndarray:
    """(n*8, n*8) decoded grid -> (n*n, 8, 8) tiles, row by row (for ``tile_images``)."""
    return np.asarray(grid).reshape(n, 8, n, 8).transpose(0, 2, 1, 3).reshape(n * n, 8, 8)


def _nice_ticks(lo: float, hi: float, target: int = 5) -> np.ndarray:
    raw = (hi - lo) / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    return np.arange(math.ceil(lo / step), math.floor(hi / step) + 1) * step


def scatter_image(
    z: np.ndarray,
    labels: np.ndarray,
    size: int = 520,
    title: str = "",
    marks: np.ndarray | None = None,
) -> np.ndarray:
    """(N,2) points, (N,) labels 0..9 -> (size, size+90, 3) uint8 RGB scatter plot: one small
    dot per point coloured by label, axes with ticks, a legend; ``marks`` (M,2) are drawn as
    black crosses (e.g. a codebook)."""
    z = np.asarray(z, dtype=np.float64)
    pts = z if marks is None else np.vstack([z, np.asarray(marks, dtype=np.float64)])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = 0.05 * np.maximum(hi - lo, 1e-6)
    lo, hi = lo - pad, hi + pad
    left, top, plot = 46, 28, size - 46 - 16
    img = Image.new("RGB", (size + 90, size), BG)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()

    def to_px(p: np.ndarray) -> np.ndarray:
        u = (p - lo) / (hi - lo)
        return np.stack([left + u[:, 0] * plot, top + (1 - u[:, 1]) * plot], axis=1)

    for axis, ticks in enumerate((_nice_ticks(lo[0], hi[0]), _nice_ticks(lo[1], hi[1]))):
        for t in ticks:
            p = np.array([[t, lo[1]] if axis == 0 else [lo[0], t]])
            x, y = to_px(p)[0]
            if axis == 0:
                draw.line([(x, top), (x, top + plot)], fill=FAINT)
                draw.text((x - 8, top + plot + 4), f"{t:g}", fill=INK, font=font)
            else:
                draw.line([(left, y), (left + plot, y)], fill=FAINT)
                draw.text((4, y - 6), f"{t:g}", fill=INK, font=font)
    draw.rectangle([left, top, left + plot, top + plot], outline=INK)
    for (x, y), label in zip(to_px(z), np.asarray(labels), strict=True):
        draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=TAB10[int(label) % 10])
    if marks is not None:
        for x, y in to_px(np.asarray(marks, dtype=np.float64)):
            draw.line([(x - 4, y - 4), (x + 4, y + 4)], fill=(0, 0, 0), width=2)
            draw.line([(x - 4, y + 4), (x + 4, y - 4)], fill=(0, 0, 0), width=2)
    draw.text((left, 8), title, fill=INK, font=font)
    for digit in range(10):  # legend
        y = top + 10 + 20 * digit
        draw.ellipse([size + 6, y, size + 16, y + 10], fill=TAB10[digit])
        draw.text((size + 24, y - 1), f"digit {digit}", fill=INK, font=font)
    return np.asarray(img)


def gray_image(image: np.ndarray, scale: int = 4) -> np.ndarray:
    """(H,W) values in [0,1] -> (H*scale, W*scale) uint8, nearest-neighbour upscaled, ink dark
    on white (the digits dataset's convention: 1 = ink)."""
    pixels = np.clip(1.0 - np.asarray(image, dtype=np.float64), 0.0, 1.0)
    u8 = np.round(pixels * 255).astype(np.uint8)
    return np.kron(u8, np.ones((scale, scale), dtype=np.uint8))


def tile_images(images: np.ndarray, cols: int, scale: int = 6, gap: int = 2) -> np.ndarray:
    """(n,8,8) images in [0,1] -> (rows*(8*scale+gap)+gap, cols*(8*scale+gap)+gap) uint8 sheet."""
    images = np.asarray(images)
    rows = max(1, math.ceil(len(images) / cols))
    cell = 8 * scale + gap
    sheet = np.full((rows * cell + gap, cols * cell + gap), 255, dtype=np.uint8)
    for k, im in enumerate(images):
        r, c = divmod(k, cols)
        sheet[gap + r * cell : r * cell + cell, gap + c * cell : c * cell + cell] = gray_image(
            im, scale
        )
    return sheet


def bar_chart(
    counts: np.ndarray, width: int = 520, height: int = 240, title: str = ""
) -> np.ndarray:
    """(K,) counts >= 0 -> (height, width, 3) uint8 RGB bar chart (one bar per code)."""
    counts = np.asarray(counts, dtype=np.float64)
    img = Image.new("RGB", (width, height), BG)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    left, top, bottom = 40, 24, height - 20
    span = (width - left - 8) / max(len(counts), 1)
    peak = max(counts.max(initial=0.0), 1.0)
    draw.line([(left, bottom), (width - 8, bottom)], fill=INK)
    draw.text((4, top - 4), f"{peak:g}", fill=INK, font=font)
    draw.text((4, bottom - 10), "0", fill=INK, font=font)
    for k, c in enumerate(counts):
        x0 = left + k * span
        y0 = bottom - (bottom - top) * c / peak
        colour = TAB10[0] if c > 0 else (200, 60, 60)
        draw.rectangle([x0 + 1, y0, max(x0 + 1, x0 + span - 2), bottom], fill=colour)
    draw.text((left, 4), title, fill=INK, font=font)
    draw.text((left, bottom + 4), f"code 0 .. {len(counts) - 1}", fill=INK, font=font)
    return np.asarray(img)


def _save_png(array: np.ndarray, path: Path) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    Image.fromarray(np.asarray(array)).save(tmp, format="PNG")
    tmp.replace(path)


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def write_report(
    out_dir: Path | str,
    epochs: int | None = None,
    seed: int = 0,
    cache: ModelCache | None = None,
) -> Path:
    """out_dir, epochs (None: TrainConfig's default), seed -> path of ``autoencoders.csv``.

    Trains ae, vae and vq with default configs (through ``cache`` when given) and writes, in
    out_dir: autoencoders.csv (columns model,recon_mse,prior_kl,sample_confidence,latent_knn5),
    autoencoders_extras.json, and per model latents_*.png, grid_*.png (extent 3),
    grid_wide_*.png (extent 6), samples_*.png (prior), interpolation_*.png, plus
    codebook_usage_vq.png."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, extras = [], {"classifier_reference": pg.classifier_reference()}
    _, labels = pg.digits()
    i, j = int(np.argmax(labels == 0)), int(np.argmax(labels == 1))
    for model in pg.MODELS:
        cfg = pg.TrainConfig(model=model, seed=seed)
        if epochs is not None:
            cfg = pg.TrainConfig(**{**asdict(cfg), "epochs": epochs})
        start = time.perf_counter()
        trained = pg.train(cfg) if cache is None else cache.get(cfg)
        seconds = time.perf_counter() - start
        metrics = pg.evaluate(trained)
        rows.append({"model": model, **metrics})
        extra = {k: _jsonable(v) for k, v in pg.evaluate_extras(trained).items()}
        extras[model] = {"config": asdict(cfg), "train_seconds": seconds, **extra}

        z, y = latents(trained)
        marks = pg.codebook(trained) if model == "vq" else None
        title = f"{model}: latents of 1,797 digits" + (
            " (x = codebook)" if marks is not None else ""
        )
        _save_png(scatter_image(z, y, title=title, marks=marks), out / f"latents_{model}.png")
        for name, extent in (("grid", 3.0), ("grid_wide", 6.0)):
            tiles = grid_tiles(decoded_grid(trained, 15, extent), 15)
            _save_png(tile_images(tiles, cols=15, scale=4, gap=1), out / f"{name}_{model}.png")
        samples = prior_samples(trained, 64, seed=seed)
        _save_png(tile_images(samples, cols=8), out / f"samples_{model}.png")
        _save_png(
            tile_images(interpolate(trained, i, j, 10), cols=10),
            out / f"interpolation_{model}.png",
        )
        if model == "vq":
            usage = codebook_usage(trained)
            chart = bar_chart(usage, title=f"vq: digits per code (K={len(usage)})")
            _save_png(chart, out / "codebook_usage_vq.png")

    csv_path = out / "autoencoders.csv"
    table = ([row[k] if k == "model" else float(row[k]) for k in CSV_COLUMNS] for row in rows)
    atomic_write(csv_path, csv_bytes(CSV_COLUMNS, table, nan="nan"))  # text quoted, no formula
    (out / "autoencoders_extras.json").write_text(json.dumps(extras, indent=2, default=_jsonable))
    return csv_path
