"""The store of open atlases: bounded by count and by memory, least recently used closed first."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from explorer.atlas import Atlas, AtlasStore, atlas_nbytes
from explorer.core.errors import ExplorerError
from explorer.datasets import ImageSet


def _atlas(i: int, side: int = 100, n: int = 2) -> Atlas:
    images = ImageSet(
        name=f"set {i}",
        images=[Image.new("RGB", (side, side)) for _ in range(n)],
        labels=["a"] * n,
        paths=[f"{j}.png" for j in range(n)],
    )
    emb = {"clip": np.zeros((n, 8), np.float32)}
    return Atlas(id=f"atlas-{i}", images=images, spaces=[], embeddings=emb)


def test_nbytes_counts_pixels_as_pillow_holds_them_and_vectors():
    a = _atlas(0, side=100, n=2)
    pixels_and_vectors = 2 * 100 * 100 * 4 + 2 * 8 * 4  # Pillow keeps RGB in 4 bytes a pixel
    assert pixels_and_vectors < atlas_nbytes(a) < pixels_and_vectors + 4096  # + names, lists


def test_count_bound_closes_the_least_recently_used():
    store = AtlasStore(size=3, max_mb=1024)
    for i in range(3):
        store.put(_atlas(i))
    store.get("atlas-0")  # used: now the most recent
    store.put(_atlas(3))
    assert len(store) == 3
    store.get("atlas-0")
    with pytest.raises(ExplorerError, match="open one first"):
        store.get("atlas-1")


def test_memory_bound_and_the_newest_always_stays():
    one = atlas_nbytes(_atlas(0, side=300))  # ~0.5 MB each
    store = AtlasStore(size=100, max_mb=2.5 * one / 2**20)
    for i in range(5):
        store.put(_atlas(i, side=300))
    assert len(store) == 2 and store.nbytes <= 2.5 * one
    store.get("atlas-4")
    huge = _atlas(9, side=1200)  # larger than the whole budget on its own
    store.put(huge)
    assert store.get("atlas-9") is huge and len(store) == 1


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("EXPLORER_MAX_ATLASES", "5")
    monkeypatch.setenv("EXPLORER_ATLAS_MEMORY_MB", "10")
    store = AtlasStore()
    assert (store.size, store.max_bytes) == (5, 10 * 2**20)


def test_sessions_writing_the_same_thumbnails_at_once(tmp_path):
    """Two classmates opening the same set write the same thumbnail files at the same moment:
    no error, and every file ends up a whole JPEG (found by bench/load.py)."""
    import threading

    from explorer.atlas import write_thumbs

    rng = np.random.default_rng(0)
    images = [
        Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)) for _ in range(40)
    ]
    hashes = [f"{i:032x}" for i in range(40)]
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def write():
        start.wait()
        try:
            write_thumbs(images, hashes, tmp_path)
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    files = sorted(tmp_path.glob("*.jpg"))
    assert len(files) == 40 and not list(tmp_path.glob("*.tmp"))
    for f in files:
        with Image.open(f) as im:
            im.load()  # a half-written file fails here


def test_many_names_are_counted_from_a_sample_within_a_percent():
    from explorer.atlas import store

    rng = np.random.default_rng(0)
    names = ["x" * int(k) for k in rng.integers(1, 200, 100_000)]
    exact = sys.getsizeof(names) + sum(sys.getsizeof(v) for v in names)
    assert abs(store._strings_nbytes(names) - exact) < 0.01 * exact
    few = names[: store.STRINGS_COUNTED]
    assert store._strings_nbytes(few) == sys.getsizeof(few) + sum(sys.getsizeof(v) for v in few)
