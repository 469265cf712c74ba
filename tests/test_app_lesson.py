"""The "Start here" lesson through gradio_client: every runnable step's endpoint returns its
result, and its "what to notice" line quotes the numbers that result holds."""

from __future__ import annotations

import re

import pytest

from explorer import atlas
from explorer.images import io as imaging
from explorer.lab import actions as lab
from explorer.models import registry
from explorer.playground import digits as pg
from explorer.playground.cache import get_trained
from explorer.ui.lesson import steps as st
from explorer.ui.lesson import views as lt
from tests.helpers import frame_of, image_of

pytestmark = pytest.mark.app


def _numbers(text: str, unit: str) -> list[float]:
    return [float(x) for x in re.findall(r"(-?\d+(?:\.\d+)?)\s*" + re.escape(unit), text)]


@pytest.fixture(scope="module")
def model() -> str:
    return registry.default_vae(str(registry.models_dir() or "") or None)


def test_step1_autoencoders(client):
    image, table, note = client.predict(api_name="/lesson_1")
    df = frame_of(table).set_index("model")
    assert list(df.index) == ["ae", "vae"] and image_of(image).width > 0
    m = {k: pg.evaluate(get_trained(pg.TrainConfig(k))) for k in ("ae", "vae")}  # cached
    for k in ("ae", "vae"):
        assert df.prior_kl[k] == pytest.approx(m[k]["prior_kl"], abs=1e-6)
    assert f"**{m['vae']['prior_kl']:.3g} nats**" in note
    assert f"AE **{m['ae']['prior_kl']:.3g}**" in note
    assert f"VAE {m['vae']['recon_mse']:.4f}, AE {m['ae']['recon_mse']:.4f}" in note


def test_step2_latent_maps(client, model, astronaut):
    image, table, note = client.predict(api_name="/lesson_2")
    stats = lab.latent_stats(lab.encode(astronaut, model, st.RESOLUTION))
    assert f"{stats.ratio:.1f}× fewer numbers" in note
    c, h, w = stats.latent.shape
    assert f"{c}-channel {w}×{h} grid (/8" in note and f"With **{model}**" in note
    values = dict(zip(frame_of(table).what, frame_of(table).value, strict=True))
    assert values["compression"] == f"{stats.ratio:.1f}×" and values["model"] == model
    assert image_of(image).height == st.RESOLUTION


def test_step3_round_trip(client, model, astronaut):
    image, table, note = client.predict(api_name="/lesson_3")
    rt = lab.roundtrip(astronaut, model, st.RESOLUTION)
    gens = lab.generations(astronaut, model, st.GENERATIONS, st.RESOLUTION)
    psnrs = _numbers(note, "dB**")
    assert psnrs[0] == pytest.approx(round(rt.psnr, 1), abs=1e-9)
    assert psnrs[1] == pytest.approx(round(gens.psnr[-1], 1), abs=1e-9)
    assert f"SSIM **{rt.ssim:.3f}**" in note
    assert f"**{st.detail_error_ratio(rt):.1f}×**" in note
    df = frame_of(table)
    assert df.psnr_db.tolist() == pytest.approx([round(p, 2) for p in gens.psnr])
    assert image_of(image).size[1] == st.RESOLUTION


def test_step4_kl_prior(client, model, astronaut):
    plot, table, note = client.predict(api_name="/lesson_4")
    stats = lab.latent_stats(lab.encode(astronaut, model, st.RESOLUTION))
    g = stats.gaussian
    assert f"mean **{g['mean']:.2f}**" in note and f"std **{g['std']:.2f}**" in note
    assert f"**{g['kl_to_standard_normal']:.3f} nats**" in note
    if stats.std is None:
        assert "deterministic" in note and "deterministic" in frame_of(table).value.iloc[-1]
    else:
        assert "posterior std" in note
    assert plot is not None


def test_step5_interpolation(client, model, examples):
    image, table, note = client.predict(api_name="/lesson_5")
    it = lab.interpolate(
        examples["astronaut"], examples["coffee"], model, st.INTERP_STEPS, "slerp",
        st.INTERP_RESOLUTION,
    )  # fmt: skip
    a, b = it.endpoint_psnr
    assert f"**{a:.1f} / {b:.1f} dB**" in note
    assert frame_of(table).psnr_db.tolist()[:2] == pytest.approx([round(a, 2), round(b, 2)])
    assert image_of(image).width == it.strip.width


def test_step6_perturbations(client, model):
    image, table, note = client.predict(api_name="/lesson_6")
    df = frame_of(table).set_index("change")
    flip, blur = df.distance["mirror image (flip)"], df.distance["blur 1 px"]
    hue, grey = df.distance["hue turned 180°"], df.distance["greyscale"]
    assert f"**{flip:.0%}** of the way" in note and f"a 1 px blur **{blur:.0%}**" in note
    assert f"a 180° hue turn **{hue:.0%}**" in note and f"greyscale **{grey:.0%}**" in note
    assert ("moves it more than any colour change" in note) == (flip > max(hue, grey))
    assert "offline" in note and image_of(image).width > 0 and f"With **{model}**" in note


def test_step7_atlas(client, model):
    table, note = client.predict(api_name="/lesson_7")
    full = atlas.metrics_table(st.teaching_atlas(model, None), "pca")
    want = full[full.space == "vae"]
    ranked = sorted(
        ((*st.knn5(want, name), name) for name in ("source", "appearance", "meaning")),
        key=lambda r: -r[0],
    )
    # the three readings, highest first, each with its chance level, re-derived from the run
    quoted = [int(x) / 100 for x in re.findall(r"\*\*(\d+)%\*\* \(chance (\d+)%", note)[0]]
    pairs = re.findall(r"\*\*(\d+)%\*\* \(chance (\d+)%", note)
    assert [(int(a) / 100, int(b) / 100) for a, b in pairs[:3]] == [
        (round(k, 2), round(c, 2)) for k, c, _ in ranked
    ]
    assert quoted and f"With **{model}**" in note
    unet = full[(full.space == "unet") & (full.labels == "meaning")]  # the tiny UNet: usable
    assert f"meaning right for {unet.knn5.iloc[0]:.0%} of images" in note
    got = frame_of(table)
    got = got[got.space == "vae"].set_index("labels")
    for k, _, name in ranked:
        assert got.knn5[name] == pytest.approx(k)


def test_step_links():
    assert [lt.parse_step(v) for v in ("3", " 8", "9", "x", None)] == [3, 8, None, None, None]
    assert imaging.example_images().keys() >= {"astronaut", "coffee"}


def test_step_link_opens_that_step():
    from types import SimpleNamespace

    from explorer.ui.lesson import handlers as lesson_tab

    tab, *steps = lesson_tab.on_load(SimpleNamespace(query_params={"step": "3"}))
    assert tab["selected"] == lesson_tab.TAB_ID
    assert [s["open"] for s in steps] == [n == 3 for n in lt.STEPS]
    tab, *steps = lesson_tab.on_load(SimpleNamespace(query_params={}))
    assert "selected" not in tab and all("open" not in s for s in steps)
