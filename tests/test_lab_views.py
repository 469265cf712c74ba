"""explorer.ui.lab.views: the lab tab's words, tables, figures and GIFs, from explorer.lab.actions's
results (tiny seeded test models, bundled example photos)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from explorer.core import files
from explorer.lab import actions as lab
from explorer.ui.lab import views
from tests.helpers import rgb_array

RES = 64


def test_fmt_db():
    assert views.fmt_db(math.inf) == "∞"
    assert views.fmt_db(31.4159) == "31.42" and views.fmt_db(31.4159, 1) == "31.4"


def test_roundtrip_row_and_summary(astronaut):
    rt = lab.roundtrip(astronaut, "test-kl", RES)
    row = views.roundtrip_row(rt)
    assert list(row) == views.RT_HEADERS
    assert row["PSNR (dB)"] == round(rt.psnr, 2) and row["compression"] == "48.0×"
    assert row["model"] == "test-kl" and row["decoded from"] == "mean"
    assert row["SSIM"] == round(rt.ssim, 4) and row["encode (ms)"] == round(rt.encode_s * 1000)
    summary = views.roundtrip_summary(rt)
    assert "PSNR" in summary
    assert f"**PSNR {rt.psnr:.2f} dB · SSIM {rt.ssim:.4f}**" in summary
    assert "48.0× fewer numbers" in summary and "decoded from the posterior mean" in summary


@pytest.mark.parametrize(
    ("model", "used", "words"),
    [("test-kl", "sample", "from the posterior sample"), ("test-tiny", "latent", "no posterior")],
)
def test_roundtrip_summary_says_when_sample_cannot_be_done(astronaut, model, used, words):
    rt = lab.roundtrip(astronaut, model, RES, source="sample", seed=1)
    assert rt.source == used
    summary = views.roundtrip_summary(rt, "sample")
    assert words in summary
    assert ("changes nothing here" in summary) == (used != "sample")
    assert "changes nothing" not in views.roundtrip_summary(rt, "mean")


@pytest.mark.parametrize(
    ("model", "channels", "ratio"),
    [("test-kl", 4, "48.0×"), ("test-kl16", 16, "12.0×"), ("test-tiny", 4, "48.0×")],
)
def test_encode_view(astronaut, model, channels, ratio):
    enc = lab.encode(astronaut, model, RES)
    view = views.encode_view(enc)
    assert set(view) == {"summary", "grid", "stats", "histogram", "std", "preview"} | {
        "std_label",
        "hist_label",
        "usage",
    }
    assert view["usage"] is None and view["std_label"] == views.STD_LABEL  # no codebook
    assert ratio in view["summary"]
    assert f"{channels}×{RES // 8}×{RES // 8}" in view["summary"]
    assert len(view["stats"]) == channels
    assert len(view["grid"].data) == channels
    assert view["preview"].size == (RES, RES)
    std_traces = [t for t in view["std"].data if t.type == "heatmap"]
    assert len(std_traces) == (1 if enc.posterior.std is not None else 0)
    per_channel = views.encode_view(enc, shared_scale=False)["grid"]
    assert sum(bool(t.showscale) for t in per_channel.data) == 1  # one bar, bounds in titles


def test_encode_view_of_a_fit_image(tmp_path):
    path = tmp_path / "wide.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (150, 300, 3), dtype=np.uint8)).save(path)
    view = views.encode_view(lab.encode(path, "test-tiny", 128, "fit"))
    assert "4×8×16" in view["summary"] and "128×64×3" in view["summary"]
    assert view["preview"].size == (128, 64)


def test_generations_table_and_figure(astronaut):
    g = lab.generations(astronaut, "test-kl", 3, RES)
    table = views.generations_table(g)
    assert list(table.columns) == ["generation", "PSNR (dB)", "SSIM"]
    assert table["generation"].tolist() == [1, 2, 3]
    assert table["PSNR (dB)"].tolist() == [round(p, 4) for p in g.psnr]
    fig = views.generations_figure(g)
    assert [list(t.y) for t in fig.data] == [g.psnr, g.ssim]


@pytest.mark.parametrize("method", ["slerp", "lerp"])
def test_interpolation_gifs_and_note(examples, method):
    steps = 4
    res = lab.interpolate(examples["astronaut"], examples["coffee"], "test-kl", steps, method, RES)
    gif_path, fade_path = views.interpolation_gifs(res)
    assert gif_path.name == f"latent-{method}-{steps}-steps.gif"
    assert fade_path.name == f"pixel-crossfade-{steps}-steps.gif"
    assert files.tmp_root() in gif_path.parents and gif_path.parent != fade_path.parent
    # the GIF holds the frames (a boomerang: a, b, c, d, c, b)
    with Image.open(gif_path) as gif:
        assert gif.format == "GIF" and gif.size == (RES, RES)
        assert gif.n_frames == 2 * steps - 2
        frames = [rgb_array(f).astype(np.float64) for f in res.frames]
        for k in range(gif.n_frames):
            gif.seek(k)
            shown = np.asarray(gif.convert("RGB"), np.float64)
            errors = [np.abs(shown - f).mean() for f in frames]  # palette quantisation: ~6/255
            expected = k if k < steps else 2 * steps - 2 - k
            assert int(np.argmin(errors)) == expected and errors[expected] < 12, (k, errors)
    with Image.open(fade_path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 2 * steps - 2
    note = views.interpolation_note(res)
    assert note.startswith(f"{steps} frames, {method}. Endpoints decode at ")
    assert f"{res.endpoint_psnr[0]:.1f} dB and {res.endpoint_psnr[1]:.1f} dB PSNR" in note


def test_edit_note_and_figure(astronaut):
    same = lab.edit(astronaut, "test-kl", 1, "scale", 1.0, resolution=RES)
    assert "**∞ dB PSNR**" in views.edit_note(same)
    ed = lab.edit(astronaut, "test-kl", 2, "zero", resolution=RES)
    note = views.edit_note(ed)
    assert f"**{ed.psnr_vs_baseline:.2f} dB PSNR**" in note
    levels = ed.mean_abs_change * 255
    assert f"mean absolute change {levels:.1f}/255" in note or f"change {levels:.0f}/255" in note
    fig = views.edit_figure(ed, 2, "zero")
    assert [a.text for a in fig.layout.annotations[:2]] == ["before", "after"]
    assert "channel 2: before | after (zero)" in fig.layout.title.text
    np.testing.assert_array_equal(fig.data[0].z, ed.channel_before[::-1])
    assert not np.asarray(fig.data[1].z).any()
