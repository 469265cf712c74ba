"""The atlas's evidence through the launched app's API (tiny random models): the controls as
spaces, the probe and similarity in the openers' outputs, the shared selection and the
per-point overlap endpoints, their bad input, and the export's new file."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from tests.helpers import atlas_of

pytestmark = pytest.mark.app

CONTROLS = ["Pixels (control)", "Colour (control)", "Texture (control)"]
SPACES = (["VAE", "CLIP", *CONTROLS], "test-tiny", "test-clip", "test-dino", "test-vit", "pca", "")


@pytest.fixture(scope="module")
def opened(app_url):
    client = Client(app_url, verbose=False)
    out = client.predict(*SPACES, api_name="/atlas_bundled")
    return client, out


def _table(df) -> list[dict]:
    return [dict(zip(df["headers"], row, strict=True)) for row in df["data"]]


def test_controls_open_beside_the_models_with_probes_and_similarity(opened):
    _, out = opened
    data = json.loads(out[0])
    keys = [p["key"] for p in data["panels"]]
    assert keys == ["vae", "clip", "pixels", "colour", "texture"]
    titles = [p["title"] for p in data["panels"]]
    assert titles[2] == "Pixels (control) · 16x16-rgb"
    rows = _table(out[2])
    assert {"probe", "probe_chance", "probe_spread", "probe_folds"} <= set(rows[0])
    meaning = [r for r in rows if r["labels"] == "meaning"]
    assert len(meaning) == 5 and all(0 <= r["probe"] <= 1 for r in meaning)
    assert all(r["probe_folds"] == 2 for r in meaning)  # each meaning in 2 photos only
    verdict = out[3]
    # every probe score of the main labelling is quoted as it is in the table
    for r in meaning:
        assert f"{r['probe']:.0%} ± {100 * r['probe_spread']:.0f}" in verdict
    assert "Against the controls" in verdict
    assert len(re.findall(r"scores (above|level with|below) the best control", verdict)) == 2 * 3
    sim = _table(out[4]["value"])  # an update: shown where there are two spaces or more
    assert [(r["space_a"], r["space_b"]) for r in sim][:2] == [("vae", "vae"), ("vae", "clip")]
    assert len(sim) == 5 + 10
    assert all(
        r["cka"] == 1.0 and r["mutual_knn10"] == 1.0 for r in sim if r["space_a"] == r["space_b"]
    )


def test_selection_over_the_api_is_shared_summarised_and_cleared(opened):
    client, _ = opened
    payload, words, gallery = client.predict([40, 3, 5, 3, 6], api_name="/atlas_selection")
    update = json.loads(payload)
    assert update["update"] is True and update["selection"] == [3, 5, 6, 40]
    assert words.startswith("**The 4 images you selected:**")
    counts = [int(n) for n in re.findall(r"(\d+) share \*", words)]
    assert counts and max(counts) <= 4
    assert "Separate neighbourhoods" in words
    assert len(gallery["value"]) == 4 and gallery["visible"]
    # the shared selection rides on every later payload, full or a click's
    assert json.loads(client.predict(7, api_name="/atlas_select")[1])["selection"] == [3, 5, 6, 40]
    full = json.loads(client.predict("pca", api_name="/atlas_method")[0])
    assert full["selection"] == [3, 5, 6, 40]
    payload, words, gallery = client.predict([], api_name="/atlas_selection")
    assert json.loads(payload)["selection"] == [] and "Nothing selected" in words
    assert not gallery["visible"]


def test_bad_selections_are_refused_with_a_sentence(opened, monkeypatch):
    client, _ = opened
    with pytest.raises(AppError, match="from 0 to 111"):
        client.predict([3, 500], api_name="/atlas_selection")
    with pytest.raises(AppError, match="whole image numbers"):
        client.predict([1, "x"], api_name="/atlas_selection")
    monkeypatch.setenv("EXPLORER_DISPLAY_MAX_POINTS", "10")  # read per request
    with pytest.raises(AppError, match="at most 10"):
        client.predict(list(range(11)), api_name="/atlas_selection")
    monkeypatch.undo()
    assert json.loads(client.predict(list(range(11)), api_name="/atlas_selection")[0])[
        "selection"
    ] == list(range(11))


def test_overlap_colours_the_panels_and_lists_what_changes_most(opened):
    client, _ = opened
    payload, words, gallery = client.predict("vae", "clip", api_name="/atlas_overlap")
    data = atlas_of(payload)
    values = np.array(data["overlap"]["values"], dtype=float)
    assert data["overlap"]["a"] == "vae" and data["overlap"]["b"] == "clip"
    assert values.shape == (112,) and values.min() >= 0 and values.max() <= 1
    assert data["overlap"]["own_group_left_out"] is True
    assert f"on average {values.mean():.0%}" in words
    assert f"{int(np.sum(values == 0)):,} of 112 images share none" in words
    items = gallery["value"]
    assert len(items) == 12
    kept = [int(re.search(r"· (\d+) of 10 shared", it["caption"]).group(1)) for it in items]
    assert kept == sorted(kept) and kept[0] == round(values.min() * 10)
    # back to the labels' colours with the colouring dropdown
    assert json.loads(client.predict("meaning", api_name="/atlas_color"))["overlap"] is None
    with pytest.raises(AppError, match="no space 'dino'"):
        client.predict("vae", "dino", api_name="/atlas_overlap")
    with pytest.raises(AppError, match="two different"):
        client.predict("vae", "vae", api_name="/atlas_overlap")


def test_export_carries_similarity_and_the_selection(opened):
    client, _ = opened
    client.predict([1, 2, 50], api_name="/atlas_selection")
    files = client.predict(api_name="/atlas_export")
    names = sorted(f.rsplit("/", 1)[-1] for f in files)
    assert names == [
        "atlas.html",
        "metrics.csv",
        "overlap.csv",
        "point_overlap.csv",
        "points.csv",
        "similarity.csv",
    ]
    with open(next(f for f in files if f.endswith("similarity.csv")), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["space_a", "space_b", "cka", "mutual_knn10"] and len(rows) == 15
    with open(next(f for f in files if f.endswith("points.csv")), newline="") as fh:
        points = list(csv.DictReader(fh))
    assert [int(p["index"]) for p in points if p["selected"] == "1"] == [1, 2, 50]
    client.predict([], api_name="/atlas_selection")


def test_the_perturbation_lab_measures_a_control_like_any_space(app_url, astronaut):
    import pandas as pd
    from gradio_client import handle_file

    from explorer.images import io as imaging
    from explorer.perturb import ladder as perturb
    from explorer.perturb import measure as perturb_lab
    from explorer.spaces import baselines

    client = Client(app_url, verbose=False)
    _fig, notice, _strip, table = client.predict(
        handle_file(astronaut),
        ["Pixels (control)"],
        "test-tiny",
        "test-clip",
        "test-dino",
        "",
        "flip",
        api_name="/perturb",
    )
    df = pd.DataFrame(table["data"], columns=table["headers"])
    assert set(df.space) == {"pixels:16x16-rgb"}
    image = imaging.load_image(astronaut)
    refs = perturb_lab.references(image)
    flip = perturb.ladder(image, "flip", perturb_lab.SIZE)
    want = perturb.distances(
        {"pixels:16x16-rgb": lambda ims: baselines.baseline_features("pixels", ims)},
        {"flip": flip},
        refs.unrelated,
    )
    got = df[df.perturbation == "flip"].merge(want, on=["perturbation", "strength", "space"])
    np.testing.assert_allclose(got.distance_x, got.distance_y, atol=1e-4)
    assert "**Pixels (control) (16x16-rgb)**: a flip moves it" in notice
    assert f"{100 * want[want.strength == 1].distance.iloc[0]:.0f} %" in notice
