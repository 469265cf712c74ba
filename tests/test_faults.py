"""Faults: out of memory, models missing offline, a damaged cache, requests failing mid-way.

Faults are injected into dependencies only (a model's ``forward`` raising, bytes on disk
damaged, the offline flag set); the code under test runs unchanged, with the real tiny
models (and the real TAEF2 weights where the team's checkout has them).
"""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from explorer import atlas
from explorer.analysis import metrics
from explorer.core.errors import ExplorerError, ModelUnavailableError
from explorer.datasets import ImageSet
from explorer.images import io as imaging
from explorer.lab import actions as lab
from explorer.models import embedders, hub, registry, taesd
from explorer.models.vae import load_vae
from explorer.spaces import embed as embeddings
from explorer.spaces.cache import EmbeddingCache
from tests.helpers import noise_image

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
HINT = "python -m explorer download"


def _oom() -> torch.cuda.OutOfMemoryError:
    return torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB (injected)")


def inject(monkeypatch, module: torch.nn.Module, exc: Exception, fail=lambda i, x: i == 0):
    """Make ``module``'s forward raise ``exc`` on the calls where ``fail(index, input)``;
    returns the input shape of every call."""
    calls: list[tuple[int, ...]] = []
    original = module.forward

    def forward(*args, **kwargs):
        x = args[0] if args else kwargs.get("pixel_values", kwargs.get("sample"))
        calls.append(tuple(x.shape))
        if fail(len(calls) - 1, x):
            raise exc
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "forward", forward)
    return calls


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return metrics.psnr(a[0].permute(1, 2, 0).numpy(), b[0].permute(1, 2, 0).numpy())


def _rel(a, b) -> float:
    """RMS of ``a - b`` relative to the spread of ``b`` around its mean."""
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    return float((a - b).norm() / (b - b.mean()).norm())


@pytest.fixture(scope="module")
def astro(astronaut):
    loaded = imaging.load_image(astronaut)
    return {res: imaging.to_tensor(imaging.prepare(loaded, res)) for res in (256, 512)}


def _settings(module) -> tuple:
    return (
        module.use_tiling,
        module.tile_sample_min_size,
        module.tile_latent_min_size,
        module.tile_overlap_factor,
    )


# --------------------------------------------------------------------------- 1. out of memory


def test_embedder_out_of_memory_is_retried_in_smaller_batches_through_embed(monkeypatch):
    images = [noise_image(i, (48, 40)) for i in range(6)]
    expected = embeddings.embed("dino:test-dino", images, batch_size=1)
    emb = embedders.load_embedder("test-dino")
    calls = inject(monkeypatch, emb.model, _oom(), lambda i, x: x.shape[0] > 2)
    out = embeddings.embed("dino:test-dino", images, batch_size=4)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert [c[0] for c in calls] == [4, 2, 2, 2]


def test_vae_embedding_out_of_memory_halves_the_batch():
    images = [noise_image(i, (48, 40)) for i in range(6)]
    vae = load_vae("test-kl")
    expected = embeddings.vae_embedding(vae, images, batch_size=1)
    with pytest.MonkeyPatch.context() as mp:
        calls = inject(mp, vae.module.encoder, _oom(), lambda i, x: x.shape[0] > 2)
        out = embeddings.vae_embedding(vae, images, batch_size=4)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert [c[0] for c in calls] == [4, 2, 2, 2]  # whole batches, never tiles


def test_vae_embedding_of_one_large_image_falls_back_to_tiles(monkeypatch):
    vae = load_vae("test-tiny")
    expected = embeddings.vae_embedding(vae, [noise_image(1, (256, 256))], resolution=256)
    calls = inject(monkeypatch, vae.module.encoder, _oom())
    out = embeddings.vae_embedding(vae, [noise_image(1, (256, 256))], resolution=256)
    assert calls == [(1, 3, 256, 256)]  # the tiled retry runs the encoder's layers in pieces
    assert _rel(out, expected) < 0.05


