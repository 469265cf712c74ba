"""A drawn digit (explorer.playground.drawing and the Autoencoders tab's sketchpad): read the way
scikit-learn's digits were made, checked on drawings whose answer is known -- a training digit
drawn big reads back as exactly itself, wherever and however large it is drawn -- and refused
with a sentence when the canvas holds no digit."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from explorer.playground import digits as pg
from explorer.playground import drawing as dr

INK = (0, 0, 0, 255)


def _counts() -> np.ndarray:
    return np.round(pg.digits()[0] * 16).astype(np.int64).reshape(-1, 8, 8)


def bitmap_of(counts: np.ndarray) -> np.ndarray:
    """(8,8) block counts -> a (32,32) bitmap with exactly those counts, each block's pixels
    taken nearest the digit's outer edge first (so the ink's bounding box is the blocks')."""
    rows, cols = np.flatnonzero(counts.sum(1)), np.flatnonzero(counts.sum(0))
    top, bottom, left, right = 4 * rows[0], 4 * rows[-1] + 3, 4 * cols[0], 4 * cols[-1] + 3
    out = np.zeros((32, 32), bool)
    for r, c in zip(*np.nonzero(counts), strict=True):
        cells = [(y, x) for y in range(4 * r, 4 * r + 4) for x in range(4 * c, 4 * c + 4)]
        cells.sort(key=lambda p: (min(p[0] - top, bottom - p[0], p[1] - left, right - p[1]), p))
        for y, x in cells[: counts[r, c]]:
            out[y, x] = True
    return out


def drawable() -> list[int]:
    """Training digits a NIST normalisation leaves as they are: 24 px wide from column 4 (block
    columns 1-6) and at least MIN_INK on-pixels (so no thickening)."""
    c = _counts()
    return [
        i
        for i in range(len(c))
        if list(np.flatnonzero(c[i].sum(0))[[0, -1]]) == [1, 6] and c[i].sum() >= dr.MIN_INK
    ]


def canvas_of(bitmap: np.ndarray, scale: int, size: int, at: tuple[int, int]) -> np.ndarray:
    """The bitmap drawn ``scale`` times bigger, black on a transparent ``size`` canvas at ``at``."""
    big = np.kron(bitmap, np.ones((scale, scale), bool))
    rgba = np.zeros((size, size, 4), np.uint8)
    y, x = at
    rgba[y : y + big.shape[0], x : x + big.shape[1]][big] = INK
    return rgba


@pytest.fixture(scope="module")
def models() -> dict[str, pg.Trained]:
    return {kind: pg.train(pg.TrainConfig(kind, epochs=3, codebook_size=8)) for kind in pg.MODELS}


def test_block_counts_are_the_on_pixels_of_each_4x4_block():
    bitmap = np.zeros((32, 32), bool)
    bitmap[0:4, 0:4] = True  # a full block: 16
    bitmap[5, 9] = bitmap[6, 10] = True  # two pixels of block (1, 2)
    counts = dr.block_counts(bitmap)
    assert counts[0, 0] == 16 and counts[1, 2] == 2 and counts.sum() == 18


@pytest.mark.parametrize("k", range(0, 60, 7))
def test_a_training_digit_drawn_big_reads_back_as_itself(k, models):
    """Training digit i drawn at 12x (and at 9x elsewhere on a bigger canvas) -> the same 8x8
    counts, so its nearest training digit is i itself (distance 0) and every model puts the star
    exactly on digit i's latent."""
    i = drawable()[k]
    x, labels = pg.digits()
    bitmap = bitmap_of(_counts()[i])
    assert (dr.block_counts(bitmap) == _counts()[i]).all()
    for canvas in (canvas_of(bitmap, 12, 420, (10, 20)), canvas_of(bitmap, 9, 500, (180, 3))):
        drawn = dr.to_digit(canvas)
        assert drawn.thickened == 0
        np.testing.assert_array_equal(drawn.counts, _counts()[i])
        dist = ((x - drawn.pixels.reshape(1, 64)) ** 2).sum(axis=1)
        assert dist.argmin() == i and dist[i] == 0.0
    for kind, trained in models.items():
        place = dr.place(trained, drawn.pixels)
        np.testing.assert_allclose(place.z, pg.encode(trained, x[i : i + 1])[0], atol=1e-6)
        assert place.nearest < 1e-5 and place.neighbours[0] == labels[i]
        if kind == "vq":
            zq, idx = pg.quantise(trained, place.z[None])
            assert place.code == int(idx[0]) and np.allclose(place.zq, zq[0])
        np.testing.assert_allclose(place.decoded, pg.decode(trained, place.zq[None])[0])


def test_black_on_white_reads_as_black_on_transparent():
    bitmap = bitmap_of(_counts()[drawable()[0]])
    rgba = canvas_of(bitmap, 10, 360, (20, 40))
    rgb = np.where(rgba[..., 3:] > 0, 0, 255).astype(np.uint8).repeat(3, axis=2)
    grey = rgb[..., 0]
    for other in (rgb, grey):
        np.testing.assert_array_equal(dr.to_digit(other).counts, dr.to_digit(rgba).counts)


