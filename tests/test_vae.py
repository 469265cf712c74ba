"""explorer.models.vae: the VAE wrapper's convention, loading by name or path, the shared model cache."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from explorer.models import vae as vae_module
from explorer.models.registry import available_models, local_models, resolve
from explorer.models.vae import Posterior, load_vae

ROOT = Path(__file__).resolve().parents[1]


def test_load_vae_is_shared():
    a = load_vae("test-kl")
    assert load_vae("test-kl") is a
    assert load_vae(" test-kl ") is a
    assert load_vae("test-kl16") is not a


def test_a_registered_build_must_return_what_its_kind_says():
    kl = resolve("test-kl")  # registered: build() returns an AutoencoderKL
    with pytest.raises(TypeError, match="kind 'tiny' needs a TinyAutoencoder"):
        vae_module._load(dataclasses.replace(kl, name="wrong", kind="tiny"), torch.device("cpu"))
    tiny = resolve("test-tiny")
    with pytest.raises(TypeError, match="kind 'kl' needs a diffusers AutoencoderKL"):
        vae_module._load(dataclasses.replace(tiny, name="wrong", kind="kl"), torch.device("cpu"))


def test_encode_matches_diffusers_with_shift_and_scale(image64):
    vae = load_vae("test-kl16")
    cfg = vae.module.config
    assert (cfg.scaling_factor, cfg.shift_factor) == (0.5, 0.1)
    assert (vae.scaling_factor, vae.shift_factor) == (0.5, 0.1)
    post = vae.encode(image64)
    with torch.no_grad():
        dist = vae.module.encode(image64 * 2 - 1).latent_dist
        expected_mean = (dist.mean - cfg.shift_factor) * cfg.scaling_factor
        expected_std = dist.std * cfg.scaling_factor
    assert post.mean.shape == (1, 16, 8, 8) and post.mean.dtype == torch.float32
    torch.testing.assert_close(post.mean, expected_mean, rtol=0, atol=0)
    torch.testing.assert_close(post.std, expected_std, rtol=0, atol=0)
    # and decode undoes the scaling before calling diffusers
    z = post.mean
    with torch.no_grad():
        raw = vae.module.decode(z / cfg.scaling_factor + cfg.shift_factor).sample
    torch.testing.assert_close(vae.decode(z), ((raw + 1) / 2).clamp(0, 1), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "channels"), [("test-kl", 4), ("test-kl16", 16), ("test-tiny", 4)]
)
def test_roundtrip_shapes_and_range(name, channels):
    vae = load_vae(name)
    x = torch.rand((2, 3, 48, 64), generator=torch.Generator().manual_seed(0))
    post = vae.encode(x)
    assert post.mean.shape == (2, channels, 6, 8)
    assert vae.latent_channels == channels and vae.downscale == 8
    y = vae.decode(post.mean)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert y.min() >= 0 and y.max() <= 1 and torch.isfinite(y).all()


def test_posterior_sample_is_seeded(image64):
    post = load_vae("test-kl").encode(image64)
    assert post.std is not None and (post.std > 0).all()
    s1, s1b, s2 = post.sample(1), post.sample(1), post.sample(2)
    assert torch.equal(s1, s1b)
    assert not torch.equal(s1, s2)
    assert not torch.equal(s1, post.mean)
    eps = torch.cat([(post.sample(s) - post.mean) / post.std for s in range(8)])
    assert eps.mean().item() == pytest.approx(0, abs=0.05)
    assert eps.std().item() == pytest.approx(1, abs=0.05)


def test_deterministic_model_sample_is_the_mean(image64):
    vae = load_vae("test-tiny")
    assert not vae.stochastic and not vae.spec.stochastic
    post = vae.encode(image64)
    assert post.std is None
    assert torch.equal(post.sample(0), post.mean)
    assert torch.equal(post.sample(123), post.mean)
    mean = torch.randn(1, 4, 2, 2)
    assert torch.equal(Posterior(mean, None).sample(7), mean)


def test_local_diffusers_folder_resolves_by_path(tiny_kl_folder, image64):
    spec = resolve(str(tiny_kl_folder))
    assert spec.kind == "kl" and Path(spec.repo_id) == tiny_kl_folder
    vae = load_vae(str(tiny_kl_folder))
    assert vae is not load_vae("test-kl16")
    assert (vae.scaling_factor, vae.shift_factor, vae.latent_channels) == (0.5, 0.1, 16)
    assert vae.stochastic
    a, b = vae.encode(image64), load_vae("test-kl16").encode(image64)
    assert torch.equal(a.mean, b.mean)
    assert torch.equal(a.std, b.std)
    assert torch.equal(vae.decode(a.mean), load_vae("test-kl16").decode(b.mean))


def test_local_models_finds_taef2(taef2_dir):
    found = local_models(taef2_dir)
    assert list(found) == ["local:taef2"]
    spec = found["local:taef2"]
    assert spec.kind == "taesd-local"
    assert spec.encoder_path == taef2_dir / "taef2_encoder.pth"
    assert spec.decoder_path == taef2_dir / "taef2_decoder.pth"
    assert "local:taef2" in available_models(taef2_dir)
    assert resolve("local:taef2", taef2_dir) == spec
    assert local_models(taef2_dir / "missing") == {}


def test_local_models_from_env(taef2_dir, monkeypatch):
    monkeypatch.setenv("EXPLORER_MODELS_DIR", str(taef2_dir))
    assert list(local_models()) == ["local:taef2"]
    monkeypatch.delenv("EXPLORER_MODELS_DIR")
    assert local_models() == {}


def test_offline_without_cache_is_a_clear_error(tmp_path, astronaut):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "HUGGINGFACE_", "EXPLORER_", "TRANSFORMERS_", "DIFFUSERS_"))
    }
    env.update(HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    out = tmp_path / "x.png"
    args = ["roundtrip", str(astronaut), "--model", "taesd", "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "explorer", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # catches hanging download retries; not a performance assertion
    )
    assert proc.returncode == 2, proc.stderr
    assert "python -m explorer download" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_model_cache_loads_one_at_a_time_and_each_key_once():
    """Threads asking for models at once: each key is built once, builds never overlap (lazy
    diffusers/transformers imports are not thread-safe), the LRU bound holds."""
    import threading

    from explorer.core.lru import LRU

    cache = LRU(2, serial=True)
    running, overlaps, builds = [0], [], []
    guard = threading.Lock()

    def builder(key):
        def build():
            with guard:
                running[0] += 1
                overlaps.append(running[0])
                builds.append(key)
            time.sleep(0.05)
            with guard:
                running[0] -= 1
            return object()

        return build

    results: dict = {}

    def ask(key):
        results.setdefault(key, set()).add(id(cache.get_or_build((key,), builder(key))))

    threads = [threading.Thread(target=ask, args=(k,)) for k in ("a", "b", "a", "b", "a")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(builds) == ["a", "b"]
    assert max(overlaps) == 1
    assert all(len(ids) == 1 for ids in results.values())
    cache.get_or_build(("c",), builder("c"))
    assert len(cache) == 2
