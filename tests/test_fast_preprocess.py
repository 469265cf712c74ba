"""The fast preprocessing against the Hugging Face PIL-backend image processors it stands for.

Pillow's resize reproduced with matrix products (``images.resample``), the CPU and device ways
to ``pixel_values`` (``images.preprocess``) and the embedders that use them, each compared with
the library's own call on the same images: pixels equal to the bit, embeddings by cosine, and
the teaching set's neighbour lists."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers as tf
from PIL import Image

from explorer.analysis import metrics
from explorer.core import pool
from explorer.images import preprocess, resample
from explorer.models import embedders
from explorer.models.registry import EmbedderSpec

FILTERS = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}

# the preprocessor_config.json parameters of the real models, built in code (no Hub)
REAL = {
    "openai/clip-vit-base-patch32": lambda: tf.CLIPImageProcessorPil(
        size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}, resample=3
    ),
    "facebook/dinov2-small": lambda: tf.BitImageProcessorPil(
        size={"shortest_edge": 256},
        crop_size={"height": 224, "width": 224},
        resample=3,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ),
    "google/vit-base-patch16-224": lambda: tf.ViTImageProcessorPil(
        size={"height": 224, "width": 224}, resample=2, image_mean=[0.5] * 3, image_std=[0.5] * 3
    ),
}


def _photo(h: int, w: int, seed: int) -> Image.Image:
    """Smooth colour ramps with noise: both the flat areas and the edges a resize rounds."""
    rng = np.random.default_rng(seed)
    ramp = np.cumsum(rng.integers(-4, 5, (h, w, 3)), axis=1) + rng.integers(40, 200, 3)
    return Image.fromarray(np.clip(ramp, 0, 255).astype(np.uint8))


def _images() -> list[Image.Image]:
    """Landscape, portrait, square, tiny (smaller than the crops: padded), extreme aspect."""
    sizes = [(96, 160), (300, 190), (224, 224), (50, 40), (20, 330), (257, 256), (31, 600)]
    return [_photo(h, w, i) for i, (h, w) in enumerate(sizes)]


@pytest.mark.parametrize("name", list(FILTERS))
@pytest.mark.parametrize(
    "src, dst",
    [((60, 80), (30, 41)), ((37, 29), (90, 70)), ((64, 64), (64, 17)), ((40, 50), (13, 50))],
)
def test_resize_u8_is_pillows_resize_pixel_for_pixel(name, src, dst):
    """Down, up, one axis only (Pillow skips the other pass), for every filter."""
    im = _photo(*src, seed=sum(src))
    want = np.asarray(im.resize((dst[1], dst[0]), FILTERS[name]))
    x = torch.from_numpy(np.array(im)).permute(2, 0, 1)[None]
    f = int(FILTERS[name])
    by = resample.band([src[0]], [dst[0]], [dst[0]], f)
    bx = resample.band([src[1]], [dst[1]], [dst[1]], f)
    got = resample.resize_u8(x, by, bx)[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(got.astype(np.uint8), want)


def test_same_size_is_the_identity():
    w = resample.weights(33, 33, int(Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(w, np.eye(33, dtype=np.int64) << resample.PRECISION_BITS)


DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("model", list(REAL))
def test_both_ways_give_the_processors_pixel_values_exactly(model, device):
    processor = REAL[model]()
    recipe = embedders.recipe_for(processor)
    assert recipe is not None
    images = _images()
    want = processor(images=images, return_tensors="pt")["pixel_values"]
    cpu = preprocess.pixel_values(images, recipe)
    device_way = preprocess.pixel_values_on(
        preprocess.pack(images, recipe), recipe, device, torch.float32
    )
    assert cpu.shape == want.shape == (len(images), 3, 224, 224)
    assert torch.equal(cpu, want)
    assert torch.equal(device_way.cpu(), want)


def test_a_batch_of_mixed_sizes_matches_one_image_at_a_time():
    recipe = embedders.recipe_for(REAL["facebook/dinov2-small"]())
    images = _images()
    packed = preprocess.pack(images, recipe)
    for i, (h, w) in enumerate(packed.sizes):  # what lies past an image's own size is not read
        packed.pixels[i, h:] = 255
        packed.pixels[i, :, w:] = 255
    whole = preprocess.pixel_values_on(packed, recipe, "cpu", torch.float32)
    for i, im in enumerate(images):
        one = preprocess.pixel_values_on(
            preprocess.pack([im], recipe), recipe, "cpu", torch.float32
        )
        assert torch.equal(one[0], whole[i])


def test_images_too_big_for_the_device_are_resized_by_pillow_first():
    recipe = embedders.recipe_for(REAL["openai/clip-vit-base-patch32"]())
    wide, tall, small = _photo(40, 9000, seed=3), _photo(3000, 300, seed=4), _photo(50, 60, 5)
    packed = preprocess.pack([wide, tall, small], recipe)
    assert packed.resized == [True, True, False]  # longer side past DEVICE_MAX_SIDE
    want = REAL["openai/clip-vit-base-patch32"]()(images=[wide, tall, small], return_tensors="pt")
    got = preprocess.pixel_values_on(packed, recipe, "cpu", torch.float32)
    assert torch.equal(got, want["pixel_values"])


def test_processors_the_recipe_cannot_hold_are_left_to_themselves():
    clip = tf.CLIPImageProcessorPil
    assert embedders.recipe_for(clip(do_pad=True)) is None
    assert embedders.recipe_for(clip(size={"shortest_edge": 224, "longest_edge": 300})) is None
    assert embedders.recipe_for(tf.ConvNextImageProcessorPil()) is None  # crop_pct, another class
    assert embedders.recipe_for(object()) is None
    plain = embedders.recipe_for(clip(do_center_crop=False, size={"height": 20, "width": 30}))
    assert plain is not None and plain.fixed_output == (20, 30)


# --------------------------------------------------------------------------- embeddings


def _vision(family: str, image_size: int, patch: int) -> torch.nn.Module:
    small = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
    torch.manual_seed(0)
    if family == "clip":
        text = dict(small, intermediate_size=64, vocab_size=99, max_position_embeddings=16)
        vision = dict(small, intermediate_size=64, image_size=image_size, patch_size=patch)
        return tf.CLIPModel(
            tf.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
        )
    return tf.Dinov2Model(tf.Dinov2Config(**small, image_size=image_size, patch_size=patch))


def _reference(emb: embedders.Embedder, images: list[Image.Image]) -> np.ndarray:
    """The library's own path: processor, model, the same pooling, L2-normalised."""
    px = emb.processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        if emb.family == "clip":
            out = emb.model.get_image_features(pixel_values=px).pooler_output
        else:
            out = emb.model(pixel_values=px).last_hidden_state[:, 0]
    return torch.nn.functional.normalize(out.float(), dim=-1).numpy()