@pytest.mark.parametrize("name", ["test-kl", "test-kl16", "test-tiny"])
def test_tiling_that_does_not_split_is_the_untiled_result(name, astro):
    vae = load_vae(name)
    x = astro[256]
    post = vae.encode(x)
    tiled = vae.encode(x, tiled=True, tile=32)  # the whole 32x32 latent in one tile
    torch.testing.assert_close(tiled.mean, post.mean, atol=1e-5, rtol=0)
    y = vae.decode(post.mean)
    torch.testing.assert_close(vae.decode(post.mean, tiled=True, tile=32), y, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["test-kl", "test-kl16"])
def test_kl_tiled_decode_uses_diffusers_tiling(name, astro):
    """diffusers' own tiled path: wired right (its first tile is that tile decoded alone),
    its settings given back, and close to the untiled result. On these random test models
    GroupNorm and attention see one tile at a time, so close means > 20 dB here, not 30."""
    vae = load_vae(name)
    before = _settings(vae.module)
    z = vae.encode(astro[512]).mean  # 64x64 latents, tiles of 32 with a quarter of overlap
    ref = vae.decode(z)
    out = vae.decode(z, tiled=True, tile=32)
    assert _settings(vae.module) == before and not vae.module.use_tiling
    assert out.shape == ref.shape and out.min() >= 0 and out.max() <= 1
    keep = 256 - 64  # diffusers keeps the first tile's top-left 3/4 unblended
    alone = vae.decode(z[..., :32, :32])
    torch.testing.assert_close(out[..., :keep, :keep], alone[..., :keep, :keep], atol=1e-5, rtol=0)
    assert _psnr(ref, out) > 20


def test_kl_tiled_encode(astro):
    vae = load_vae("test-kl")
    x = astro[256]
    post = vae.encode(x, tiled=True, tile=16)
    assert post.mean.shape == post.std.shape == (1, 4, 32, 32) and (post.std > 0).all()
    alone = vae.encode(x[..., :128, :128])
    torch.testing.assert_close(
        post.mean[..., :12, :12], alone.mean[..., :12, :12], atol=1e-5, rtol=0
    )
    torch.testing.assert_close(post.std[..., :12, :12], alone.std[..., :12, :12], atol=1e-5, rtol=0)
    assert not vae.module.use_tiling


@pytest.mark.parametrize(("tile", "limit"), [(4, 0.1), (8, 0.05), (12, 0.02)])
@pytest.mark.slow
def test_tiny_tiled_encode_and_decode_are_close_to_untiled(tile, limit, astro):
    """test-tiny has TAESD's own layout, whose full-resolution layers see ~70 px around a pixel:
    tiles of 4 latent pixels (32 px, 8 px of overlap; the app never tiles below 8) are the
    extreme. Measured 0.062 at tile 4, 0.021 at 8, 0.0099 at 12."""
    vae = load_vae("test-tiny")  # a TinyAutoencoder
    x = astro[256]
    z = vae.encode(x).mean
    zt = vae.encode(x, tiled=True, tile=tile).mean
    assert zt.shape == z.shape
    assert _rel(zt, z) < limit
    ref = vae.decode(z)
    out = vae.decode(z, tiled=True, tile=tile)
    assert out.shape == ref.shape and _psnr(ref, out) > 40


@pytest.mark.slow
def test_taef2_tiled_decode_and_encode_are_close_to_untiled(taef2_dir, astro):
    """Real TAEF2 weights, the astronaut at 512, tiles of 24 latent pixels (192 px)."""
    vae = load_vae("local:taef2", taef2_dir)
    x = astro[512]
    z = vae.encode(x).mean
    ref = vae.decode(z)
    out = vae.decode(z, tiled=True, tile=24)
    assert out.shape == ref.shape == (1, 3, 512, 512)
    assert _psnr(ref, out) > 40  # measured 52 dB; plain whole-tile blending gave 26 dB
    zt = vae.encode(x, tiled=True, tile=24).mean
    assert _rel(zt, z) < 0.05  # measured 0.019


