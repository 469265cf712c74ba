"""The weight-free control spaces (explorer.spaces.baselines): shapes, ranges, determinism, and
constructed image pairs that each space tells apart, or not, as designed."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from explorer.spaces.baselines import BASELINES, baseline_features

RED, BLUE, GREEN, YELLOW = (255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 255, 0)


def halves(left, right, size: int = 256) -> Image.Image:
    """Left half one colour, right half another."""
    a = np.empty((size, size, 3), np.uint8)
    a[:, : size // 2], a[:, size // 2 :] = left, right
    return Image.fromarray(a)


def stripes(size: int = 256, width: int = 8) -> Image.Image:
    """Vertical black and white stripes ``width`` pixels wide (mean grey 127.5)."""
    row = ((np.arange(size) // width) % 2 * 255).astype(np.uint8)
    return Image.fromarray(np.repeat(np.tile(row, (size, 1))[:, :, None], 3, axis=2))


def grey(value: int = 128, size: int = 256) -> Image.Image:
    return Image.new("RGB", (size, size), (value,) * 3)


def dist(name: str, a: Image.Image, b: Image.Image) -> float:
    f = baseline_features(name, [a, b])
    return float(np.linalg.norm(f[0] - f[1]))


def test_shapes_ranges_and_metadata():
    rng = np.random.default_rng(0)
    images = [
        Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)),
        Image.fromarray(rng.integers(0, 256, (40, 25, 4), dtype=np.uint8), "RGBA"),
        Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8), "L"),
        Image.new("P", (30, 30)),
        Image.new("RGB", (5, 9), (10, 20, 30)),  # smaller than every working size
    ]
    dims = {"pixels": 768, "colour": 128, "texture": 1764}
    assert list(BASELINES) == list(dims)
    for name, d in dims.items():
        f = baseline_features(name, images)
        assert f.shape == (len(images), d) and f.dtype == np.float32
        assert BASELINES[name].dims == d and BASELINES[name].version
        assert "alone give" in BASELINES[name].description
        assert np.isfinite(f).all() and f.min() >= 0.0 and f.max() <= 1.0
    np.testing.assert_allclose(baseline_features("colour", images).sum(axis=1), 1.0, atol=1e-6)
    assert baseline_features("pixels", []).shape == (0, 768)


def test_pixels_are_the_box_downsampled_image():
    im = halves(RED, BLUE)
    f = baseline_features("pixels", [im])[0].reshape(16, 16, 3)
    np.testing.assert_array_equal(f[:, :8], np.broadcast_to([1.0, 0.0, 0.0], (16, 8, 3)))
    np.testing.assert_array_equal(f[:, 8:], np.broadcast_to([0.0, 0.0, 1.0], (16, 8, 3)))


def test_transparency_is_composited_on_white():
    clear = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    np.testing.assert_array_equal(baseline_features("pixels", [clear]), np.ones((1, 768)))


def test_each_baseline_separates_the_constructed_pairs_as_designed():
    scene = halves(RED, BLUE)
    turned = scene.rotate(90)  # same colours, different layout (the edge turns horizontal)
    recoloured = halves(GREEN, YELLOW)  # same layout, different colours

    # colour: blind to layout, sees the palette
    assert dist("colour", scene, turned) == 0.0
    assert dist("colour", scene, recoloured) > 0.5

    # texture: blind to hue at the same layout, sees the edge's direction
    far = dist("texture", scene, turned)
    assert far > 1.0
    assert dist("texture", scene, recoloured) < 0.05 * far

    # pixels: sees layout and colour, blind to detail finer than 1/16 of the image
    assert dist("pixels", scene, turned) > 10.0 and dist("pixels", scene, recoloured) > 10.0
    fine, flat = stripes(), grey(128)
    assert dist("pixels", fine, flat) < 0.05
    assert dist("texture", fine, flat) > 1.0  # where texture sees the stripes


def test_deterministic_and_order_independent():
    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 256, (96, 80, 3), dtype=np.uint8)) for _ in range(4)]
    for name in BASELINES:
        a = baseline_features(name, images)
        b = baseline_features(name, [im.copy() for im in images])
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(baseline_features(name, images[::-1]), a[::-1])


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="pixels, colour, texture"):
        baseline_features("edges", [grey()])
    with pytest.raises(ValueError, match="not an image"):
        baseline_features("pixels", [np.zeros((4, 4, 3))])
