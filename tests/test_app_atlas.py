"""The atlas endpoints of the launched app through gradio_client (tiny random models)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.helpers import atlas_of, rows_of

pytestmark = pytest.mark.app

SPACES = (["VAE", "CLIP", "DINOv2"], "test-tiny", "test-clip", "test-dino", "test-vit", "pca", "")


@pytest.fixture(scope="module")
def atlas_client(app_url):
    """A client of its own: the atlas lives in this session's state."""
    client = Client(app_url, verbose=False)
    out = client.predict(*SPACES, api_name="/atlas_bundled")
    return client, out


def test_bundled_set_opens_with_three_panels_and_metrics(atlas_client):
    _, out = atlas_client
    payload, status, metrics_df, verdict = out[0], out[1], out[2], out[3]  # state is not returned

    data = atlas_of(payload)
    assert [p["key"] for p in data["panels"]] == ["vae", "clip", "dino"]
    n = len(data["labels"])
    assert n == 112 and all(len(p["x"]) == n for p in data["panels"])
    assert len(data["thumbs"]) == n and data["thumbs"][0].startswith("/gradio_api/file=")
    rows = rows_of(metrics_df)
    labellings = ["meaning", "appearance", "source", "meaning (same photo counted)"]
    assert [(r["space"], r["labels"]) for r in rows] == [
        (space, lab) for space in ("vae", "clip", "dino") for lab in labellings
    ]
    for r in rows:
        assert 0 <= r["knn5"] <= 1 and 0 < r["chance"] < 1 and 0 <= r["trustworthiness"] <= 1
    assert "112 images in 7 classes" in status and "5 nearest neighbours" in verdict
    assert "map: PCA" in status
    # coloured by source photo (each tight cluster is one photo), one colour per class
    assert data["color_by"] == "source" and "each colour is one photo" in data["note"]
    assert len(data["colors"]) == len(data["classes"]) == 16 and len(set(data["colors"])) == 16


def test_colour_by_another_labelling(atlas_client):
    client, _ = atlas_client
    import json

    data = atlas_of(client.predict("appearance", api_name="/atlas_color"))
    assert data["color_by"] == "appearance" and len(data["classes"]) == 7
    assert set(data["labels"]) == set(data["classes"]) and "sepia" in data["classes"]
    with pytest.raises(AppError, match="colour"):  # Gradio's choices check or ours
        client.predict("colour", api_name="/atlas_color")
    data = json.loads(client.predict("meaning", api_name="/atlas_color"))
    assert data["color_by"] == "meaning"


def test_select_returns_neighbours_in_every_space(atlas_client):
    client, _ = atlas_client
    out = client.predict(5, api_name="/atlas_select")
    index, payload, *galleries = out
    import json

    data = json.loads(payload)
    assert index == 5 and data["selected"] == 5
    assert set(data["neighbors"]) == {"vae", "clip", "dino"}
    assert all(5 not in v and len(v) == 6 for v in data["neighbors"].values())
    shown = [g for g in galleries if g["visible"]]
    assert len(shown) == 3 and all(len(g["value"]) == 7 for g in shown)  # the query + 6 neighbours
    assert shown[1]["label"].startswith("CLIP") and "share its meaning" in shown[1]["label"]


def _teaching():
    from explorer import datasets

    return datasets.teaching_set()


def test_select_leaves_its_own_recolourings_out_unless_asked(atlas_client):
    """The lists follow the metrics' rule (a photo's other versions left out) and say so; the
    toggle brings them back and the caption says what they do to the count."""
    import json

    client, _ = atlas_client
    ts = _teaching()
    groups, labels = ts.groups, ts.labels
    own = [i for i, g in enumerate(groups) if g == groups[5] and i != 5]
    for keep in (False, True):
        _index, payload, *galleries = client.predict(5, keep, api_name="/atlas_select")
        data = json.loads(payload)
        for (key, ids), g in zip(data["neighbors"].items(), galleries, strict=False):
            mine = sum(i in own for i in ids)
            same = sum(labels[i] == labels[5] for i in ids)
            assert f"{same}/6 share its meaning" in g["label"], key
            if keep:
                assert f"{mine} of the 6 are that same photo" in g["label"]
            else:
                assert mine == 0, key
                assert (
                    f"6 nearest other photos; its own {len(own)} recolourings left out"
                    in (g["label"])
                )


def test_select_out_of_range_is_a_clear_message(atlas_client):
    client, _ = atlas_client
    with pytest.raises(AppError, match="pick a number between 0 and"):
        client.predict(100000, api_name="/atlas_select")


def test_text_query_ranks_and_highlights(atlas_client):
    client, _ = atlas_client
    items, note, payload = client.predict("a photo of a cat", api_name="/atlas_text")
    import json

    assert len(items) == 8 and "CLIP similarity" in note
    assert len(json.loads(payload)["highlight"]) == 8