@pytest.mark.parametrize(
    ("name", "res", "min_psnr"), [("test-tiny", 256, 40), ("test-kl", 512, 20)]
)
@pytest.mark.slow
def test_decode_out_of_memory_is_retried_in_tiles(name, res, min_psnr, astro, monkeypatch, caplog):
    vae = load_vae(name)
    z = vae.encode(astro[res]).mean
    ref = vae.decode(z)
    calls = inject(monkeypatch, vae.module.decoder, _oom())
    with caplog.at_level(logging.WARNING, logger="explorer.models.tiling"):
        out = vae.decode(z)
    assert calls[0] == (1, z.shape[1], res // 8, res // 8)  # the untiled call that failed
    assert all(c[-1] < res // 8 for c in calls[1:])  # KL: diffusers' tiles go through it too
    assert "retrying in tiles" in caplog.text
    assert out.shape == ref.shape and _psnr(ref, out) > min_psnr
    if name == "test-kl":
        assert not vae.module.use_tiling


def test_encode_out_of_memory_is_retried_in_tiles(astro, monkeypatch):
    vae = load_vae("test-tiny")
    x = torch.cat([astro[256], astro[256].flip(-1)])  # a batch: tiled one image at a time
    expected = vae.encode(x).mean
    inject(monkeypatch, vae.module.encoder, _oom())
    out = vae.encode(x).mean
    assert out.shape == expected.shape
    assert _rel(out, expected) < 0.05


def test_out_of_memory_in_tiles_too_shrinks_the_tiles_then_says_so(monkeypatch):
    vae = load_vae("test-kl")
    before = _settings(vae.module)
    z = torch.zeros(1, 4, 32, 32)
    calls = inject(monkeypatch, vae.module.decoder, _oom(), lambda i, x: True)
    with pytest.raises(ExplorerError, match="Out of memory while decoding with test-kl, even in"):
        vae.decode(z)
    assert [c[-1] for c in calls] == [32, 16, 8]  # whole, then tiles of 16, then of 8
    assert _settings(vae.module) == before  # diffusers' tiling switched off again


def test_out_of_memory_that_tiling_cannot_help_propagates(monkeypatch):
    vae = load_vae("test-tiny")
    inject(monkeypatch, vae.module.decoder, _oom(), lambda i, x: True)
    with pytest.raises(torch.cuda.OutOfMemoryError):  # 8x8 latents: for run_batched to halve
        vae.decode(torch.zeros(2, 4, 8, 8))
    with pytest.raises(torch.cuda.OutOfMemoryError):  # asked not to tile
        vae.decode(torch.zeros(1, 4, 32, 32), tiled=False)
    calls = inject(monkeypatch, vae.module.decoder, RuntimeError("boom"), lambda i, x: True)
    with pytest.raises(RuntimeError, match="boom"):  # other errors are never retried
        vae.decode(torch.zeros(1, 4, 32, 32))
    assert len(calls) == 1


# --------------------------------------------------------------------------- 2. offline


def test_uncached_model_offline_is_a_clear_error_and_the_app_keeps_working(
    client, astronaut, monkeypatch
):
    if hub.is_cached(registry.REGISTRY["taesd"]):
        pytest.skip("taesd is in this machine's Hugging Face cache")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    args = (handle_file(astronaut), "taesd", 256, "square", "", "shared")
    with pytest.raises(AppError, match=HINT):
        client.predict(*args, api_name="/encode")
    summary, *_ = client.predict(handle_file(astronaut), "test-tiny", *args[2:], api_name="/encode")
    assert "4×32×32" in summary
    with pytest.raises(AppError, match=HINT):  # the failure is not cached as a half-loaded model
        client.predict(*args, api_name="/encode")


def test_atlas_with_an_uncached_space_opens_without_it(app_url, monkeypatch):
    if hub.is_cached(registry.resolve("openai/clip-vit-base-patch32")):
        pytest.skip("CLIP is in this machine's Hugging Face cache")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    client = Client(app_url, verbose=False)
    out = client.predict(
        ["VAE", "CLIP"], "test-tiny", "clip-vit-b32", "test-dino", "test-vit", "pca", "",
        api_name="/atlas_bundled",
    )  # fmt: skip
    payload, status = json.loads(out[0]), out[1]
    assert [p["key"] for p in payload["panels"]] == ["vae"]
    assert "clip:clip-vit-b32" in status and "left out" in status and HINT in status


# --------------------------------------------------------------------------- 3. damaged cache


def _count_calls(module: torch.nn.Module) -> list[int]:
    """Batch sizes of every forward pass of ``module`` from now on (a real forward hook;
    removed by the module-scoped autouse fixture below)."""
    seen: list[int] = []

    def hook(_module, args, kwargs, _out):
        x = args[0] if args else kwargs.get("pixel_values", kwargs.get("sample"))
        seen.append(int(x.shape[0]))

    _HOOKS.append(module.register_forward_hook(hook, with_kwargs=True))
    return seen


_HOOKS: list = []


@pytest.fixture(autouse=True)
def _remove_hooks():
    yield
    while _HOOKS:
        _HOOKS.pop().remove()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "shard-is-a-file"])