def test_a_thin_mouse_line_is_thickened_to_the_training_digits_ink():
    im = Image.new("RGBA", (320, 320), (0, 0, 0, 0))
    ImageDraw.Draw(im).ellipse([100, 40, 220, 280], outline=INK, width=4)  # a thin zero
    drawn = dr.to_digit(np.asarray(im))
    ink = pg.digits()[0].sum(axis=1) * 16
    assert drawn.thickened >= 1
    assert ink.min() <= drawn.counts.sum() <= ink.max()
    assert drawn.counts.sum() >= dr.MIN_INK
    nearest = np.argsort(((pg.digits()[0] - drawn.pixels.reshape(1, 64)) ** 2).sum(axis=1))[:5]
    assert set(pg.digits()[1][nearest]) == {0}  # an ellipse is nearest to zeros


def test_the_spacing_is_the_95th_percentile_of_nearest_neighbour_distances(models):
    trained = models["ae"]
    z = pg.encode(trained)
    d = np.sqrt(((z[:, None] - z[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    scribble = np.random.default_rng(0).random((8, 8)).astype(np.float32)
    place = dr.place(trained, scribble)
    assert place.spacing == pytest.approx(np.percentile(d.min(axis=1), 95), rel=1e-6)
    assert place.far == (place.nearest > place.spacing)


def _dot(size: int = 320) -> np.ndarray:
    im = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(im).ellipse([150, 150, 165, 165], fill=INK)
    return np.asarray(im)


def _dash(size: int = 320) -> np.ndarray:
    im = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(im).line([40, 160, 280, 170], fill=INK, width=12)
    return np.asarray(im)


@pytest.mark.parametrize(
    "canvas, words",
    [
        (None, "Draw a digit"),
        (np.zeros((320, 320, 4), np.uint8), "The canvas is empty"),
        (np.full((320, 320, 3), 255, np.uint8), "The canvas is empty"),
        (_dot(), "a dot or a short stroke, not a digit yet"),
        (_dash(), "a dash, not a digit yet"),
        (np.zeros((4, 4, 2), np.uint8), "not an array of shape"),
    ],
    ids=["none", "transparent", "white", "dot", "dash", "shape"],
)
def test_a_canvas_without_a_digit_gets_a_sentence(canvas, words):
    with pytest.raises(dr.DrawingError, match=words):
        dr.to_digit(canvas)


# --------------------------------------------------------------------------- the tab


def test_the_tab_shows_a_star_and_a_decode_per_model(monkeypatch, models):
    import gradio as gr

    from explorer.ui.playground import handlers

    monkeypatch.setattr(handlers, "_train_all", lambda cfgs, progress: models)
    i = drawable()[3]
    canvas = canvas_of(bitmap_of(_counts()[i]), 10, 360, (10, 40))
    out = handlers.on_playground_draw(
        {"background": None, "layers": [canvas], "composite": canvas}, 1.0, 8, 3, 0
    )
    seen, scatters, decodes, note = out[0], out[1:4], out[4:7], out[7]
    assert seen.shape == (8 * 16 + 4, 8 * 16 + 4)  # the 8x8 digit, 16x, in a 2 px frame
    x = pg.digits()[0]
    for trained, fig, decoded in zip(models.values(), scatters, decodes, strict=True):
        star = next(t for t in fig.data if t.name == "your drawing")
        z = pg.encode(trained, x[i : i + 1])[0]
        np.testing.assert_allclose([star.x[0], star.y[0]], z, atol=1e-5)
        assert decoded.shape == seen.shape
    digit = int(np.argmax(pg.classify(x[i : i + 1])[0]))
    assert f"reads as a **{digit}**" in note and "code #" in note
    assert handlers.sketch_canvas({"composite": None, "layers": [canvas]}).shape == canvas.shape
    with pytest.raises(gr.Error, match="The canvas is empty"):
        handlers.on_playground_draw(
            {"background": None, "layers": [], "composite": np.zeros((320, 320, 4), np.uint8)},
            1.0,
            8,
            3,
            0,
        )


def test_the_sketchpad_measures_images_before_decoding_them(tmp_path):
    import gradio as gr
    from gradio.components.image_editor import EditorData
    from gradio.data_classes import FileData

    from explorer.ui.components import SafeSketchpad

    pad = SafeSketchpad(type="numpy")
    small, huge = tmp_path / "small.png", tmp_path / "huge.png"
    Image.new("RGBA", (64, 64)).save(small)
    Image.new("L", (SafeSketchpad.MAX_SIDE + 1, 8)).save(huge)
    ok = pad.preprocess(EditorData(composite=FileData(path=str(small)), layers=[]))
    assert ok["composite"].shape == (64, 64, 4)
    with pytest.raises(gr.Error, match="at most 2048 pixels a side"):
        pad.preprocess(EditorData(composite=FileData(path=str(huge)), layers=[]))
    many = [FileData(path=str(small))] * (SafeSketchpad.MAX_LAYERS + 1)
    with pytest.raises(gr.Error, match="at most 4 layers"):
        pad.preprocess(EditorData(composite=FileData(path=str(small)), layers=many))
    assert pad.get_block_name() == "imageeditor"
