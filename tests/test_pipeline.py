"""explorer.pipeline with the tiny seeded test models, on the bundled example photos."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from explorer import imaging, metrics, pipeline
from explorer.errors import ExplorerError

RES = 64  # small: the test models are random, only the plumbing matters here


def _arr(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB"))


def test_roundtrip_test_kl(astronaut):
    rt = pipeline.roundtrip(astronaut, "test-kl", RES)
    assert rt.original.size == rt.reconstruction.size == rt.error.size == (RES, RES)
    np.testing.assert_array_equal(_arr(rt.original), _arr(pipeline.prepare_input(astronaut, RES)))
    a, b = imaging.to_numpy_hwc(rt.original), imaging.to_numpy_hwc(rt.reconstruction)
    assert math.isfinite(rt.psnr) and math.isfinite(rt.ssim)
    assert rt.psnr == pytest.approx(metrics.psnr(a, b), rel=1e-12)
    assert rt.ssim == pytest.approx(metrics.ssim(a, b), rel=1e-12)
    assert -1 <= rt.ssim < 1
    assert rt.ratio == 48.0
    assert rt.model == "test-kl" and rt.source == "mean"
    assert rt.encode_s >= 0 and rt.decode_s >= 0
    row = rt.row()
    assert row["PSNR (dB)"] == round(rt.psnr, 2) and row["compression"] == "48.0×"
    assert "PSNR" in pipeline.roundtrip_summary(rt)


def test_roundtrip_decodes_the_posterior_mean(astronaut):
    enc = pipeline.encode(astronaut, "test-kl16", RES)
    expected = imaging.to_pil(enc.vae.decode(enc.posterior.mean))[0]
    rt = pipeline.roundtrip(astronaut, "test-kl16", RES)
    np.testing.assert_array_equal(_arr(rt.reconstruction), _arr(expected))
    assert rt.ratio == 12.0


def test_sample_differs_from_mean_for_a_kl_vae(astronaut):
    mean = pipeline.roundtrip(astronaut, "test-kl", RES, source="mean")
    s1 = pipeline.roundtrip(astronaut, "test-kl", RES, source="sample", seed=1)
    s1b = pipeline.roundtrip(astronaut, "test-kl", RES, source="sample", seed=1)
    s2 = pipeline.roundtrip(astronaut, "test-kl", RES, source="sample", seed=2)
    assert s1.source == "sample"
    assert not np.array_equal(_arr(s1.reconstruction), _arr(mean.reconstruction))
    assert np.array_equal(_arr(s1.reconstruction), _arr(s1b.reconstruction))
    assert not np.array_equal(_arr(s1.reconstruction), _arr(s2.reconstruction))


def test_sample_equals_mean_for_a_deterministic_model(astronaut):
    mean = pipeline.roundtrip(astronaut, "test-tiny", RES, source="mean")
    sample = pipeline.roundtrip(astronaut, "test-tiny", RES, source="sample", seed=1)
    assert sample.source == "mean"  # reported as what was actually decoded
    np.testing.assert_array_equal(_arr(sample.reconstruction), _arr(mean.reconstruction))
    assert sample.psnr == mean.psnr


def test_generations(astronaut):
    images, psnrs, ssims = pipeline.generations(astronaut, "test-kl", 3, RES)
    assert len(images) == len(psnrs) == len(ssims) == 3
    assert all(im.size == (RES, RES) for im in images)
    assert all(math.isfinite(p) for p in psnrs)
    # generation 1 is a single round trip
    first = pipeline.roundtrip(astronaut, "test-kl", RES)
    np.testing.assert_array_equal(_arr(images[0]), _arr(first.reconstruction))
    assert psnrs[0] == pytest.approx(first.psnr, rel=1e-12)
    # generation 2 is the round trip of generation 1 (from its float decode, so compare loosely)
    ref = imaging.to_numpy_hwc(pipeline.prepare_input(astronaut, RES))
    assert psnrs[1] == pytest.approx(metrics.psnr(ref, imaging.to_numpy_hwc(images[1])))
    progress = []
    pipeline.generations(astronaut, "test-tiny", 2, RES, progress=lambda f, d: progress.append(f))
    assert progress[-1] == 1.0 and progress == sorted(progress)


@pytest.mark.parametrize("n", [0, 51])
def test_generations_bounds(astronaut, n):
    with pytest.raises(ExplorerError, match="between 1 and 50"):
        pipeline.generations(astronaut, "test-tiny", n, RES)


@pytest.mark.parametrize("method", ["slerp", "lerp"])
def test_interpolate(examples, method):
    a_path, b_path = examples["astronaut"], examples["coffee"]
    steps = 4
    res = pipeline.interpolate(a_path, b_path, "test-kl", steps, method, RES)
    assert len(res.frames) == len(res.crossfade) == steps
    assert all(f.size == (RES, RES) for f in res.frames + res.crossfade)
    enc_a = pipeline.encode(a_path, "test-kl", RES)
    enc_b = pipeline.encode(b_path, "test-kl", RES)
    decoded_a = imaging.to_pil(enc_a.vae.decode(enc_a.posterior.mean))[0]
    decoded_b = imaging.to_pil(enc_b.vae.decode(enc_b.posterior.mean))[0]
    np.testing.assert_array_equal(_arr(res.frames[0]), _arr(decoded_a))
    np.testing.assert_array_equal(_arr(res.frames[-1]), _arr(decoded_b))
    assert not np.array_equal(_arr(res.frames[1]), _arr(res.frames[0]))
    # the pixel crossfade starts at A and ends at B
    np.testing.assert_array_equal(_arr(res.crossfade[0]), _arr(enc_a.image))
    np.testing.assert_array_equal(_arr(res.crossfade[-1]), _arr(enc_b.image))
    # endpoint PSNRs are those of the decoded endpoints against the inputs
    assert res.endpoint_psnr[0] == pytest.approx(
        metrics.psnr(imaging.to_numpy_hwc(enc_a.image), imaging.to_numpy_hwc(decoded_a))
    )
    # the GIF holds the frames (a boomerang: a, b, c, d, c, b)
    with Image.open(res.gif) as gif:
        assert gif.format == "GIF" and gif.size == (RES, RES)
        assert gif.n_frames == 2 * steps - 2
        frames = [_arr(f).astype(np.float64) for f in res.frames]
        for k in range(gif.n_frames):
            gif.seek(k)
            shown = np.asarray(gif.convert("RGB"), np.float64)
            errors = [np.abs(shown - f).mean() for f in frames]  # palette quantisation: ~6/255
            expected = k if k < steps else 2 * steps - 2 - k
            assert int(np.argmin(errors)) == expected and errors[expected] < 12, (k, errors)
    with Image.open(res.crossfade_gif) as gif:
        assert gif.format == "GIF" and gif.n_frames == 2 * steps - 2
    assert res.strip.height == RES and res.strip.width >= steps * RES
    assert res.crossfade_strip.size == res.strip.size


def test_interpolate_errors(astronaut):
    with pytest.raises(ExplorerError, match="second image"):
        pipeline.interpolate(astronaut, None, "test-tiny", 4, "slerp", RES)
    with pytest.raises(ExplorerError, match="between 2 and 64"):
        pipeline.interpolate(astronaut, astronaut, "test-tiny", 1, "slerp", RES)
    with pytest.raises(ExplorerError, match="lerp or slerp"):
        pipeline.interpolate(astronaut, astronaut, "test-tiny", 4, "cubic", RES)


def test_edit_that_changes_nothing(astronaut):
    ed = pipeline.edit(astronaut, "test-kl", 1, "scale", 1.0, resolution=RES)
    assert ed.psnr_vs_baseline == math.inf
    np.testing.assert_array_equal(_arr(ed.baseline), _arr(ed.edited))
    np.testing.assert_array_equal(ed.channel_before, ed.channel_after)


def test_edit_zero_channel(astronaut):
    ed = pipeline.edit(astronaut, "test-kl", 2, "zero", resolution=RES)
    enc = pipeline.encode(astronaut, "test-kl", RES)
    np.testing.assert_array_equal(ed.channel_before, enc.latent[2])
    assert ed.channel_after.shape == (RES // 8, RES // 8) and not ed.channel_after.any()
    assert math.isfinite(ed.psnr_vs_baseline)
    assert ed.baseline.size == ed.edited.size == ed.difference.size == (RES, RES)
    base = imaging.to_pil(enc.vae.decode(enc.posterior.mean))[0]
    np.testing.assert_array_equal(_arr(ed.baseline), _arr(base))


def test_edit_bad_channel_is_a_user_error(astronaut):
    with pytest.raises(ExplorerError, match="Pick a channel between 0 and 3"):
        pipeline.edit(astronaut, "test-kl", 4, "zero", resolution=RES)
    with pytest.raises(ExplorerError, match="Pick a channel between 0 and 15"):
        pipeline.edit(astronaut, "test-kl16", 16, "zero", resolution=RES)


@pytest.mark.parametrize(
    ("model", "channels", "ratio"),
    [("test-kl", 4, "48.0×"), ("test-kl16", 16, "12.0×"), ("test-tiny", 4, "48.0×")],
)
def test_encode_view(astronaut, model, channels, ratio):
    enc = pipeline.encode(astronaut, model, RES)
    view = pipeline.encode_view(enc)
    assert set(view) == {"summary", "grid", "stats", "histogram", "std", "preview"}
    assert ratio in view["summary"]
    assert f"{channels}×{RES // 8}×{RES // 8}" in view["summary"]
    assert len(view["stats"]) == channels
    assert len(view["grid"].data) == channels
    assert view["preview"].size == (RES, RES)
    std_traces = [t for t in view["std"].data if t.type == "heatmap"]
    assert len(std_traces) == (1 if enc.posterior.std is not None else 0)
    per_channel = pipeline.encode_view(enc, shared_scale=False)["grid"]
    assert sum(bool(t.showscale) for t in per_channel.data) == channels


def test_encode_is_cached_per_model_and_size(astronaut):
    a = pipeline.encode(astronaut, "test-tiny", RES).posterior
    assert pipeline.encode(astronaut, "test-tiny", RES).posterior is a
    assert pipeline.encode(astronaut, "test-kl", RES).posterior is not a
    assert pipeline.encode(astronaut, "test-tiny", 2 * RES).posterior is not a


def test_fit_mode_keeps_the_aspect_ratio(tmp_path):
    path = tmp_path / "wide.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (150, 300, 3), dtype=np.uint8)).save(path)
    rt = pipeline.roundtrip(path, "test-tiny", 128, "fit")
    assert rt.original.size == rt.reconstruction.size == (128, 64)
    assert pipeline.roundtrip(path, "test-tiny", 128, "square").original.size == (128, 128)
    view = pipeline.encode_view(pipeline.encode(path, "test-tiny", 128, "fit"))
    assert "4×8×16" in view["summary"]


def test_prepare_input_errors(astronaut):
    with pytest.raises(ExplorerError, match="No image"):
        pipeline.prepare_input(None)
    with pytest.raises(ExplorerError, match="crop mode"):
        pipeline.prepare_input(astronaut, RES, "stretch")
    with pytest.raises(ExplorerError, match="multiple of 8"):
        pipeline.prepare_input(astronaut, 100)
    with pytest.raises(ExplorerError):
        pipeline.roundtrip(None, "test-tiny", RES)


def test_request_folders_are_pruned_by_age_and_size_and_thumbnails_kept(tmp_path):
    import os

    from explorer import files

    base = tmp_path / "requests"
    base.mkdir()
    now = 1_000_000.0
    made = {}
    for name, age, size in (("old", 7200, 10), ("mid", 600, 3000), ("new", 10, 3000)):
        folder = base / name
        folder.mkdir()
        (folder / "x.bin").write_bytes(b"x" * size)
        os.utime(folder, (now - age, now - age))
        made[name] = folder
    thumbs = base / "thumbs"
    thumbs.mkdir()
    (thumbs / "t.jpg").write_bytes(b"t" * 5000)
    os.utime(thumbs, (now - 9999, now - 9999))
    keep = lambda p: p.name == "thumbs"  # noqa: E731
    # age: only "old" is past an hour
    assert files.prune(base, 3600, 1e9, now=now, keep=keep) == 1
    assert not made["old"].exists() and made["mid"].exists() and thumbs.exists()
    # size: 6,000 bytes of request folders (+ kept thumbnails) into 4,000: the oldest goes first
    assert files.prune(base, 3600, 4000 + 5000, now=now, keep=keep) == 1
    assert not made["mid"].exists() and made["new"].exists() and thumbs.exists()


def test_tmp_paths_are_fresh_folders_under_the_process_root():
    from explorer import files

    a, b = files.tmp_path("same.gif"), files.tmp_path("same.gif")
    assert a != b and a.name == b.name == "same.gif"
    assert a.parent.parent.parent == files.tmp_root() and a.parent.is_dir()