def test_damaged_cache_is_recomputed_end_to_end(tmp_path, damage):
    images = [noise_image(i, (48, 40)) for i in range(5)]
    vae = load_vae("test-tiny")
    first = embeddings.embed("vae:test-tiny", images, cache=EmbeddingCache(tmp_path))
    (segment,) = tmp_path.rglob("*.vec")
    if damage == "truncate":
        segment.write_bytes(segment.read_bytes()[:-7])
    elif damage == "garbage":
        segment.write_bytes(b"not a segment at all" * 10)
    else:
        shutil.rmtree(segment.parent)
        segment.parent.write_bytes(b"")  # the shard's folder is now a file
    seen = _count_calls(vae.module.encoder)
    again = embeddings.embed("vae:test-tiny", images, cache=EmbeddingCache(tmp_path))
    assert sum(seen) == len(images)  # the model ran again on every image
    np.testing.assert_allclose(again, first, atol=1e-6)
    if damage != "shard-is-a-file":  # the damaged file was replaced by a good one
        seen.clear()
        embeddings.embed("vae:test-tiny", images, cache=EmbeddingCache(tmp_path))
        assert seen == []


# --------------------------------------------------------------------------- 4. half-done work


def test_atlas_build_failing_in_its_second_space_leaves_nothing_half_done(tmp_path, monkeypatch):
    images = [noise_image(i, (48, 40)) for i in range(6)]
    image_set = ImageSet("faults", images, ["a", "b"] * 3, [f"{i}.png" for i in range(6)])
    hashes = [embeddings.image_hash(im) for im in images]
    spaces = ["vae:test-tiny", "dino:test-dino", "vit:test-vit"]
    cache = EmbeddingCache(tmp_path)
    stored = atlas.STORE.ids()
    dino = embedders.load_embedder("test-dino")
    with monkeypatch.context() as mp:
        inject(mp, dino.model, RuntimeError("injected failure"), lambda i, x: True)
        with pytest.raises(RuntimeError, match="injected failure"):
            atlas.build(image_set, spaces, "pca", cache=cache)
    assert atlas.STORE.ids() == stored  # no partial atlas anywhere
    vae_key = embeddings.vae_cache_key(registry.resolve("test-tiny"))
    assert cache.get_many(vae_key, hashes)[1] == []  # the first space is complete
    for name in ("test-dino", "test-vit"):  # nothing at all for the failing and later spaces
        key = embedders.load_embedder(name).cache_key()
        assert cache.get_many(key, hashes)[1] == list(range(6))
    assert embedders.load_embedder("test-dino") is dino  # the model cache still serves it
    seen = _count_calls(load_vae("test-tiny").module.encoder)
    built = atlas.build(image_set, spaces, "pca", cache=cache)
    assert seen == []  # the first space came back from the cache
    assert [s.key for s in built.spaces] == ["vae", "dino", "vit"] and not built.failures
    np.testing.assert_allclose(built.embeddings["dino"], dino.embed_images(images), atol=1e-5)


