"""explorer.lab.actions with the tiny seeded test models, on the bundled example photos.

(The words, tables and figures made from these results are tested in test_lab_views.py.)"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from explorer.analysis import metrics
from explorer.core.errors import ExplorerError
from explorer.images import io as imaging
from explorer.lab import actions as lab
from tests.helpers import rgb_array

RES = 64  # small: the test models are random, only the plumbing matters here


def test_roundtrip_test_kl(astronaut):
    rt = lab.roundtrip(astronaut, "test-kl", RES)
    assert rt.original.size == rt.reconstruction.size == rt.error.size == (RES, RES)
    np.testing.assert_array_equal(
        rgb_array(rt.original), rgb_array(lab.prepare_input(astronaut, RES))
    )
    assert math.isfinite(rt.psnr) and math.isfinite(rt.ssim)
    # PSNR and SSIM computed independently, from the two images' 8-bit pixels: by hand
    # (10 log10(255² / MSE)) and by scikit-image on uint8 data
    a8, b8 = (
        rgb_array(rt.original).astype(np.float64),
        rgb_array(rt.reconstruction).astype(np.float64),
    )
    mse = float(np.mean((a8 - b8) ** 2))
    assert mse > 0
    assert rt.psnr == pytest.approx(10 * math.log10(255.0**2 / mse), rel=1e-9)
    assert rt.psnr == pytest.approx(
        peak_signal_noise_ratio(
            rgb_array(rt.original), rgb_array(rt.reconstruction), data_range=255
        ),
        rel=1e-9,
    )
    assert rt.ssim == pytest.approx(
        structural_similarity(
            rgb_array(rt.original), rgb_array(rt.reconstruction), channel_axis=-1, data_range=255
        ),
        rel=1e-9,
    )
    assert -1 <= rt.ssim < 1
    assert rt.ratio == 48.0
    assert rt.model == "test-kl" and rt.source == "mean"
    assert rt.encode_s >= 0 and rt.decode_s >= 0
    # the error map is black where nothing changed and brightest where the error is largest
    err = rgb_array(rt.error).astype(np.float64).sum(-1)
    diff = np.abs(a8 - b8).mean(-1)
    assert err.ravel()[np.argmax(diff)] > err.ravel()[np.argmin(diff)]


def test_roundtrip_decodes_the_posterior_mean(astronaut):
    enc = lab.encode(astronaut, "test-kl16", RES)
    expected = imaging.to_pil(enc.vae.decode(enc.posterior.mean))[0]
    rt = lab.roundtrip(astronaut, "test-kl16", RES)
    np.testing.assert_array_equal(rgb_array(rt.reconstruction), rgb_array(expected))
    assert rt.ratio == 12.0


def test_sample_differs_from_mean_for_a_kl_vae(astronaut):
    mean = lab.roundtrip(astronaut, "test-kl", RES, source="mean")
    s1 = lab.roundtrip(astronaut, "test-kl", RES, source="sample", seed=1)
    s1b = lab.roundtrip(astronaut, "test-kl", RES, source="sample", seed=1)
    s2 = lab.roundtrip(astronaut, "test-kl", RES, source="sample", seed=2)
    assert s1.source == "sample"
    assert not np.array_equal(rgb_array(s1.reconstruction), rgb_array(mean.reconstruction))
    assert np.array_equal(rgb_array(s1.reconstruction), rgb_array(s1b.reconstruction))
    assert not np.array_equal(rgb_array(s1.reconstruction), rgb_array(s2.reconstruction))


def test_sample_equals_mean_for_a_deterministic_model(astronaut):
    mean = lab.roundtrip(astronaut, "test-tiny", RES, source="mean")
    sample = lab.roundtrip(astronaut, "test-tiny", RES, source="sample", seed=1)
    assert sample.source == "latent"  # reported as what was actually decoded: its one latent
    np.testing.assert_array_equal(rgb_array(sample.reconstruction), rgb_array(mean.reconstruction))
    assert sample.psnr == mean.psnr


def test_generations(astronaut):
    g = lab.generations(astronaut, "test-kl", 3, RES)
    images, psnrs, ssims = g.images, g.psnr, g.ssim
    assert len(images) == len(psnrs) == len(ssims) == 3
    assert all(im.size == (RES, RES) for im in images)
    assert all(math.isfinite(p) for p in psnrs)
    # generation 1 is a single round trip
    first = lab.roundtrip(astronaut, "test-kl", RES)
    np.testing.assert_array_equal(rgb_array(images[0]), rgb_array(first.reconstruction))
    assert psnrs[0] == pytest.approx(first.psnr, rel=1e-12)
    # generation 2 is the round trip of generation 1 (from its float decode, so compare loosely)
    ref = imaging.to_numpy_hwc(lab.prepare_input(astronaut, RES))
    assert psnrs[1] == pytest.approx(metrics.psnr(ref, imaging.to_numpy_hwc(images[1])))
    progress = []
    lab.generations(astronaut, "test-tiny", 2, RES, progress=lambda f, d: progress.append(f))
    assert progress[-1] == 1.0 and progress == sorted(progress)


@pytest.mark.parametrize("n", [0, 51])
def test_generations_bounds(astronaut, n):
    with pytest.raises(ExplorerError, match="between 1 and 50"):
        lab.generations(astronaut, "test-tiny", n, RES)


@pytest.mark.parametrize("method", ["slerp", "lerp"])
def test_interpolate(examples, method):
    a_path, b_path = examples["astronaut"], examples["coffee"]
    steps = 4
    res = lab.interpolate(a_path, b_path, "test-kl", steps, method, RES)
    assert len(res.frames) == len(res.crossfade) == steps
    assert all(f.size == (RES, RES) for f in res.frames + res.crossfade)
    enc_a = lab.encode(a_path, "test-kl", RES)
    enc_b = lab.encode(b_path, "test-kl", RES)
    decoded_a = imaging.to_pil(enc_a.vae.decode(enc_a.posterior.mean))[0]
    decoded_b = imaging.to_pil(enc_b.vae.decode(enc_b.posterior.mean))[0]
    np.testing.assert_array_equal(rgb_array(res.frames[0]), rgb_array(decoded_a))
    np.testing.assert_array_equal(rgb_array(res.frames[-1]), rgb_array(decoded_b))
    assert not np.array_equal(rgb_array(res.frames[1]), rgb_array(res.frames[0]))
    # the pixel crossfade starts at A and ends at B
    np.testing.assert_array_equal(rgb_array(res.crossfade[0]), rgb_array(enc_a.image))
    np.testing.assert_array_equal(rgb_array(res.crossfade[-1]), rgb_array(enc_b.image))
    # endpoint PSNRs are those of the decoded endpoints against the inputs
    assert res.endpoint_psnr[0] == pytest.approx(
        metrics.psnr(imaging.to_numpy_hwc(enc_a.image), imaging.to_numpy_hwc(decoded_a))
    )
    assert res.strip.height == RES and res.strip.width >= steps * RES
    assert res.crossfade_strip.size == res.strip.size
    assert res.method == method


def test_interpolate_errors(astronaut):
    with pytest.raises(ExplorerError, match="second image"):
        lab.interpolate(astronaut, None, "test-tiny", 4, "slerp", RES)
    with pytest.raises(ExplorerError, match="between 2 and 64"):
        lab.interpolate(astronaut, astronaut, "test-tiny", 1, "slerp", RES)
    with pytest.raises(ExplorerError, match="lerp or slerp"):
        lab.interpolate(astronaut, astronaut, "test-tiny", 4, "cubic", RES)


def test_edit_that_changes_nothing(astronaut):
    ed = lab.edit(astronaut, "test-kl", 1, "scale", 1.0, resolution=RES)
    assert ed.psnr_vs_baseline == math.inf
    np.testing.assert_array_equal(rgb_array(ed.baseline), rgb_array(ed.edited))
    np.testing.assert_array_equal(ed.channel_before, ed.channel_after)


def test_edit_zero_channel(astronaut):
    ed = lab.edit(astronaut, "test-kl", 2, "zero", resolution=RES)
    enc = lab.encode(astronaut, "test-kl", RES)
    np.testing.assert_array_equal(ed.channel_before, enc.latent[2])
    assert ed.channel_after.shape == (RES // 8, RES // 8) and not ed.channel_after.any()
    assert math.isfinite(ed.psnr_vs_baseline)
    assert ed.baseline.size == ed.edited.size == ed.difference.size == (RES, RES)
    base = imaging.to_pil(enc.vae.decode(enc.posterior.mean))[0]
    np.testing.assert_array_equal(rgb_array(ed.baseline), rgb_array(base))


def test_edit_bad_channel_is_a_user_error(astronaut):
    with pytest.raises(ExplorerError, match="Pick a channel between 0 and 3"):
        lab.edit(astronaut, "test-kl", 4, "zero", resolution=RES)
    with pytest.raises(ExplorerError, match="Pick a channel between 0 and 15"):
        lab.edit(astronaut, "test-kl16", 16, "zero", resolution=RES)


def test_latent_stats(astronaut):
    enc = lab.encode(astronaut, "test-kl", RES)
    st = lab.latent_stats(enc)
    z = enc.latent
    assert st.latent.shape == (4, RES // 8, RES // 8) and np.array_equal(st.latent, z)
    assert st.std is not None and st.std.shape == z.shape and (st.std > 0).all()
    assert st.image_size == (RES, RES) and st.ratio == RES * RES * 3 / z.size == 48.0
    assert st.gaussian["mean"] == pytest.approx(float(z.astype(np.float64).mean()))
    assert st.gaussian["std"] == pytest.approx(float(z.astype(np.float64).std()))
    assert list(st.channels["channel"]) == [0, 1, 2, 3]
    np.testing.assert_allclose(st.channels["max"], z.reshape(4, -1).max(1), atol=5e-5)
    assert st.preview.size == (RES, RES) and st.preview.mode == "RGB"
    assert st.model == "test-kl" and st.encode_s >= 0
    assert lab.latent_stats(lab.encode(astronaut, "test-tiny", RES)).std is None


def test_encode_is_cached_per_model_and_size(astronaut):
    a = lab.encode(astronaut, "test-tiny", RES).posterior
    assert lab.encode(astronaut, "test-tiny", RES).posterior is a
    assert lab.encode(astronaut, "test-kl", RES).posterior is not a
    assert lab.encode(astronaut, "test-tiny", 2 * RES).posterior is not a


def test_fit_mode_keeps_the_aspect_ratio(tmp_path):
    path = tmp_path / "wide.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (150, 300, 3), dtype=np.uint8)).save(path)
    rt = lab.roundtrip(path, "test-tiny", 128, "fit")
    assert rt.original.size == rt.reconstruction.size == (128, 64)
    assert lab.roundtrip(path, "test-tiny", 128, "square").original.size == (128, 128)
    assert lab.encode(path, "test-tiny", 128, "fit").latent.shape == (4, 8, 16)


def test_prepare_input_errors(astronaut):
    with pytest.raises(ExplorerError, match="No image"):
        lab.prepare_input(None)
    with pytest.raises(ExplorerError, match="crop mode"):
        lab.prepare_input(astronaut, RES, "stretch")
    with pytest.raises(ExplorerError, match="multiple of 8"):
        lab.prepare_input(astronaut, 100)
    with pytest.raises(ExplorerError):
        lab.roundtrip(None, "test-tiny", RES)
