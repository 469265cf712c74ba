"""The classroom tabs through gradio_client: /playground (Autoencoders) and /perturb."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from explorer.images import io as imaging
from explorer.perturb import ladder as perturb
from explorer.perturb import measure as perturb_lab
from explorer.playground import digits as pg
from explorer.playground.cache import get_trained
from tests.helpers import frame_of, image_of

pytestmark = pytest.mark.app

EPOCHS = 3
SIDE = 15 * 33 + 1  # 15 x 15 decoded digits of 32 px and their 1 px gaps
GRID = (SIDE, SIDE + max(16, SIDE // 12) + 4)  # pictures.captioned: the caption line above


def _values(v) -> np.ndarray:
    """A plotly JSON array: a list, or numpy's binary encoding {"dtype", "bdata"}."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
    return np.asarray(v)


def test_playground(client):
    out = client.predict(1.0, 16, EPOCHS, 0, False, 3, 8, api_name="/playground")
    scatters, grids, samples, interps = out[0:3], out[3:6], out[6:9], out[9:12]
    usage, table, note = out[12:]
    for fig, model in zip(scatters, pg.MODELS, strict=True):
        data = json.loads(fig["plot"])["data"]
        names = [t["name"] for t in data]
        assert names == [str(d) for d in range(10)] + (["codebook"] if model == "vq" else [])
        assert sum(len(_values(t["x"])) for t in data[:10]) == pg.N_DIGITS
    assert len(_values(json.loads(scatters[2]["plot"])["data"][10]["x"])) == 16  # K codes
    for g in grids:  # the decoded plane, with its extent captioned above it
        assert image_of(g).size == GRID
    assert all(image_of(s).width > 0 for s in samples) and image_of(usage).width > 0
    assert {image_of(i).size for i in interps} == {(5 * 50 + 2, 2 * 50 + 2)}
    df = frame_of(table)
    assert list(df.columns) == [
        "model",
        "recon_mse",
        "prior_kl",
        "sample_confidence",
        "latent_knn5",
    ]
    assert list(df.model) == ["ae", "vae", "vq"]
    cfgs = {
        "ae": pg.TrainConfig("ae", epochs=EPOCHS),
        "vae": pg.TrainConfig("vae", epochs=EPOCHS, beta=1.0),
        "vq": pg.TrainConfig("vq", epochs=EPOCHS, codebook_size=16),
    }
    kl = {}
    for row in df.itertuples():
        expected = pg.evaluate(get_trained(cfgs[row.model]))  # the app's cache: no retraining
        kl[row.model] = expected["prior_kl"]
        assert row.recon_mse == pytest.approx(expected["recon_mse"], abs=1e-5)
        assert row.latent_knn5 == pytest.approx(expected["latent_knn5"], abs=1e-5)
        assert row.sample_confidence == pytest.approx(expected["sample_confidence"], abs=1e-5)
        if row.model == "vq":
            assert row.prior_kl is None or np.isnan(row.prior_kl)
        else:
            assert row.prior_kl == pytest.approx(expected["prior_kl"], abs=1e-5)
    assert note.startswith("**What the numbers show.**") and "of its 16 codes" in note
    assert f"{kl['vae']:.3g}" in note and f"{kl['ae']:.3g}" in note


def test_playground_wide_plane(client):
    client.predict(1.0, 16, EPOCHS, 0, False, 3, 8, api_name="/playground")
    grids = client.predict(1.0, 16, EPOCHS, 0, True, api_name="/playground_plane")
    assert len(grids) == 3 and image_of(grids[0]).size == GRID


def test_playground_bad_settings_are_a_sentence(client):
    with pytest.raises(AppError, match="greater than maximum value 9"):
        client.predict(1.0, 16, EPOCHS, 0, False, 3, 12, api_name="/playground")


def test_perturb_on_the_astronaut(client, astronaut):
    fig, notice, strip, table = client.predict(
        handle_file(astronaut),
        ["VAE", "CLIP"],
        "test-tiny",
        "test-clip",
        "test-dino",
        "",
        "flip",
        api_name="/perturb",
    )
    df = frame_of(table)
    assert list(df.columns) == list(perturb.COLUMNS)
    assert set(df.space) == {"vae:test-tiny", "clip:test-clip"}
    assert (df[df.strength == 0].distance == 0).all()
    assert list(dict.fromkeys(df.perturbation)) == list(perturb.NAMES)  # same_meaning: a source
    # the numbers are perturb.distances with the app's embedding of each space
    image = imaging.load_image(astronaut)
    refs = perturb_lab.references(image)
    ladders = {
        "flip": perturb.ladder(image, "flip", 256),
        "blur": perturb.ladder(image, "blur", 256),
    }
    for space in ("vae:test-tiny", "clip:test-clip"):
        want = perturb.distances(
            {space: perturb_lab.space_embedder(space)}, ladders, refs.unrelated
        )
        got = df[df.space == space].merge(want, on=["perturbation", "strength", "space"])
        assert len(got) == len(want)
        np.testing.assert_allclose(got.distance_x, got.distance_y, atol=1e-4)
    figure = json.loads(fig["plot"])
    titles = [a["text"] for a in figure["layout"]["annotations"]]
    assert titles == [n.replace("_", " ") for n in perturb.NAMES]
    traces = figure["data"]
    assert len(traces) == 2 * len(perturb.NAMES)
    assert {t["name"] for t in traces} == {"vae:test-tiny", "clip:test-clip"}
    flip = df[(df.perturbation == "flip") & (df.strength == 1) & (df.space == "vae:test-tiny")]
    assert f"{100 * flip.distance.iloc[0]:.0f} %" in notice
    assert notice.startswith("**What to notice.**") and "same meaning (person)" in notice
    assert image_of(strip).size == (2 * 128 + 4, 128)  # flip: the photo and its mirror image


def test_perturb_unavailable_space_is_a_sentence_not_a_stand_in(client, astronaut):
    _fig, notice, _strip, table = client.predict(
        handle_file(astronaut),
        ["VAE", "DINOv2"],
        "test-tiny",
        "test-clip",
        "dinov2-small",  # the registry's real model: not in this test's empty HF cache
        "",
        "blur",
        api_name="/perturb",
    )
    assert set(frame_of(table).space) == {"vae:test-tiny"}
    assert "DINOv2 (dinov2-small)** is not available here" in notice
    assert "python -m explorer download" in notice


def test_perturb_strip(client, astronaut):
    strip = client.predict(handle_file(astronaut), "blur", api_name="/perturb_strip")
    n = len(perturb.PERTURBATIONS[perturb.NAMES.index("blur")].strengths)
    assert image_of(strip).size == (n * 128 + (n - 1) * 4, 128)