def test_query_image(atlas_client, astronaut):
    """The astronaut is one of the teaching set's photos: its 7 versions are left out."""
    client, _ = atlas_client
    galleries = client.predict(handle_file(astronaut), "", api_name="/atlas_query_image")
    shown = [g for g in galleries if g["visible"]]
    assert [len(g["value"]) for g in shown] == [6, 6, 6]
    ts = _teaching()
    own = {i for i, g in enumerate(ts.groups) if g == "skimage:astronaut.png"}
    for g in shown:
        ids = [int(item["caption"].split()[0][1:]) for item in g["value"]]
        assert not own & set(ids)
        assert f"the {len(own)} recolourings of this photo left out" in g["label"]


def test_method_switch_and_export(atlas_client):
    client, _ = atlas_client
    out = client.predict("tsne", api_name="/atlas_method")
    import json

    assert json.loads(out[0])["method"] == "tsne"
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
    with open(next(f for f in files if f.endswith("metrics.csv"))) as fh:
        header = fh.readline().strip()
    assert header == (
        "space,labels,knn5,knn10,chance,silhouette,trustworthiness,"
        "probe,probe_chance,probe_spread,probe_folds,probe_note,sample"
    )
    # the page shows what the app shows: the same panels, the app's colours, every class in the
    # legend (not the first 12), the metrics table; plotly.js is inlined once
    with open(next(f for f in files if f.endswith("atlas.html")), encoding="utf-8") as fh:
        page = fh.read()
    app = atlas_of(client.predict("tsne", api_name="/atlas_method")[0])
    for panel in app["panels"]:
        assert panel["title"] in page
    for cls, colour in zip(app["classes"], app["colors"], strict=True):
        assert f'"name":"{cls}"' in page and f'"color":"{colour}"' in page
    assert "How well each space groups the set" in page and "appearance" in page
    assert page.count('"data:image/jpeg;base64,') == len(app["labels"])  # hover thumbnails
    assert "its own photo" in page  # the verdict
    assert page.count("plotly.js v") <= 2 and len(page) < 6_000_000


def _zip_of(classes: dict[str, int], extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(buf, "w") as z:
        for c, (label, n) in enumerate(classes.items()):
            for i in range(n):
                arr = np.full((32, 32, 3), 40 * c, np.uint8) + rng.integers(
                    0, 30, (32, 32, 3), dtype=np.uint8
                )
                b = io.BytesIO()
                Image.fromarray(arr).save(b, "PNG")
                z.writestr(f"set/{label}/{i}.png", b.getvalue())
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def test_zip_upload_labels_from_folders(app_url, tmp_path):
    client = Client(app_url, verbose=False)
    path = tmp_path / "classes.zip"
    path.write_bytes(_zip_of({"red": 4, "blue": 4}, {"set/blue/notes.txt": b"hello"}))
    out = client.predict([handle_file(path)], *SPACES, api_name="/atlas_upload")

    data = atlas_of(out[0])
    assert sorted(set(data["labels"])) == ["blue", "red"] and len(data["labels"]) == 8
    assert "skipped" in out[1]


@pytest.mark.parametrize(
    ("classes", "message"),
    [({"only": 5}, "one class"), ({"a": 1, "b": 1}, "at least 3")],
)
def test_bad_zips_give_clear_messages(app_url, tmp_path, classes, message):
    client = Client(app_url, verbose=False)
    path = tmp_path / "bad.zip"
    path.write_bytes(_zip_of(classes))
    with pytest.raises(AppError, match=message):
        client.predict([handle_file(path)], *SPACES, api_name="/atlas_upload")


def test_select_before_opening_a_set(app_url):
    client = Client(app_url, verbose=False)
    with pytest.raises(AppError, match="open one first"):
        client.predict(1, api_name="/atlas_select")


def test_saved_atlas_folder_reopens(app_url, tmp_path):
    from explorer import atlas, datasets

    a = atlas.build(datasets.teaching_set(size=64), ["vae:test-tiny", "clip:test-clip"], "pca")
    atlas.save(a, tmp_path / "saved", "pca")
    reopened, _ = atlas.load_saved(tmp_path / "saved")  # every labelling and the groups survive
    assert reopened.images.labelings == a.images.labelings
    assert reopened.images.groups == a.images.groups
    client = Client(app_url, verbose=False)
    out = client.predict(str(tmp_path / "saved"), "umap", api_name="/atlas_saved")
    import json

    assert [p["key"] for p in json.loads(out[0])["panels"]] == ["vae", "clip"]
    assert {r[2] for r in out[2]["data"]} >= {"meaning", "appearance"}  # the labels column
    with pytest.raises(AppError, match="is not a saved atlas"):
        client.predict(str(tmp_path), "umap", api_name="/atlas_saved")


def test_online_presets_say_clearly_when_the_hub_is_out_of_reach(app_url, monkeypatch):
    """The presets stream from the Hub; offline (HF_HUB_OFFLINE, or no network here) the answer
    is a sentence, not a traceback, and an unknown preset names the valid ones."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    client = Client(app_url, verbose=False)
    with pytest.raises(AppError, match="needs internet"):
        client.predict("forum", *SPACES, api_name="/atlas_preset")
    with pytest.raises(AppError, match=r"forum|cifar|choices"):
        client.predict("imagenet-22k", *SPACES, api_name="/atlas_preset")
