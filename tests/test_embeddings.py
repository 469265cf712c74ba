"""Embedders (CLIP / DINOv2 / ViT), the VAE as an embedding, and the one `embed` entry point.

Every check runs the real (tiny, seeded, random) transformers / diffusers models and compares
with what transformers itself computes; nothing under test is mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from explorer.core.errors import ExplorerError, ModelUnavailableError, UnknownModelError
from explorer.images import io as imaging
from explorer.models import embedders, registry
from explorer.models.vae import load_vae
from explorer.spaces import baselines
from explorer.spaces import embed as embeddings
from tests.helpers import ROOT, noise_image

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    """Mixed sizes and modes, as a folder of real images would have."""
    sizes = [(40, 50), (64, 48), (33, 33), (80, 40), (50, 70)]
    ims = [noise_image(i, s) for i, s in enumerate(sizes)]
    return [*ims, noise_image(9, (48, 48), "L")]


def _normalise(x: torch.Tensor) -> np.ndarray:
    return F.normalize(x.float(), dim=-1).numpy()


@torch.no_grad()
def _reference_tokens(emb: embedders.Embedder, ims) -> torch.Tensor:
    return emb.model(**emb.processor(images=ims, return_tensors="pt")).last_hidden_state


# --------------------------------------------------------------------------- exact semantics


@torch.no_grad()
def test_clip_image_embedding_is_normalised_get_image_features(images):
    emb = embedders.load_embedder("test-clip")
    out = emb.embed_images(images)
    ref = emb.model.get_image_features(**emb.processor(images=images, return_tensors="pt"))
    assert out.shape == (len(images), 16) and out.dtype == np.float32
    np.testing.assert_allclose(out, _normalise(ref.pooler_output), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


@torch.no_grad()
def test_clip_text_embedding_is_normalised_get_text_features():
    emb = embedders.load_embedder("test-clip")
    texts = ["a photo of a cat", "A DOG", "ünïcödé, punctuation!?", "x"]
    out = emb.embed_texts(texts)
    tokens = emb.tokenizer(texts, padding=True, return_tensors="pt")
    ref = emb.model.get_text_features(**tokens).pooler_output
    assert out.shape == (4, 16) and out.dtype == np.float32
    np.testing.assert_allclose(out, _normalise(ref), atol=1e-5)
    # lower-casing in the CLIP tokenizer: same text features
    np.testing.assert_allclose(out[1], emb.embed_texts(["a dog"])[0], atol=1e-6)
    assert emb.embed_texts([]).shape == (0, 16)


@pytest.mark.parametrize("name", ["test-dino", "test-vit"])
def test_only_clip_embeds_text(name):
    with pytest.raises(ExplorerError, match="only CLIP"):
        embedders.load_embedder(name).embed_texts(["a cat"])


@pytest.mark.parametrize("pooling", ["cls", "mean", "cls+mean"])
def test_dino_pooling_matches_last_hidden_state(images, pooling):
    emb = embedders.load_embedder("test-dino")
    tokens = _reference_tokens(emb, images)  # (N, 1 + 4 patches, 32), after the final layernorm
    assert tokens.shape == (len(images), 5, 32)
    expected = {
        "cls": tokens[:, 0],
        "mean": tokens[:, 1:].mean(dim=1),
        "cls+mean": torch.cat([tokens[:, 0], tokens[:, 1:].mean(dim=1)], dim=-1),
    }[pooling]
    out = emb.embed_images(images, pooling=pooling)
    np.testing.assert_allclose(out, _normalise(expected), atol=1e-5)
    assert out.shape[1] == emb.dim(pooling)


def test_dino_default_pooling_is_cls_and_poolings_differ(images):
    emb = embedders.load_embedder("test-dino")
    cls = emb.embed_images(images)
    np.testing.assert_allclose(cls, emb.embed_images(images, pooling="cls"), atol=0)
    assert not np.allclose(cls, emb.embed_images(images, pooling="mean"), atol=1e-3)
    with pytest.raises(ExplorerError, match="cannot pool"):
        emb.embed_images(images, pooling="max")


def test_vit_is_normalised_cls_token(images):
    emb = embedders.load_embedder("test-vit")
    out = emb.embed_images(images)
    rgb = [im.convert("RGB") for im in images]  # ViT's own processor would refuse the "L" one
    np.testing.assert_allclose(out, _normalise(_reference_tokens(emb, rgb)[:, 0]), atol=1e-5)
    assert out.shape == (len(images), 32)


def test_embedding_does_not_depend_on_the_rest_of_the_batch(images):
    emb = embedders.load_embedder("test-dino")
    one = emb.embed_images(images, batch_size=1)
    np.testing.assert_allclose(emb.embed_images(images, batch_size=64), one, atol=1e-5)
    np.testing.assert_allclose(emb.embed_images(images[2:4], batch_size=3), one[2:4], atol=1e-5)
    assert emb.embed_images([]).shape == (0, 32)


def test_progress_reports_fractions_up_to_one(images):
    seen = []
    embedders.load_embedder("test-vit").embed_images(
        images, batch_size=4, progress=lambda f, d: seen.append((f, d))
    )
    assert [f for f, _ in seen] == pytest.approx([4 / 6, 1.0])
    assert all(isinstance(d, str) and d for _, d in seen)


# --------------------------------------------------------------------------- out of memory


def _flaky_forward(monkeypatch, module: torch.nn.Module, exc: BaseException, over: int = 2):
    """Make ``module.forward`` raise ``exc`` once on a batch larger than ``over``."""
    original, batches, raised = module.forward, [], []

    def forward(*args, **kwargs):
        batches.append(kwargs["pixel_values"].shape[0])
        if batches[-1] > over and not raised:
            raised.append(True)
            raise exc
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "forward", forward)
    return batches


@pytest.mark.parametrize(
    "exc",
    [
        torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)"),
        RuntimeError("MPS backend out of memory (injected)"),
    ],
    ids=["cuda-oom", "runtime-oom"],
)
def test_out_of_memory_halves_the_batch_and_gives_the_same_result(images, monkeypatch, exc):
    emb = embedders.load_embedder("test-dino")
    expected = emb.embed_images(images, batch_size=1)
    batches = _flaky_forward(monkeypatch, emb.model, exc)
    out = emb.embed_images(images, batch_size=4)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert batches == [4, 2, 2, 2]  # failed at 4, then the smaller size is kept


def test_out_of_memory_at_batch_one_is_a_user_error(images, monkeypatch):
    emb = embedders.load_embedder("test-vit")
    _flaky_forward(monkeypatch, emb.model, torch.cuda.OutOfMemoryError("oom"), over=0)
    with pytest.raises(ExplorerError, match="even one image at a time"):
        emb.embed_images(images[:1])


def test_other_errors_are_not_retried(images, monkeypatch):
    emb = embedders.load_embedder("test-vit")
    batches = _flaky_forward(monkeypatch, emb.model, ValueError("boom"), over=0)
    with pytest.raises(ValueError, match="boom"):
        emb.embed_images(images, batch_size=4)
    assert batches == [4]


# --------------------------------------------------------------------------- VAE as embedding


@pytest.mark.parametrize(("name", "channels"), [("test-kl", 4), ("test-kl16", 16)])
def test_vae_embedding_shapes_and_values(images, name, channels):
    vae = load_vae(name)
    flat = embeddings.vae_embedding(vae, images)
    assert flat.shape == (len(images), channels * 8 * 8) and flat.dtype == np.float32
    # exactly the scaled posterior mean of the 64x64 centre crop
    x = imaging.to_tensor(imaging.prepare(images[3], 64, "square"))
    np.testing.assert_allclose(flat[3], vae.encode(x).mean.flatten().numpy(), atol=1e-5)
    grid = flat.reshape(len(images), channels, 64)
    mean = embeddings.vae_embedding(vae, images, pooling="channel-mean")
    np.testing.assert_allclose(mean, grid.mean(axis=2), atol=1e-5)
    meanstd = embeddings.vae_embedding(vae, images, pooling="channel-meanstd", batch_size=2)
    assert meanstd.shape == (len(images), 2 * channels)
    np.testing.assert_allclose(meanstd[:, :channels], grid.mean(axis=2), atol=1e-5)
    np.testing.assert_allclose(meanstd[:, channels:], grid.std(axis=2), atol=1e-5)
    # not normalised, and the batch size does not matter
    assert not np.allclose(np.linalg.norm(flat, axis=1), 1.0)
    np.testing.assert_allclose(embeddings.vae_embedding(vae, images, batch_size=1), flat, atol=1e-5)


def test_vae_embedding_resolution_and_errors(images):
    vae = load_vae("test-kl")
    assert embeddings.vae_embedding(vae, images[:2], resolution=128).shape == (2, 4 * 16 * 16)
    with pytest.raises(ExplorerError, match="resolution"):
        embeddings.vae_embedding(vae, images[:1], resolution=30)
    with pytest.raises(ExplorerError, match="pooling"):
        embeddings.vae_embedding(vae, images[:1], pooling="max")


# --------------------------------------------------------------------------- one entry point


def test_parse_space():
    # the tiny models are registered and nothing else is cached: they are the defaults
    assert embeddings.parse_space("clip") == ("clip", "test-clip")
    assert embeddings.parse_space(" DINO ") == ("dino", "test-dino")
    assert embeddings.parse_space("vae") == ("vae", registry.default_vae())
    assert embeddings.parse_space("vae:") == ("vae", registry.default_vae())
    assert embeddings.parse_space("clip:clip-vit-l14") == ("clip", "clip-vit-l14")
    assert embeddings.parse_space("dino:facebook/dinov2-base") == ("dino", "facebook/dinov2-base")
    assert embeddings.parse_space("vae:local:taef2") == ("vae", "local:taef2")
    assert embeddings.parse_space("dinov2-small") == ("dino", "dinov2-small")
    assert embeddings.parse_space("sdxl-vae") == ("vae", "sdxl-vae")
    for family in embeddings.FAMILIES:  # a bare family name means a model usable now
        if family in embeddings.CONTROLS:  # no model: computed from the pixels (below)
            continue
        assert registry.is_usable(embeddings.parse_space(family)[1]), family
    for family in embeddings.CONTROLS:  # one form each, bare or named
        model = baselines.MODELS[family]
        assert embeddings.parse_space(family) == (family, model)
        assert embeddings.parse_space(f" {family.upper()}:{model}") == (family, model)
        with pytest.raises(ExplorerError, match="one form"):
            embeddings.parse_space(f"{family}:other")
    for bad in ["", "nonsense", "siglip:google/siglip", ":clip"]:
        with pytest.raises(ExplorerError, match="Unknown embedding space"):
            embeddings.parse_space(bad)


def test_embed_matches_each_family(images):
    np.testing.assert_array_equal(
        embeddings.embed("dino", images), embedders.load_embedder("test-dino").embed_images(images)
    )
    np.testing.assert_array_equal(
        embeddings.embed("clip:test-clip", images),
        embedders.load_embedder("test-clip").embed_images(images),
    )
    vae = embeddings.embed("vae:test-kl", images, pooling="channel-mean")
    np.testing.assert_allclose(
        vae, embeddings.vae_embedding(load_vae("test-kl"), images, pooling="channel-mean")
    )
    mean = embeddings.embed("dino", images, pooling="mean")
    np.testing.assert_allclose(
        mean, embedders.load_embedder("test-dino").embed_images(images, pooling="mean")
    )
    assert embeddings.embed("vit", []).shape == (0, 0)


def test_embed_rejects_mismatched_family_and_bad_hashes(images):
    with pytest.raises(ExplorerError, match="is a dino model, not clip"):
        embeddings.embed("clip:test-dino", images)
    with pytest.raises(ExplorerError, match="cannot pool"):
        embeddings.embed("clip", images, pooling="mean")
    with pytest.raises(ValueError, match="hashes"):
        embeddings.embed("dino", images, hashes=["a"])


def test_image_hash_is_content_addressed(images):
    im = images[0]
    assert embeddings.image_hash(im) == embeddings.image_hash(im.copy())
    assert len(embeddings.image_hash(im)) == 64
    changed = im.copy()
    changed.putpixel((0, 0), tuple(255 - v for v in im.getpixel((0, 0))))
    assert embeddings.image_hash(changed) != embeddings.image_hash(im)
    assert embeddings.image_hash(im.convert("RGBA")) != embeddings.image_hash(im)
    assert embeddings.image_hash(im.resize((50, 40))) != embeddings.image_hash(im.resize((40, 50)))
    p1 = im.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    p2 = p1.copy()
    p2.putpalette([255 - v for v in p1.getpalette()])
    assert embeddings.image_hash(p1) != embeddings.image_hash(p2)


# --------------------------------------------------------------------------- registry / loading


def test_registry_and_defaults():
    assert registry.EMBEDDERS["clip-vit-b32"].repo_id == "openai/clip-vit-base-patch32"
    assert registry.EMBEDDERS["clip-vit-l14"].repo_id == "openai/clip-vit-large-patch14"
    assert registry.EMBEDDERS["dinov2-small"].repo_id == "facebook/dinov2-small"
    assert registry.EMBEDDERS["vit-b16"].repo_id == "google/vit-base-patch16-224"
    assert registry.default_embedders() == ["clip-vit-b32", "dinov2-small"]
    assert set(registry.default_embedders()) <= set(registry.default_models())
    assert registry.available_embedders("dino") == ["dinov2-small", "dinov2-base", "test-dino"]
    assert registry.resolve_embedder("facebook/dinov2-small") is registry.EMBEDDERS["dinov2-small"]
    with pytest.raises(UnknownModelError, match="family"):
        registry.available_embedders("siglip")


def test_resolve_embedder_errors(tmp_path):
    with pytest.raises(UnknownModelError, match=r"clip-vit-b32.*dinov2-small"):
        registry.resolve_embedder("no such model")
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(UnknownModelError, match="'bert' model"):
        registry.resolve_embedder(str(tmp_path / "bert"))
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(UnknownModelError, match=r"not a folder with a config\.json"):
        registry.resolve_embedder(str(tmp_path / "weights.bin"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with pytest.raises(ModelUnavailableError, match="Could not read"):
        registry.resolve_embedder(str(tmp_path / "broken"))
    # (that an unregistered "test-clip" is unknown: tests/test_registry.py, in a process of its own)


def test_local_folders_load_through_from_pretrained(tmp_path, images):
    """save_pretrained folders (safetensors) load with the real loaders, offline."""
    import transformers as tf

    clip = embedders.load_embedder("test-clip")
    folder = tmp_path / "clip"
    clip.model.save_pretrained(folder)
    clip.processor.save_pretrained(folder)
    clip.tokenizer.save_pretrained(folder)
    assert not list(folder.glob("*.bin")) and list(folder.glob("*.safetensors"))
    local = embedders.load_embedder(str(folder))
    assert local.spec.family == "clip" and local.revision.startswith("local-")
    np.testing.assert_allclose(local.embed_images(images), clip.embed_images(images), atol=1e-6)
    np.testing.assert_allclose(local.embed_texts(["a cat"]), clip.embed_texts(["a cat"]), atol=1e-6)
    assert embedders.embedder_cache_key(str(folder)) == local.cache_key()

    # a ViT *classifier* checkpoint (like google/vit-base-patch16-224) loads as its backbone
    torch.manual_seed(1)
    config = tf.ViTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        image_size=32, patch_size=8, num_labels=3,
    )  # fmt: skip
    classifier = tf.ViTForImageClassification(config).eval()
    folder = tmp_path / "vit"
    classifier.save_pretrained(folder)
    embedders.load_embedder("test-vit").processor.save_pretrained(folder)
    vit = embedders.load_embedder(str(folder))
    with torch.no_grad():
        pixels = vit.processor(images=[im.convert("RGB") for im in images], return_tensors="pt")[
            "pixel_values"
        ]
        ref = classifier.vit(pixel_values=pixels).last_hidden_state[:, 0]
    np.testing.assert_allclose(vit.embed_images(images), _normalise(ref), atol=1e-5)


def test_cache_key_without_loading_matches_loaded(images):
    for name in ["test-clip", "test-dino", "test-vit"]:
        assert embedders.embedder_cache_key(name) == embedders.load_embedder(name).cache_key()
    key = embedders.embedder_cache_key("test-dino", pooling="mean")
    assert key[:3] == ("dino", "test-dino", "test") and "pooling=mean" in key[3]


@pytest.mark.slow
def test_offline_and_uncached_points_to_the_download_command(tmp_path):
    """With an empty Hugging Face cache and no network, every path says what to run."""
    script = textwrap.dedent(
        """
        from PIL import Image
        from explorer.models import download, embedders, registry
        from explorer.spaces import baselines
        from explorer.spaces import embed as embeddings
        from explorer.core.errors import ModelUnavailableError

        im = Image.new("RGB", (8, 8))
        calls = {
            "load clip-vit-b32": lambda: embedders.load_embedder("clip-vit-b32"),
            "load hub id": lambda: embedders.load_embedder("facebook/dinov2-base"),
            "resolve unnamed hub id": lambda: registry.resolve_embedder("someone/some-model"),
            "embed": lambda: embeddings.embed("clip:clip-vit-b16", [im]),
            "download": lambda: download.download(["dinov2-small"], log=lambda s: None),
        }
        for what, call in calls.items():
            try:
                call()
                print(what, "-> no error")
            except ModelUnavailableError as exc:
                print(what, "->", "HINT" if "python -m explorer download" in str(exc) or
                      what == "download" else "NO HINT", "|", str(exc)[:300])
        """
    )
    env = dict(
        os.environ,
        HF_HOME=str(tmp_path / "hf"),
        HF_HUB_OFFLINE="1",
        PYTHONPATH=str(ROOT),
    )
    env.pop("HF_HUB_CACHE", None)
    env.pop("EXPLORER_PLUGINS", None)  # the registry's models only
    run = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [ln for ln in run.stdout.splitlines() if "->" in ln]
    assert len(lines) == 5, run.stdout + run.stderr[-2000:]
    for line in lines:
        assert "-> HINT" in line, line
    assert "Could not download" in lines[-1]


def test_controls_embed_through_the_cache_under_their_version(images, tmp_path, monkeypatch):
    """A control space is its baseline features, stored under a key naming its recipe's
    version: a second embed reads every row back and computes nothing."""
    from explorer.spaces.cache import EmbeddingCache

    cache = EmbeddingCache(tmp_path)
    for family in embeddings.CONTROLS:
        got = embeddings.embed(family, images, cache=cache)
        np.testing.assert_array_equal(got, baselines.baseline_features(family, images))
        key = embeddings.control_cache_key(family)
        assert key[2] == baselines.BASELINES[family].version
        found, missing = cache.get_many(key, [embeddings.image_hash(im) for im in images])
        assert len(found) == len(images) and not missing

    def boom(name, ims):
        raise AssertionError("computed again")

    monkeypatch.setattr(baselines, "baseline_features", boom)
    again = embeddings.embed("texture", images, cache=cache)
    assert again.shape == (len(images), baselines.BASELINES["texture"].dims)
