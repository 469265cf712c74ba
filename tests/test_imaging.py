"""Tests for explorer.images.io: robust loading (over tests/corpus.py), geometry, conversions."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from corpus import CASE_NAMES, EXIF_SIZE, CorpusCase, build_corpus
from PIL import Image, ImageFile

from explorer.core.errors import BadImageError
from explorer.core.settings import SettingsError
from explorer.images import io as imaging
from explorer.images.io import example_images, load_image, prepare, to_numpy_hwc, to_pil, to_tensor
from explorer.images.pictures import INFERNO_LUT, error_heatmap, hstack, save_gif


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CorpusCase]:
    return build_corpus(tmp_path_factory.mktemp("corpus"))


def _case(corpus: dict[str, CorpusCase], name: str) -> CorpusCase:
    if name not in corpus:
        pytest.skip(f"{name} not built here (codec missing from this Pillow build)")
    return corpus[name]


def _assert_user_message(exc: BadImageError) -> None:
    msg = str(exc)
    assert msg.endswith("."), msg
    assert msg[0].isupper(), msg
    assert "Traceback" not in msg
    assert len(msg) > 30, msg
    # the few words an image set's summary shows for a skipped file, given where it was raised
    assert exc.short and exc.short != msg and len(exc.short) <= 50, exc.short
    assert not exc.short.endswith(".") and not exc.short[0].isupper(), exc.short


def _rgb(im: Image.Image, xy: tuple[int, int]) -> np.ndarray:
    return np.asarray(im, dtype=np.int16)[xy[1], xy[0]]


# --------------------------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------------------------


def test_corpus_has_required_cases(corpus: dict[str, CorpusCase]) -> None:
    required = {
        "truncated_jpeg": "refuse",
        "truncated_png": "refuse",
        "decompression_bomb": "refuse",
        "png16": "ok",
        "cmyk_jpeg": "ok",
        "palette_alpha_png": "ok",
        "rgba_png": "ok",
        "la_png": "ok",
        "animated_gif": "ok",
        "exif_rotated_jpeg": "ok",
        "tiny_1x1": "ok",
        "wide_20000x10": "ok",
        "grayscale_png": "ok",
        "bw_1bit_png": "ok",
        "text_as_jpg": "refuse",
        "html_as_jpg": "refuse",
        "svg_as_jpg": "refuse",
        "empty_file": "refuse",
        "random_bytes": "refuse",
    }
    for name, expect in required.items():
        assert corpus[name].expect == expect, name
        assert corpus[name].path.is_file(), name
    assert set(corpus) <= set(CASE_NAMES)
    assert corpus["decompression_bomb"].path.stat().st_size < 200_000


@pytest.mark.parametrize("name", CASE_NAMES)
def test_corpus_case(corpus: dict[str, CorpusCase], name: str) -> None:
    case = _case(corpus, name)
    if case.expect == "refuse":
        with pytest.raises(BadImageError) as info:
            load_image(case.path)
        _assert_user_message(info.value)
        # bytes input takes the same route as a path
        with pytest.raises(BadImageError):
            load_image(case.path.read_bytes())
        return
    im = load_image(case.path)
    assert isinstance(im, Image.Image)
    assert im.mode == "RGB"
    assert np.asarray(im).dtype == np.uint8
    assert load_image(case.path.read_bytes()).tobytes() == im.tobytes()
    assert load_image(str(case.path)).size == im.size
    sq = prepare(im, 64, "square")
    assert sq.size == (64, 64) and sq.mode == "RGB"
    fit = prepare(im, 64, "fit")
    assert max(fit.size) == 64 and fit.width % 8 == 0 and fit.height % 8 == 0


def test_png16_keeps_its_gradient(corpus: dict[str, CorpusCase]) -> None:
    with Image.open(corpus["png16"].path) as raw:
        assert raw.mode.startswith("I")  # really a 16-bit file
    g = np.asarray(load_image(corpus["png16"].path), dtype=np.float64)[:, :, 0]
    assert g[:, 0].max() <= 2  # left column dark
    assert g[:, -1].min() >= 253  # right column bright
    assert 100 < g[:, g.shape[1] // 2].mean() < 156  # middle is mid-grey, not white
    assert np.all(np.diff(g[0]) >= 0)  # monotonic
    assert (g == 255).mean() < 0.05  # not clipped to white


@pytest.mark.parametrize("name", ["palette_alpha_png", "rgba_png"])
def test_transparent_pixels_become_white(corpus: dict[str, CorpusCase], name: str) -> None:
    im = load_image(corpus[name].path)
    w, h = im.size
    assert tuple(_rgb(im, (1, h // 2))) == (255, 255, 255)  # transparent black -> white
    assert tuple(_rgb(im, (w - 2, h // 2))) == (255, 0, 0)  # opaque red stays red


def test_la_transparent_white_opaque_black(corpus: dict[str, CorpusCase]) -> None:
    im = load_image(corpus["la_png"].path)
    assert tuple(_rgb(im, (1, 1))) == (255, 255, 255)
    assert tuple(_rgb(im, (im.width - 2, 1))) == (0, 0, 0)


def test_half_alpha_blends_with_white() -> None:
    rgba = Image.new("RGBA", (4, 4), (0, 0, 255, 128))
    px = _rgb(load_image(rgba), (0, 0))
    assert abs(int(px[0]) - 127) <= 2 and abs(int(px[1]) - 127) <= 2 and px[2] == 255


def test_exif_rotation_swaps_dims(corpus: dict[str, CorpusCase]) -> None:
    w, h = EXIF_SIZE
    with Image.open(corpus["exif_rotated_jpeg"].path) as raw:
        assert raw.size == (w, h)
    im = load_image(corpus["exif_rotated_jpeg"].path)
    assert im.size == (h, w)
    top, bottom = _rgb(im, (h // 2, 2)), _rgb(im, (h // 2, w - 3))
    assert top[0] > 200 and top[2] < 60  # red half on top (rotated 90 degrees clockwise)
    assert bottom[2] > 200 and bottom[0] < 60


@pytest.mark.parametrize("name", ["animated_gif", "animated_webp", "animated_png"])
def test_animation_gives_first_frame(corpus: dict[str, CorpusCase], name: str) -> None:
    case = _case(corpus, name)
    with Image.open(case.path) as raw:
        assert getattr(raw, "n_frames", 1) == 3
    arr = np.asarray(load_image(case.path), dtype=np.int16)
    assert np.abs(arr - np.array([255, 0, 0])).max() <= 3  # red, the first frame


def test_cmyk_loads_to_plausible_rgb(corpus: dict[str, CorpusCase]) -> None:
    with Image.open(corpus["cmyk_jpeg"].path) as raw:
        assert raw.mode == "CMYK"
    im = load_image(corpus["cmyk_jpeg"].path)
    cyan, paper = _rgb(im, (4, 16)), _rgb(im, (27, 16))
    assert cyan[0] < 60 and cyan[1] > 190 and cyan[2] > 190
    assert paper.min() > 230


def test_one_bit_and_grayscale(corpus: dict[str, CorpusCase]) -> None:
    bw = load_image(corpus["bw_1bit_png"].path)
    assert tuple(_rgb(bw, (1, 1))) == (0, 0, 0) and tuple(_rgb(bw, (30, 1))) == (255, 255, 255)
    g = np.asarray(load_image(corpus["grayscale_png"].path))
    assert np.array_equal(g[:, :, 0], g[:, :, 1]) and np.array_equal(g[:, :, 1], g[:, :, 2])
    assert g[0, 0, 0] == 0 and g[0, -1, 0] == 252


def test_bomb_refused_from_header(
    corpus: dict[str, CorpusCase], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args, **kwargs):
        raise AssertionError("decoded pixel data of a bomb")

    # Even with Pillow's own guard turned off, the header check refuses before any decode.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    monkeypatch.setattr(Image.Image, "load", boom)
    monkeypatch.setattr(ImageFile.ImageFile, "load", boom)
    with pytest.raises(BadImageError, match="too large") as info:
        load_image(corpus["decompression_bomb"].path)
    _assert_user_message(info.value)


# --------------------------------------------------------------------------------------------
# Limits and other inputs
# --------------------------------------------------------------------------------------------


def test_max_pixels_argument_and_env(
    corpus: dict[str, CorpusCase], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = corpus["cmyk_jpeg"].path  # 32x32 = 1024 pixels
    with pytest.raises(BadImageError, match="too large"):
        load_image(path, max_pixels=1000)
    assert load_image(path, max_pixels=1024).size == (32, 32)
    assert imaging.max_pixels() == 40_000_000
    monkeypatch.setenv("EXPLORER_MAX_PIXELS", "1000")
    assert imaging.max_pixels() == 1000
    with pytest.raises(BadImageError, match="too large"):
        load_image(path)
    with pytest.raises(BadImageError, match="too large"):
        load_image(np.zeros((40, 40, 3), np.uint8))
    with pytest.raises(BadImageError, match="too large"):
        load_image(Image.new("RGB", (40, 40)))
    monkeypatch.setenv("EXPLORER_MAX_PIXELS", "not-a-number")
    with pytest.raises(SettingsError, match="EXPLORER_MAX_PIXELS='not-a-number'"):
        imaging.max_pixels()


def test_max_file_size_env(corpus: dict[str, CorpusCase], monkeypatch: pytest.MonkeyPatch) -> None:
    assert imaging.max_file_bytes() == 50 * 1024 * 1024
    path = corpus["progressive_jpeg"].path  # noise: ~2.7 KB
    assert path.stat().st_size > 2000
    monkeypatch.setenv("EXPLORER_MAX_FILE_MB", "0.001")  # ~1 KB
    for source in (path, path.read_bytes()):
        with pytest.raises(BadImageError, match="too large") as info:
            load_image(source)
        _assert_user_message(info.value)


def test_missing_path_and_folder(tmp_path: Path) -> None:
    for source in (tmp_path / "nope.png", str(tmp_path / "nope.png"), tmp_path):
        with pytest.raises(BadImageError) as info:
            load_image(source)
        _assert_user_message(info.value)
    with pytest.raises(BadImageError, match="web address"):
        load_image("https://example.com/cat.jpg")


def test_messages_name_the_problem(corpus: dict[str, CorpusCase]) -> None:
    def message(name: str) -> str:
        with pytest.raises(BadImageError) as info:
            load_image(corpus[name].path)
        return str(info.value)

    assert "text" in message("text_as_jpg")
    assert "HTML" in message("html_as_jpg")
    assert "SVG" in message("svg_as_jpg")
    assert "empty" in message("empty_file")
    assert "incomplete" in message("truncated_png")


def test_type_error_for_wrong_source() -> None:
    with pytest.raises(TypeError):
        load_image(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.full((3, 5), 7, np.uint8), (7, 7, 7)),
        (np.full((3, 5, 3), (1, 2, 3), np.uint8), (1, 2, 3)),
        (np.full((3, 5, 1), 9, np.uint8), (9, 9, 9)),
        (np.full((3, 5, 4), (255, 0, 0, 0), np.uint8), (255, 255, 255)),
        (np.full((3, 5, 4), (255, 0, 0, 255), np.uint8), (255, 0, 0)),
        (np.full((3, 5), 65535, np.uint16), (255, 255, 255)),
        (np.full((3, 5, 3), 32768, np.uint16), (128, 128, 128)),
        (np.full((3, 5, 3), 0.5, np.float32), (128, 128, 128)),
        (np.full((3, 5, 3), 2.0, np.float64), (255, 255, 255)),
        (np.ones((3, 5), bool), (255, 255, 255)),
    ],
)
def test_numpy_inputs(array: np.ndarray, expected: tuple[int, int, int]) -> None:
    im = load_image(array)
    assert im.mode == "RGB" and im.size == (5, 3)
    assert tuple(_rgb(im, (0, 0))) == expected


def test_bad_numpy_shape() -> None:
    with pytest.raises(BadImageError) as info:
        load_image(np.zeros((2, 3, 5, 3), np.uint8))
    _assert_user_message(info.value)


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I", "F"])
def test_high_bit_depth_pil_modes(mode: str) -> None:
    ramp = np.linspace(0, 65535, 64)
    if mode == "F":
        ramp = ramp / 65535.0
    if mode == "I;16B":
        im = Image.frombytes(mode, (64, 1), ramp.astype(">u2").tobytes())
    else:
        dtype = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
        im = Image.fromarray(np.atleast_2d(ramp.astype(dtype)), mode=mode)
    assert im.mode == mode
    g = np.asarray(load_image(im))[0, :, 0]
    assert g[0] == 0 and g[-1] == 255 and 120 <= g[32] <= 136


def test_float_beyond_unit_range_is_minmax_scaled() -> None:
    im = Image.fromarray(np.array([[-1000.0, 0.0, 1000.0]], np.float32), mode="F")
    assert list(np.asarray(load_image(im))[0, :, 0]) == [0, 128, 255]


def test_pil_input_not_mutated() -> None:
    src = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    out = load_image(src)
    assert src.mode == "RGBA" and out is not src
    rgb = Image.new("RGB", (4, 4), (1, 2, 3))
    assert load_image(rgb) is not rgb


# --------------------------------------------------------------------------------------------
# prepare
# --------------------------------------------------------------------------------------------

SIZES = [(1, 1), (7, 13), (13, 7), (8, 8), (20000, 10), (10, 20000), (640, 480), (333, 517)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("resolution", [64, 512])
def test_prepare_shapes(size: tuple[int, int], resolution: int) -> None:
    im = Image.new("RGB", size, (10, 120, 230))
    sq = prepare(im, resolution, "square")
    assert sq.size == (resolution, resolution) and sq.mode == "RGB"

    fit = prepare(im, resolution, "fit")
    fw, fh = fit.size
    assert fw % 8 == 0 and fh % 8 == 0 and min(fw, fh) >= 8
    assert max(fw, fh) == resolution
    w, h = size
    scale = resolution / max(w, h)
    for got, orig in ((fw, w), (fh, h)):
        ideal = orig * scale
        # cropped down to a multiple of 8 (loses < 8 px + rounding), or raised to 8 when tiny
        assert got == 8 if ideal < 8 else ideal - 8.5 < got <= ideal + 0.5
    # flat colour stays flat
    assert np.abs(np.asarray(fit, np.int16) - (10, 120, 230)).max() <= 1


def test_prepare_fit_keeps_aspect() -> None:
    im = Image.new("RGB", (1280, 720))
    assert prepare(im, 512, "fit").size == (512, 288)
    assert prepare(Image.new("RGB", (720, 1280)), 512, "fit").size == (288, 512)
    assert prepare(Image.new("RGB", (600, 400)), 64, "fit").size == (64, 40)


def test_prepare_square_is_centre_crop() -> None:
    im = Image.new("RGB", (300, 100), (255, 0, 0))
    im.paste((0, 255, 0), (100, 0, 200, 100))  # green centre square
    arr = np.asarray(prepare(im, 64, "square"), np.int16)
    # LANCZOS reads a little past the crop box, so allow faint ringing at the very edge
    assert np.abs(arr[:, 2:-2] - (0, 255, 0)).max() <= 2
    assert np.abs(arr - (0, 255, 0)).max() <= 16


def test_prepare_converts_other_modes() -> None:
    assert prepare(Image.new("RGBA", (20, 20), (0, 0, 0, 0)), 64).getpixel((0, 0)) == (
        255,
        255,
        255,
    )


@pytest.mark.parametrize("resolution", [0, 56, 60, 100, 2056, 4096, -64, 512.0, True, "512"])
def test_prepare_bad_resolution(resolution) -> None:
    with pytest.raises(ValueError):
        prepare(Image.new("RGB", (10, 10)), resolution)


def test_prepare_bad_mode() -> None:
    with pytest.raises(ValueError):
        prepare(Image.new("RGB", (10, 10)), 64, "stretch")


def test_prepare_extreme_aspect_is_cheap() -> None:
    out = prepare(Image.new("RGB", (20000, 10)), 2048, "fit")
    assert out.size == (2048, 8)


# --------------------------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------------------------


def _random_rgb(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), mode="RGB")


def test_to_tensor_shape_dtype_range() -> None:
    imgs = [_random_rgb(24, 16, s) for s in range(3)]
    t = to_tensor(imgs)
    assert t.shape == (3, 3, 16, 24) and t.dtype == torch.float32 and t.is_contiguous()
    assert t.min() >= 0 and t.max() <= 1
    single = to_tensor(imgs[0])
    assert single.shape == (1, 3, 16, 24)
    assert torch.equal(single[0], t[0])
    assert torch.equal(
        t[0, :, 2, 5], torch.tensor(np.asarray(imgs[0])[2, 5], dtype=torch.float32) / 255
    )


def test_to_tensor_errors() -> None:
    with pytest.raises(ValueError):
        to_tensor([])
    with pytest.raises(ValueError):
        to_tensor([Image.new("RGB", (8, 8)), Image.new("RGB", (8, 16))])


def test_round_trip_is_exact() -> None:
    imgs = [_random_rgb(33, 17, s) for s in range(4)]
    back = to_pil(to_tensor(imgs))
    assert len(back) == len(imgs)
    for a, b in zip(imgs, back, strict=True):
        assert b.mode == "RGB" and a.tobytes() == b.tobytes()
    # every uint8 value survives
    values = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16), mode="L").convert(
        "RGB"
    )
    assert to_pil(to_tensor(values))[0].tobytes() == values.tobytes()


def test_to_pil_inputs() -> None:
    x = torch.tensor([-1.0, 0.5, 2.0, float("nan")]).reshape(1, 1, 1, 4).expand(2, 3, 1, 4)
    out = to_pil(x)
    assert len(out) == 2 and out[0].size == (4, 1)
    assert list(np.asarray(out[0])[0, :, 0]) == [0, 128, 255, 0]
    chw = to_pil(np.full((3, 5, 7), 0.25, np.float32))
    assert len(chw) == 1 and chw[0].size == (7, 5) and chw[0].getpixel((0, 0)) == (64, 64, 64)
    half = to_pil(torch.full((1, 3, 2, 2), 1.0, dtype=torch.float16, requires_grad=True))
    assert half[0].getpixel((1, 1)) == (255, 255, 255)
    with pytest.raises(ValueError):
        to_pil(torch.zeros(2, 4, 8, 8))
    with pytest.raises(ValueError):
        to_pil(torch.zeros(8, 8))


def test_to_numpy_hwc() -> None:
    im = _random_rgb(9, 5, 0)
    a = to_numpy_hwc(im)
    assert a.shape == (5, 9, 3) and a.dtype == np.float64
    assert a.min() >= 0 and a.max() <= 1
    assert np.allclose(a * 255, np.asarray(im))
    assert to_numpy_hwc(Image.new("L", (3, 2), 255)).shape == (2, 3, 3)


# --------------------------------------------------------------------------------------------
# Visual helpers
# --------------------------------------------------------------------------------------------


def test_error_heatmap_identical_is_uniform_minimum() -> None:
    im = _random_rgb(32, 24, 1)
    hm = error_heatmap(im, im.copy())
    assert hm.mode == "RGB" and hm.size == im.size
    arr = np.asarray(hm)
    assert np.all(arr == INFERNO_LUT[0])


def test_error_heatmap_difference_is_brighter() -> None:
    a = _random_rgb(40, 30, 2)
    b_arr = np.asarray(a).copy()
    b_arr[10:20, 10:20] = 255 - b_arr[10:20, 10:20]
    b = Image.fromarray(b_arr)
    hm = np.asarray(error_heatmap(a, b), np.float64)
    lum = hm @ np.array([0.2126, 0.7152, 0.0722])
    inside = lum[10:20, 10:20].mean()
    outside = np.delete(lum.reshape(-1), np.ravel_multi_index(np.mgrid[10:20, 10:20], lum.shape))
    assert inside > outside.max() + 50
    fixed = np.asarray(error_heatmap(a, b, vmax=1.0))
    assert np.all(fixed[0, 0] == INFERNO_LUT[0])


def test_error_heatmap_errors() -> None:
    with pytest.raises(ValueError):
        error_heatmap(Image.new("RGB", (4, 4)), Image.new("RGB", (4, 5)))
    with pytest.raises(ValueError):
        error_heatmap(Image.new("RGB", (4, 4)), Image.new("RGB", (4, 4)), vmax=0)


def test_inferno_lut_is_monotonic_in_lightness() -> None:
    assert INFERNO_LUT.shape == (256, 3) and INFERNO_LUT.dtype == np.uint8
    lum = INFERNO_LUT.astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722])
    assert np.all(np.diff(lum) > -1.5)
    assert lum[-1] > 200 and lum[0] < 5


def test_hstack() -> None:
    a = Image.new("RGB", (10, 20), (255, 0, 0))
    b = Image.new("RGB", (20, 10), (0, 0, 255))  # resized to 40x20
    c = Image.new("L", (5, 20), 0)
    strip = hstack([a, b, c], gap=4, background=(0, 255, 0))
    assert strip.mode == "RGB" and strip.size == (10 + 4 + 40 + 4 + 5, 20)
    assert strip.getpixel((5, 10)) == (255, 0, 0)
    assert strip.getpixel((12, 10)) == (0, 255, 0)  # gap in background colour
    assert strip.getpixel((30, 10)) == (0, 0, 255)
    assert strip.getpixel((60, 10)) == (0, 0, 0)
    assert hstack([a], gap=0).size == (10, 20)
    with pytest.raises(ValueError):
        hstack([])


@pytest.mark.parametrize(
    ("n", "boomerang", "expected"),
    [(3, True, 4), (3, False, 3), (5, True, 8), (1, True, 1), (2, True, 2)],
)
def test_save_gif(tmp_path: Path, n: int, boomerang: bool, expected: int) -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    frames = [Image.new("RGB", (16, 12), colours[i]) for i in range(n)]
    out = save_gif(frames, tmp_path / "sub" / "anim.gif", fps=10, boomerang=boomerang)
    assert out == tmp_path / "sub" / "anim.gif" and out.is_file()
    assert [p.name for p in out.parent.iterdir()] == ["anim.gif"]  # no temp file left
    with Image.open(out) as gif:
        assert gif.format == "GIF" and gif.size == (16, 12)
        assert getattr(gif, "n_frames", 1) == expected
        if expected > 1:
            assert gif.info.get("loop") == 0
            assert gif.info.get("duration") == 100
        seen = []
        for i in range(expected):
            gif.seek(i)
            seen.append(gif.convert("RGB").getpixel((8, 6)))
    order = list(range(n)) + (list(range(n - 2, 0, -1)) if boomerang else [])
    assert seen == [colours[i] for i in order]


def test_save_gif_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        save_gif([], tmp_path / "a.gif")
    with pytest.raises(ValueError):
        save_gif([Image.new("RGB", (4, 4))], tmp_path / "a.gif", fps=0)
    with pytest.raises(ValueError):
        save_gif([Image.new("RGB", (4, 4)), Image.new("RGB", (4, 5))], tmp_path / "a.gif")


def test_example_images() -> None:
    ex = example_images()
    assert set(ex) >= {"astronaut", "chelsea", "coffee", "rocket"}
    for name, path in ex.items():
        assert path.is_file() and path.stem == name
        im = load_image(path)
        assert im.size == (512, 512) and im.mode == "RGB"
        with Image.open(path) as raw:
            assert raw.format == "JPEG"


def test_loaded_image_is_detached_from_file(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(path)
    im = load_image(path)
    path.unlink()  # works on every OS only if no handle is left open
    assert im.getpixel((0, 0)) == (1, 2, 3)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    assert buf.tell() > 0
