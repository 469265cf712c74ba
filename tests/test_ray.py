"""The embedding step on Ray (explorer.spaces.ray_engine): the same rows, cache entries, points and
metrics as the local engine, on a local 2-CPU Ray with the tiny test models."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pandas as pd
import pytest

from explorer import cli, datasets
from explorer.spaces import embed as embeddings
from explorer.spaces.cache import EmbeddingCache

SPACES = ("vae:test-tiny", "clip:test-clip")  # a VAE space and an embedder space
HAS_RAY = importlib.util.find_spec("ray") is not None


def test_engine_ray_without_ray_says_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    monkeypatch.setitem(sys.modules, "ray.data", None)
    code = cli.main(["atlas", "bundled", "--out", str(tmp_path / "out"), "--engine", "ray"])
    err = capsys.readouterr().err
    assert code == 2
    assert "pip install .[ray]" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def ray_local():
    if not HAS_RAY:
        pytest.skip("ray is not installed (pip install .[ray])")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """28 teaching-set images (64 px, every class) as PNGs in class folders."""
    from explorer.datasets import teaching

    s = teaching.teaching_set(size=64)
    root = tmp_path_factory.mktemp("ray-set")
    for i in range(0, len(s), 4):
        folder = root / s.labels[i]
        folder.mkdir(exist_ok=True)
        s.images[i].save(folder / f"{i:03d}.png")
    return root


def _atlas(folder, out, engine, monkeypatch, cache_dir) -> int:
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("EXPLORER_PLUGINS", "tests.tiny_models")  # the Ray workers read it
    args = ["atlas", str(folder), "--out", str(out), "--method", "pca", "--engine", engine]
    args += ["--vae", SPACES[0].split(":")[1], "--clip", SPACES[1].split(":")[1]]
    return cli.main(args)


@pytest.mark.slow
def test_ray_engine_matches_local_and_fills_the_cache(
    ray_local, image_folder, tmp_path, monkeypatch
):
    assert _atlas(image_folder, tmp_path / "local", "local", monkeypatch, tmp_path / "c1") == 0
    assert _atlas(image_folder, tmp_path / "ray", "ray", monkeypatch, tmp_path / "c2") == 0

    # The same rows, space by space, within 1e-5.
    local = np.load(tmp_path / "local" / "embeddings.npz")
    ray = np.load(tmp_path / "ray" / "embeddings.npz")
    assert sorted(local.files) == sorted(ray.files) and len(local.files) >= 2
    for name in local.files:
        assert local[name].shape == ray[name].shape
        if local[name].dtype.kind == "f":
            assert np.abs(local[name] - ray[name]).max() <= 1e-5, name
        else:
            assert (local[name] == ray[name]).all(), name

    # The same points and metrics.
    for table in ("points.csv", "metrics.csv"):
        a = pd.read_csv(tmp_path / "local" / table)
        b = pd.read_csv(tmp_path / "ray" / table)
        assert list(a.columns) == list(b.columns) and len(a) == len(b) > 0
        num = a.select_dtypes("number").columns
        pd.testing.assert_frame_equal(a.drop(columns=num), b.drop(columns=num))
        np.testing.assert_allclose(a[num].to_numpy(float), b[num].to_numpy(float), atol=1e-4)

    # The Ray run wrote the cache entries a local run reads: every row is a hit, no model runs.
    image_set = datasets.load_source(str(image_folder))
    # the keys atlas.build uses: the file bytes' hashes for a set read from files
    hashes = image_set.keys or [embeddings.image_hash(im) for im in image_set.images]
    cache = EmbeddingCache(tmp_path / "c2")
    for space in SPACES:
        rows = embeddings.embed(space, image_set.images, hashes, cache, device="cpu")
        key = space.split(":")[0]
        assert np.abs(rows - local[key]).max() <= 1e-5
    assert cache.hits == len(SPACES) * len(image_set) and cache.misses == 0
