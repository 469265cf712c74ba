"""Sets read from files are keyed in the embedding cache by their file bytes: a re-opened set
hits the cache, and a file whose content changes (same size, same mtime) gets a new key."""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

from explorer import datasets as ds
from explorer.spaces import embed as embeddings
from explorer.spaces.cache import EmbeddingCache
from tests.image_files import make_tree, make_zip


def bmp(seed: int, size: int = 24) -> bytes:
    """An uncompressed BMP: changing a pixel keeps the file size."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, "BMP")
    return buf.getvalue()


def members() -> dict[str, bytes]:
    return {
        f"{c}/{i}.bmp": bmp(10 * k + i) for k, c in enumerate(("cats", "dogs")) for i in range(3)
    }


def test_keys_are_the_file_bytes_hash_and_follow_subsets(tmp_path):
    files = members()
    s = ds.from_folder(make_tree(tmp_path / "t", files))
    assert s.keys == [ds.file_key(files[p]) for p in s.paths]
    assert len(set(s.keys)) == len(s)
    z = ds.from_zip(make_zip(tmp_path / "t.zip", files))
    assert z.keys == s.keys  # the same bytes, whatever the container
    sub = s.subset([4, 1])
    assert sub.keys == [s.keys[4], s.keys[1]]
    up = ds.from_files([tmp_path / "t" / p for p in s.paths])
    assert up.keys == s.keys


def test_changed_content_same_size_and_mtime_gets_a_new_key(tmp_path):
    root = make_tree(tmp_path / "t", members())
    first = ds.from_folder(root)
    path = root / "cats" / "1.bmp"
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # one pixel byte: same size
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same mtime
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    second = ds.from_folder(root)
    i = second.paths.index("cats/1.bmp")
    assert second.keys[i] != first.keys[i]
    assert [k for j, k in enumerate(second.keys) if j != i] == [
        k for j, k in enumerate(first.keys) if j != i
    ]
    os.utime(path)  # touched, content unchanged: same key
    assert ds.from_folder(root).keys == second.keys


def test_cache_rows_follow_the_file_content(tmp_path):
    """Embedding through the cache with file keys gives what embedding the pixels gives, before
    and after a file changes (a stale row would survive only under an unchanged key)."""
    root = make_tree(tmp_path / "t", members())
    cache = EmbeddingCache(tmp_path / "cache")
    space = "vae:test-tiny"

    def via_cache(s):
        return embeddings.embed(space, s.images, s.keys, cache, resolution=64)

    first = ds.from_folder(root)
    np.testing.assert_allclose(
        via_cache(first), embeddings.embed(space, first.images, resolution=64)
    )
    path = root / "dogs" / "2.bmp"
    path.write_bytes(bmp(99))
    second = ds.from_folder(root)
    got = via_cache(second)
    want = embeddings.embed(space, second.images, resolution=64)  # no cache: the model runs
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    i = second.paths.index("dogs/2.bmp")
    assert not np.allclose(got[i], via_cache(first)[i])
