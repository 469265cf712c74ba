"""The on-disk embedding cache, alone and behind `embeddings.embed` with the real tiny models.

Model work is counted with forward hooks on the real modules, never by mocking them.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.models import embedders
from explorer.models.vae import load_vae
from explorer.spaces import cache as cache_mod
from explorer.spaces import embed as embeddings
from explorer.spaces.cache import EmbeddingCache
from tests.helpers import noise_image

KEY = ("dino", "facebook/dinov2-small", "abc123", "BitImageProcessorPil:0;pooling=cls;float32")


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    return [noise_image(i, (30 + 7 * i, 40)) for i in range(6)]


def _hashes(n: int, prefix: str = "img") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def _vectors(n: int, d: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def _segments(root: Path) -> list[Path]:
    return sorted(root.rglob("*.vec"))


@contextmanager
def count_images(module: torch.nn.Module):
    """Record the batch size of every forward pass of ``module`` (a real forward hook)."""
    seen: list[int] = []

    def hook(_module, args, kwargs, _out):
        x = kwargs.get("pixel_values", args[0] if args else None)
        seen.append(int(x.shape[0]))

    handle = module.register_forward_hook(hook, with_kwargs=True)
    try:
        yield seen
    finally:
        handle.remove()


# --------------------------------------------------------------------------- the store


def test_round_trip_and_partial_hits(tmp_path):
    c = EmbeddingCache(tmp_path)
    vecs = _vectors(5)
    found, missing = c.get_many(KEY, _hashes(5))
    assert found == {} and missing == [0, 1, 2, 3, 4]
    c.put_many(KEY, _hashes(5), vecs)
    found, missing = c.get_many(KEY, ["img3", "new", "img0"])
    assert missing == [1] and sorted(found) == [0, 2]
    np.testing.assert_array_equal(found[0], vecs[3])
    np.testing.assert_array_equal(found[2], vecs[0])
    assert found[0].dtype == np.float32 and not found[0].flags.writeable
    # a fresh instance (a new process) reads the same bytes back
    found, missing = EmbeddingCache(tmp_path).get_many(KEY, _hashes(5))
    assert missing == []
    np.testing.assert_array_equal(np.stack([found[i] for i in range(5)]), vecs)
    assert (tmp_path / cache_mod.LAYOUT / cache_mod.shard_id(KEY) / "key.json").exists()


@pytest.mark.parametrize("position", [0, 1, 2, 3])
def test_every_part_of_the_key_matters(tmp_path, position):
    c = EmbeddingCache(tmp_path)
    c.put_many(KEY, _hashes(3), _vectors(3))
    other = list(KEY)
    other[position] += "-changed"
    assert c.get_many(other, _hashes(3)) == ({}, [0, 1, 2])
    assert len(c.get_many(KEY, _hashes(3))[0]) == 3


def test_bad_arguments(tmp_path):
    c = EmbeddingCache(tmp_path)
    with pytest.raises(ValueError, match="one row per hash"):
        c.put_many(KEY, _hashes(2), _vectors(3))
    with pytest.raises(ValueError, match="cache key"):
        c.get_many(("dino", "x"), ["a"])
    c.put_many(KEY, [], np.zeros((0, 8), np.float32))
    assert _segments(tmp_path) == []


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "empty"])
def test_a_damaged_segment_reads_as_missing_and_is_removed(tmp_path, damage):
    EmbeddingCache(tmp_path).put_many(KEY, _hashes(4), _vectors(4))
    EmbeddingCache(tmp_path).put_many(KEY, ["kept"], _vectors(1, seed=5))
    bad = _segments(tmp_path)[0]
    data = bytearray(bad.read_bytes())
    if damage == "flip":
        data[-3] ^= 0x40
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = bytearray(b"not a segment at all" * 10)
    else:
        data = bytearray()
    bad.write_bytes(bytes(data))
    found, missing = EmbeddingCache(tmp_path).get_many(KEY, [*_hashes(4), "kept"])
    assert missing == [0, 1, 2, 3] and list(found) == [4]
    np.testing.assert_array_equal(found[4], _vectors(1, seed=5)[0])
    assert not bad.exists()


def test_unreadable_root_is_not_fatal(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    c = EmbeddingCache(blocker)
    c.put_many(KEY, _hashes(2), _vectors(2))  # logs, does not raise
    assert c.get_many(KEY, _hashes(2)) == ({}, [0, 1])


def test_lru_shards_are_evicted_past_the_size_bound(tmp_path):
    keys = [(*KEY[:3], f"prep{i}") for i in range(4)]
    vecs = _vectors(100, 256)  # ~106 kB per shard with its digests
    c = EmbeddingCache(tmp_path, max_mb=0.25)
    c.put_many(keys[0], _hashes(100), vecs)
    c.put_many(keys[1], _hashes(100), vecs)
    assert len(c.get_many(keys[0], _hashes(100))[0]) == 100  # key 0 now used more recently
    c.put_many(keys[2], _hashes(100), vecs)  # over 256 kB: evicts key 1, the LRU
    fresh = EmbeddingCache(tmp_path, max_mb=0.25)
    assert [len(fresh.get_many(k, _hashes(100))[0]) for k in keys[:3]] == [100, 0, 100]
    assert c.size_bytes() <= 0.25 * 2**20
    # the bound is strict: a single shard larger than it does not stay
    EmbeddingCache(tmp_path, max_mb=0.01).put_many(keys[3], _hashes(100), vecs)
    assert EmbeddingCache(tmp_path).size_bytes() == 0


def test_env_configures_root_and_bound(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "here"))
    monkeypatch.setenv("EXPLORER_CACHE_MAX_MB", "3")
    c = EmbeddingCache()
    assert c.root == tmp_path / "here" and c.max_bytes == 3 * 2**20
    monkeypatch.delenv("EXPLORER_CACHE_DIR")
    assert EmbeddingCache().root == Path.home() / ".cache" / "latent-space-explorer"


def test_two_threads_writing_and_one_reading(tmp_path):
    c = EmbeddingCache(tmp_path)
    vecs = _vectors(400, 16)
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            for i in range(offset, 400, 20):  # 20 puts each: forces compaction too
                c.put_many(KEY, _hashes(400)[i : i + 10], vecs[i : i + 10])
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(30):
                found, _ = EmbeddingCache(tmp_path).get_many(KEY, _hashes(400))
                for i, v in found.items():
                    np.testing.assert_array_equal(v, vecs[i])
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=t, args=a)
        for t, a in [(writer, (0,)), (writer, (10,)), (reader, ())]
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    found, missing = EmbeddingCache(tmp_path).get_many(KEY, _hashes(400))
    assert missing == []
    np.testing.assert_array_equal(np.stack([found[i] for i in range(400)]), vecs)
    assert len(_segments(tmp_path)) <= cache_mod.MAX_SEGMENTS + 1
    assert not list(tmp_path.rglob("*.tmp"))


def test_ten_thousand_images_reopen_whole(tmp_path):
    """A 10k set reopens from a fresh cache object with every vector intact (its speed is measured
    in bench/atlas_scale.py, not asserted here)."""
    hashes = [f"{i:064x}" for i in range(10_000)]
    vecs = _vectors(10_000, 512)
    EmbeddingCache(tmp_path).put_many(KEY, hashes, vecs)
    found, missing = EmbeddingCache(tmp_path).get_many(KEY, [*hashes, "never-stored"])
    assert missing == [10_000] and len(found) == 10_000
    np.testing.assert_array_equal(np.stack([found[i] for i in range(10_000)]), vecs)


# --------------------------------------------------------------------------- behind embed()


def test_cache_hit_runs_no_model(tmp_path, images):
    c = EmbeddingCache(tmp_path)
    emb = embedders.load_embedder("test-dino")
    with count_images(emb.model) as seen:
        first = embeddings.embed("dino", images, cache=c)
    assert sum(seen) == len(images)
    with count_images(emb.model) as seen:
        again = embeddings.embed("dino", images, cache=EmbeddingCache(tmp_path))
    assert seen == []
    np.testing.assert_array_equal(again, first)
    # one new image: only it goes through the model, in its place in the output
    extra = noise_image(99, (40, 30))
    with count_images(emb.model) as seen:
        mixed = embeddings.embed("dino", [images[0], extra, images[1]], cache=c)
    assert seen == [1]
    np.testing.assert_array_equal(mixed[[0, 2]], first[:2])
    np.testing.assert_allclose(mixed[1], emb.embed_images([extra])[0], atol=1e-6)


def test_clip_and_vae_spaces_are_cached_too(tmp_path, images):
    c = EmbeddingCache(tmp_path)
    clip = embedders.load_embedder("test-clip")
    vae = load_vae("test-kl")
    for space, module in [("clip", clip.model.vision_model), ("vae:test-kl", vae.module.encoder)]:
        with count_images(module) as seen:
            first = embeddings.embed(space, images, cache=c)
        assert sum(seen) == len(images)
        with count_images(module) as seen:
            np.testing.assert_array_equal(embeddings.embed(space, images, cache=c), first)
        assert seen == []


def test_other_preprocessing_misses(tmp_path, images):
    c = EmbeddingCache(tmp_path)
    emb = embedders.load_embedder("test-dino")
    embeddings.embed("dino", images, cache=c)
    with count_images(emb.model) as seen:
        mean = embeddings.embed("dino", images, cache=c, pooling="mean")
    assert sum(seen) == len(images)
    np.testing.assert_allclose(mean, emb.embed_images(images, pooling="mean"), atol=1e-6)
    vae = load_vae("test-kl")
    embeddings.embed("vae:test-kl", images, cache=c)
    with count_images(vae.module.encoder) as seen:
        big = embeddings.embed("vae:test-kl", images, cache=c, resolution=128)
    assert sum(seen) == len(images) and big.shape == (len(images), 4 * 16 * 16)
    with count_images(vae.module.encoder) as seen:
        embeddings.embed("vae:test-kl", images, cache=c, pooling="channel-mean")
    assert sum(seen) == len(images)


def test_other_revision_misses(tmp_path, images):
    c = EmbeddingCache(tmp_path)
    emb = embedders.load_embedder("test-vit")
    out = embeddings.embed("vit", images, cache=c)
    hashes = [embeddings.image_hash(im) for im in images]
    key = emb.cache_key()
    assert len(c.get_many(key, hashes)[0]) == len(images)
    assert c.get_many((key[0], key[1], "another-commit", key[3]), hashes)[1] == list(range(6))
    np.testing.assert_array_equal(np.stack(list(c.get_many(key, hashes)[0].values())), out)


def test_corrupted_cache_file_is_recomputed(tmp_path, images):
    c = EmbeddingCache(tmp_path)
    emb = embedders.load_embedder("test-dino")
    first = embeddings.embed("dino", images, cache=c)
    (segment,) = _segments(tmp_path)
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    with count_images(emb.model) as seen:
        again = embeddings.embed("dino", images, cache=EmbeddingCache(tmp_path))
    assert sum(seen) == len(images)
    np.testing.assert_allclose(again, first, atol=1e-6)
    with count_images(emb.model) as seen:  # and the recomputed rows were stored again
        embeddings.embed("dino", images, cache=EmbeddingCache(tmp_path))
    assert seen == []


def test_caller_hashes_are_the_keys(tmp_path, images):
    c = EmbeddingCache(tmp_path)
    emb = embedders.load_embedder("test-dino")
    names = [f"photo-{i}.jpg" for i in range(len(images))]
    first = embeddings.embed("dino", images, hashes=names, cache=c)
    with count_images(emb.model) as seen:
        again = embeddings.embed("dino", images[::-1], hashes=names[::-1], cache=c)
    assert seen == []
    np.testing.assert_array_equal(again, first[::-1])


def test_progress_mentions_cache_hits(tmp_path, images):
    c = EmbeddingCache(tmp_path)
    embeddings.embed("dino", images[:3], cache=c)
    seen = []
    embeddings.embed("dino", images, cache=c, progress=lambda f, d: seen.append((f, d)))
    assert seen[0] == (0.5, "3/6 embeddings from the cache")
    assert seen[-1][0] == pytest.approx(1.0)