def test_roundtrip_failing_in_decode_keeps_the_encoding_consistent(monkeypatch):
    vae = load_vae("test-tiny")
    image = noise_image(1234, (64, 64))
    x = imaging.to_tensor(imaging.prepare(image, 64))
    expected = vae.decode(vae.encode(x).mean)
    with monkeypatch.context() as mp:
        inject(mp, vae.module.decoder, RuntimeError("decoder broke"))
        with pytest.raises(RuntimeError, match="decoder broke"):
            lab.roundtrip(image, "test-tiny", 64)
    seen = _count_calls(vae.module.encoder)
    rt = lab.roundtrip(image, "test-tiny", 64)
    assert seen == []  # the encoding done before the failure was complete and is reused
    assert np.array_equal(np.asarray(rt.reconstruction), np.asarray(imaging.to_pil(expected)[0]))


def test_encode_failing_stores_nothing(monkeypatch):
    vae = load_vae("test-tiny")
    image = noise_image(4321, (64, 64))
    with monkeypatch.context() as mp:
        inject(mp, vae.module.encoder, RuntimeError("encoder broke"))
        with pytest.raises(RuntimeError, match="encoder broke"):
            lab.encode(image, "test-tiny", 64)
    seen = _count_calls(vae.module.encoder)
    enc = lab.encode(image, "test-tiny", 64)
    assert seen == [1]  # encoded now, not served from a half-made entry
    x = imaging.to_tensor(imaging.prepare(image, 64))
    torch.testing.assert_close(enc.posterior.mean, vae.encode(x).mean, atol=0, rtol=0)


def _write_tiny_pair(folder, prefix: str) -> None:
    model = taesd.TinyAutoencoder(taesd.TAEVariant(latent_channels=4, pool=False, width=8))
    torch.save(model.encoder.state_dict(), folder / f"{prefix}_encoder.pth")
    torch.save(model.decoder.state_dict(), folder / f"{prefix}_decoder.pth")


def test_a_corrupt_checkpoint_does_not_poison_the_model_cache(tmp_path):
    _write_tiny_pair(tmp_path, "bad")
    enc = tmp_path / "bad_encoder.pth"
    good = enc.read_bytes()
    enc.write_bytes(good[: len(good) // 2])  # a download cut short
    with pytest.raises(ModelUnavailableError, match="corrupt") as first:
        load_vae("local:bad", tmp_path)
    assert load_vae("test-tiny").decode(torch.zeros(1, 4, 2, 2)).shape == (1, 3, 16, 16)
    with pytest.raises(ModelUnavailableError) as again:
        load_vae("local:bad", tmp_path)
    assert str(again.value) == str(first.value)
    enc.write_bytes(good)  # fixed on disk: loads now, nothing stale was remembered
    vae = load_vae("local:bad", tmp_path)
    assert vae.latent_channels == 4
    assert vae.decode(torch.zeros(1, 4, 2, 2)).shape == (1, 3, 16, 16)


def test_a_corrupt_diffusers_folder_is_a_clear_error_every_time(tmp_path, tiny_kl_folder):
    folder = tmp_path / "broken-kl"
    shutil.copytree(tiny_kl_folder, folder)
    (weights,) = folder.glob("*.safetensors")
    weights.write_bytes(weights.read_bytes()[:1000])
    messages = []
    for _ in range(2):
        with pytest.raises(ModelUnavailableError, match="Could not load") as err:
            load_vae(str(folder))
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert load_vae(str(tiny_kl_folder)).latent_channels == 16