def _embedder(family: str, processor: object, model: torch.nn.Module) -> embedders.Embedder:
    spec = EmbedderSpec(f"real-config {family}", family, None, "random weights")
    cpu = torch.device("cpu")
    return embedders.Embedder(spec, model.eval(), processor, None, cpu, torch.float32, "test")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    return (a * (b / np.linalg.norm(b, axis=1, keepdims=True))).sum(axis=1)


@pytest.mark.parametrize("name", ["test-clip", "test-dino"])
def test_tiny_embedders_match_processor_plus_model(name):
    emb = embedders.load_embedder(name, "cpu")
    assert emb.recipe is not None
    images = _images()
    got, want = emb.embed_images(images, batch_size=3), _reference(emb, images)
    assert _cosines(got, want).min() >= 0.999
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize(
    "family, model, side, patch",
    [("clip", "openai/clip-vit-base-patch32", 224, 32), ("dino", "facebook/dinov2-small", 224, 14)],
)
def test_real_preprocessing_configs_match_processor_plus_model(family, model, side, patch):
    emb = _embedder(family, REAL[model](), _vision(family, side, patch))
    images = _images()
    got, want = emb.embed_images(images, batch_size=4), _reference(emb, images)
    assert _cosines(got, want).min() >= 0.999
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("name", ["test-clip", "test-dino"])
def test_teaching_set_neighbour_lists_are_identical(name):
    from explorer.datasets import teaching_set

    emb = embedders.load_embedder(name, "cpu")
    images = teaching_set().images
    fast, ref = emb.embed_images(images), _reference(emb, images)
    fi, fs = metrics.neighbour_lists(fast, 10)
    ri, rs = metrics.neighbour_lists(ref, 10)
    np.testing.assert_array_equal(fi, ri)
    np.testing.assert_allclose(fs, rs, atol=1e-6)


# --------------------------------------------------------------------------- the pools


def test_imap_ordered_keeps_order_and_a_bounded_window():
    taken = []

    def items():
        for i in range(50):
            taken.append(i)
            yield i

    seen = []
    for out in pool.imap_ordered(lambda i: i * i, items(), threads=3, ahead=2):
        seen.append(out)
        assert len(taken) - len(seen) <= 3 * 2  # never more than the window in flight
    assert seen == [i * i for i in range(50)]


def test_imap_ordered_raises_at_the_failing_item():
    def fn(i):
        if i == 7:
            raise ValueError("seven")
        return i

    got = []
    with pytest.raises(ValueError, match="seven"):
        for v in pool.imap_ordered(fn, range(20), threads=4):
            got.append(v)
    assert got == list(range(7))


def test_ahead_returns_what_was_started_and_computes_the_rest():
    calls = []

    def fn(a, b):
        calls.append((a, b))
        return list(range(a, b))

    ahead = pool.Ahead(fn)
    try:
        ahead.start(4, 8)
        assert ahead.take(4, 8) == [4, 5, 6, 7]
        ahead.start(8, 12)
        assert ahead.take(8, 10) == [8, 9]  # another range (a halved batch): computed here
    finally:
        ahead.close()
    assert calls.count((4, 8)) == 1 and (8, 10) in calls


def test_a_folder_decodes_the_same_on_threads_and_reads_the_settings_once(tmp_path, monkeypatch):
    from explorer import datasets
    from explorer.core import settings
    from tests.image_files import make_tree, noise_png

    members = {
        f"{c}/{i:02d}.png": noise_png(seed=10 * k + i, size=40 + i)
        for k, c in enumerate("ab")
        for i in range(12)
    }
    root = make_tree(tmp_path / "set", members)
    monkeypatch.setattr(pool, "workers", lambda limit=16: 1)
    one = datasets.from_folder(root)
    reads = []
    real_get = settings.get
    monkeypatch.setattr(settings, "get", lambda: reads.append(1) or real_get())
    monkeypatch.setattr(pool, "workers", lambda limit=16: 4)
    many = datasets.from_folder(root)
    assert many.paths == one.paths and many.keys == one.keys
    assert all(
        np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(one.images, many.images, strict=True)
    )
    assert (
        len(reads) < 10
    )  # once for the set's limits, a few for the set's own rules: not per image
