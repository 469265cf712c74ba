"""What several test modules share: the repository root, a free local port, seeded images and
point clouds, a fresh interpreter, and gradio_client answers read back as images and tables.

Import it as ``from tests.helpers import ...`` (never ``conftest``: pytest has imported that
one under its own name, and a second import would run its set-up again)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def noise_image(seed: int, size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """(w, h) -> a (h, w) image of seeded uniform RGB noise, converted to ``mode``.

    Noise compresses badly, so a truncated file of it cuts into pixel data."""
    w, h = size
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), mode="RGB")
    return im.convert(mode) if mode != "RGB" else im


def rgb_array(im: Image.Image) -> np.ndarray:
    """An image -> its (H, W, 3) uint8 RGB pixels."""
    return np.asarray(im.convert("RGB"))


def clusters(
    n_per: int, *, n_clusters: int = 3, dim: int = 64, noise: float = 0.05, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """-> (n_per * n_clusters, dim) points and their (N,) labels in 0..n_clusters-1: tight
    Gaussian clusters (std ``noise``) around random unit directions, nearly orthogonal in 64-d."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(n_clusters), n_per)
    return centres[labels] + noise * rng.normal(size=(labels.size, dim)), labels


def run_python(
    code: str, *, timeout: float = 300, **env: str | None
) -> subprocess.CompletedProcess:
    """``python -c code`` (dedented) in a fresh interpreter at the repository root, with this
    process's environment less every EXPLORER_* variable, plus ``env`` (a None value removes
    that variable). Output is captured as text."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("EXPLORER_")}
    for key, value in env.items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_python_json(code: str, **env: str | None) -> dict:
    """:func:`run_python` for code that prints one JSON object last: fails on a non-zero exit
    (with the child's stderr), else returns that object."""
    done = run_python(code, **env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def image_of(answer: str | dict) -> Image.Image:
    """A gradio_client image answer (a file path, or a dict with ``path``/``value``) -> the image."""
    if isinstance(answer, dict):
        answer = answer.get("path") or answer.get("value")
    return Image.open(answer)


def frame_of(table: dict) -> pd.DataFrame:
    """A gradio_client Dataframe answer ``{"headers": [...], "data": [[...], ...]}`` -> a frame."""
    return pd.DataFrame(table["data"], columns=table["headers"])


def by_elem_id(demo, elem_id: str):
    """The block of a built ``gr.Blocks`` whose ``elem_id`` is ``elem_id`` (StopIteration if none)."""
    return next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id)


def rows_of(table: dict) -> list[dict]:
    """A gradio_client Dataframe answer -> one ``{header: value}`` dict per row."""
    return [dict(zip(table["headers"], row, strict=True)) for row in table["data"]]


def atlas_of(value: str | dict) -> dict:
    """The atlas component's JSON, as the browser gets it -> the same with its binary columns
    read back (``labels``, each panel's ``x`` and ``y``, ``ids``, ``thumbs``, overlap values)."""
    from explorer.ui.atlas.payload import read_columns

    return read_columns(json.loads(value) if isinstance(value, str) else value)
