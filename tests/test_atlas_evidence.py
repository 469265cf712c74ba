"""An atlas's evidence (explorer.atlas.evidence, explorer.analysis.selection) against the pure
measures it is built from and known answers on constructed sets, the export's new files, and
the sentences that quote them (explorer.ui.atlas.evidence)."""

from __future__ import annotations

import csv
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from explorer import atlas
from explorer.analysis import probe, selection, similarity
from explorer.atlas import evidence as ev
from explorer.atlas.types import Atlas, Space
from explorer.core.errors import ExplorerError
from explorer.datasets import ImageSet
from explorer.spaces.keys import image_hash
from explorer.ui.atlas import evidence as words
from explorer.ui.atlas import views


def _images(n: int) -> list[Image.Image]:
    return [Image.new("RGB", (8, 8), (i % 256, (7 * i) % 256, 40)) for i in range(n)]


def grouped_atlas(n_groups: int = 12, per: int = 4, seed: int = 0) -> Atlas:
    """Groups of ``per`` near-copies (one 'photo' each) in two spaces: ``vae`` places a group
    by its 'layout' (a random direction per group), ``pixels`` by its class (4 classes), so
    the two disagree about which other groups are near."""
    rng = np.random.default_rng(seed)
    n = n_groups * per
    groups = np.repeat(np.arange(n_groups), per)
    classes = groups % 4
    layout = rng.standard_normal((n_groups, 24))[groups] + 0.05 * rng.standard_normal((n, 24))
    centre = rng.standard_normal((4, 16))[classes] + 0.3 * rng.standard_normal((n, 16))
    labels = [f"c{c}" for c in classes]
    image_set = ImageSet(
        "grouped",
        _images(n),
        labels,
        [f"p{i}" for i in range(n)],
        labelings={"meaning": labels, "source": [f"g{g}" for g in groups]},
        groups=[f"g{g}" for g in groups],
    )
    spaces = [
        Space("vae", "vae:arrays", "vae", "arrays"),
        Space("pixels", "pixels:16x16-rgb", "pixels", "16x16-rgb"),
    ]
    embs = {"vae": layout.astype(np.float32), "pixels": centre.astype(np.float32)}
    coords = {"pca": {k: v[:, :2].copy() for k, v in embs.items()}}
    hashes = [image_hash(im) for im in image_set.images]
    thumbs = atlas.write_thumbs(image_set.images, hashes, atlas.thumb_dir())
    return Atlas(f"test-grouped-{seed}", image_set, spaces, embs, coords, thumbs=thumbs)


@pytest.fixture
def flat():
    rng = np.random.default_rng(1)
    n = 60
    labels = [f"k{i % 3}" for i in range(n)]
    codes = np.arange(n) % 3
    x = rng.standard_normal((3, 20))[codes] + 0.8 * rng.standard_normal((n, 20))
    y = x @ np.linalg.qr(rng.standard_normal((20, 20)))[0] * 3.0  # a rotation, scaled
    z = rng.standard_normal((n, 12))
    return atlas.from_arrays(
        {"vae": x, "clip": y, "pixels": z}, labels, _images(n), coords=None, method="pca"
    )


# ------------------------------------------------------------------ probes in the table


def test_metrics_table_probe_columns_are_the_probe_itself(flat):
    table = atlas.metrics_table(flat, "pca")
    assert set(ev.PROBE_COLUMNS) <= set(table.columns)
    for key in ("vae", "pixels"):
        row = table[table.space == key].iloc[0]
        direct = probe.probe(flat.embeddings[key], np.asarray(flat.labels))
        assert row.probe == round(direct.accuracy, 4)
        assert row.probe_chance == round(direct.chance, 4)
        assert row.probe_spread == round(direct.spread, 4)
        assert row.probe_folds == direct.n_folds == 5 and row.probe_note == ""
    # the rotated, scaled copy of vae probes exactly as well, up to the solver's tolerance
    vae, clip = (table[table.space == k].iloc[0].probe for k in ("vae", "clip"))
    assert abs(vae - clip) <= 0.02


def test_grouped_probes_split_by_group_and_the_grouping_itself_does_not():
    a = grouped_atlas()
    table = atlas.metrics_table(a, "pca")
    meaning = table[(table.space == "pixels") & (table.labels == "meaning")].iloc[0]
    direct = probe.probe(
        a.embeddings["pixels"], np.asarray(a.labels), groups=np.asarray(a.images.groups)
    )
    assert meaning.probe == round(direct.accuracy, 4) and direct.grouped
    source = table[(table.space == "vae") & (table.labels == "source")].iloc[0]
    plain = probe.probe(a.embeddings["vae"], np.asarray(a.images.labeling("source")))
    assert source.probe == round(plain.accuracy, 4)
    counted = table[table.labels == "meaning" + atlas.COUNTED]
    assert len(counted) == 2  # the same photo's versions allowed on both sides: no groups


def test_labellings_that_cannot_be_probed_get_a_sentence():
    n = 9
    single = atlas.from_arrays(
        {"vae": np.random.default_rng(0).standard_normal((n, 4))}, ["a"] * n, _images(n)
    )
    row = atlas.metrics_table(single, "pca").iloc[0]
    assert math.isnan(row.probe) and row.probe_folds == 0
    assert "same label" in row.probe_note
    one_each = atlas.from_arrays(
        {"vae": np.random.default_rng(0).standard_normal((n, 4))},
        [f"c{i}" for i in range(n)],
        _images(n),
    )
    table = atlas.metrics_table(one_each, "pca")
    assert "only 1 image" in table.iloc[0].probe_note
    text = words.probe_markdown(table, {"vae": "VAE"}, {"label": False})
    assert "no probe score" in text and "only 1 image" in text


def test_unconverged_folds_are_flagged(monkeypatch, flat):
    monkeypatch.setattr(probe, "MAX_ITER", 1)
    row = atlas.metrics_table(flat, "pca").iloc[0]
    assert row.probe_note.startswith("did not converge in") and not math.isnan(row.probe)
    text = words.probe_markdown(atlas.metrics_table(flat, "pca"), {}, {"label": False})
    assert "Not converged" in text


# ------------------------------------------------------------------ similarity and overlap


def test_similarity_table_is_the_pure_measures_on_the_atlas_lists(flat):
    table = ev.similarity_table(flat)
    assert list(table.columns) == ["space_a", "space_b", "cka", "mutual_knn10"]
    assert len(table) == 6  # 3 with themselves, 3 pairs
    selfs = table[table.space_a == table.space_b]
    assert (selfs.cka == 1.0).all() and (selfs.mutual_knn10 == 1.0).all()
    pair = table[(table.space_a == "vae") & (table.space_b == "clip")].iloc[0]
    x, z = flat.embeddings["vae"], flat.embeddings["pixels"]
    assert pair.cka == pytest.approx(1.0, abs=1e-4)  # rotation and isotropic scaling
    assert pair.mutual_knn10 == pytest.approx(1.0)
    other = table[(table.space_a == "vae") & (table.space_b == "pixels")].iloc[0]
    assert other.cka == round(similarity.linear_cka(x, z), 4)
    assert other.mutual_knn10 == round(similarity.mutual_knn(x, z, k=10), 4)
    keys, cka, mutual = ev.similarity_matrices(flat)
    assert keys == ["vae", "clip", "pixels"] and np.allclose(cka, cka.T)
    assert mutual[0, 2] == other.mutual_knn10


def test_point_overlap_without_groups_is_neighbour_overlap(flat):
    got = ev.point_overlap(flat, "vae", "pixels")
    want = similarity.neighbour_overlap(flat.embeddings["vae"], flat.embeddings["pixels"], k=10)
    np.testing.assert_array_equal(got, want)
    assert got.mean() == pytest.approx(
        ev.similarity_table(flat)
        .query("space_a == 'vae' and space_b == 'pixels'")
        .mutual_knn10.iloc[0],
        abs=1e-4,
    )
    changed = ev.changes(flat, "vae", "pixels", top=7)
    values = [v for _, v in changed]
    assert values == sorted(values) and values[0] == got.min() and len(changed) == 7
    with pytest.raises(ExplorerError, match="no space 'dino'"):
        ev.point_overlap(flat, "vae", "dino")
    with pytest.raises(ExplorerError, match="two different"):
        ev.point_overlap(flat, "vae", "vae")


def test_grouped_lists_leave_the_own_group_out_as_the_metrics_do():
    a = grouped_atlas()
    assert ev.lists_leave_groups_out(a)
    groups = np.asarray(a.images.groups)
    for key in ("vae", "pixels"):
        lists = ev.neighbour_lists(a, key)
        assert lists.shape == (48, 10)
        assert not (groups[lists] == groups[:, None]).any()
    # layout vs class: the two spaces share few of the other photos
    overlap = ev.point_overlap(a, "vae", "pixels")
    assert overlap.shape == (48,) and overlap.mean() < 0.6


# ------------------------------------------------------------------ selection


def test_check_selection_clears_sorts_and_refuses_with_sentences():
    assert ev.check_selection(None, 10, 5) == [] and ev.check_selection([], 10, 5) == []
    assert ev.check_selection([4, 1, 4, 2.0], 10, 5) == [1, 2, 4]
    for bad, match in (
        ("1,2", "list of image numbers"),
        ([1, True], "whole image numbers"),
        ([1.5], "whole image numbers"),
        (["3"], "whole image numbers"),
        ([10], "from 0 to 9"),
        ([-1], "from 0 to 9"),
        (list(range(6)), "at most 5"),
    ):
        with pytest.raises(ExplorerError, match=match):
            ev.check_selection(bad, 10, 5)


def test_neighbourhoods_known_answers():
    # a ring of 12: each point's 2 nearest are its neighbours on the ring
    nbrs = np.array([[(i - 1) % 12, (i + 1) % 12] for i in range(12)])
    assert selection.neighbourhoods(nbrs, [0, 1, 2, 3]).max() == 0  # one arc
    comps = selection.neighbourhoods(nbrs, [0, 1, 5, 6, 9])
    assert comps.max() + 1 == 3 and comps[0] == comps[1] and comps[2] == comps[3]
    assert selection.neighbourhoods(nbrs, [0, 3, 6, 9]).max() + 1 == 4  # all apart
    assert selection.neighbourhoods(nbrs, []).size == 0
    sh = selection.shares(["a", "b", "a", "c", "a"], [0, 1, 2, 4])
    assert sh == selection.Shares("a", 3, 2, 4)


def test_summary_counts_what_a_selection_shares_in_every_space():
    a = grouped_atlas()
    groups = np.asarray(a.images.groups)
    pick = [int(i) for i in np.flatnonzero(groups == "g0")] + [
        int(i) for i in np.flatnonzero(groups == "g4")
    ]  # two photos of class c0
    summary = ev.summarise_selection(a, sorted(pick), "vae")
    assert summary.size == 8 and summary.source == "vae"
    assert summary.shares["meaning"] == selection.Shares("c0", 8, 1, 8)
    assert summary.shares["source"].distinct == 2
    for key in ("vae", "pixels"):
        want = selection.neighbourhoods(ev.plain_lists(a, key), sorted(pick)).max() + 1
        assert summary.spread[key] == want
    # one photo's near-copies hold together in the layout space (each other's nearest)
    one_photo = [int(i) for i in np.flatnonzero(groups == "g0")]
    assert ev.summarise_selection(a, one_photo).spread["vae"] == 1
    text = words.selection_markdown(summary, {"vae": "VAE", "pixels": "Pixels"}, shown=8)
    assert text.startswith("**The 8 images you selected in **VAE**:**")
    assert "all 8 share *meaning* “c0”" in text and "2 share" not in text
    assert f"VAE {summary.spread['vae']}, Pixels {summary.spread['pixels']}" in text
    assert "Nothing selected" in words.selection_markdown(ev.summarise_selection(a, []), {})


# ------------------------------------------------------------------ against the controls


def _table(rows):
    cols = ["space", "labels", "knn5", "chance", "probe", "probe_chance", "probe_spread"]
    return pd.DataFrame(rows, columns=cols)


def test_control_readings_place_each_model_space_from_the_numbers():
    n = 1000
    table = _table(
        [
            ["vae", "meaning", 0.5, 0.1, 0.60, 0.1, 0.01],
            ["clip", "meaning", 0.5, 0.1, 0.41, 0.1, 0.01],
            ["dino", "meaning", 0.5, 0.1, 0.20, 0.1, 0.01],
            ["pixels", "meaning", 0.3, 0.1, 0.40, 0.1, 0.02],
            ["colour", "meaning", 0.3, 0.1, 0.30, 0.1, 0.02],
        ]
    )
    got = {r.space: r for r in ev.control_readings(table, ["meaning"], n)}
    assert {k: r.position for k, r in got.items()} == {
        "vae": "above",
        "clip": "level",
        "dino": "below",
    }
    assert got["vae"].control == "pixels" and got["vae"].control_score == 0.40
    assert got["vae"].margin == pytest.approx(2 * math.sqrt((0.6 * 0.4 + 0.4 * 0.6) / n))
    # the same gap on a tenth of the images is within the noise
    small = {r.space: r.position for r in ev.control_readings(table, ["meaning"], 40)}
    assert small["vae"] == "level"
    text = words.controls_markdown(list(got.values()), {"vae": "VAE", "pixels": "Pixels"})
    assert "**VAE** (60% ± 1) scores above the best control, **Pixels** (40% ± 2" in text
    assert "raw pixels alone don't" in text
    models_only = table[~table.space.isin(["pixels", "colour"])]
    assert ev.control_readings(models_only, ["meaning"], n) == []


def test_verdict_paragraphs_quote_the_table(flat):
    table = atlas.metrics_table(flat, "pca")
    titles = {s.key: s.title.split(" · ")[0] for s in flat.spaces}
    text = words.evidence_markdown(flat, table, titles)
    for r in table.itertuples():
        assert f"{r.probe:.0%} ± {100 * r.probe_spread:.0f}" in text
    positions = re.findall(r"scores (above|level with|below) the best control", text)
    assert len(positions) == 2  # vae and clip against the pixels control
    only_models = atlas.from_arrays(
        {"vae": flat.embeddings["vae"]}, flat.labels, flat.images.images
    )
    hint = words.evidence_markdown(only_models, atlas.metrics_table(only_models, "pca"), {})
    assert "No control is open" in hint


# ------------------------------------------------------------------ export


def _rows(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_export_writes_similarity_overlap_probe_columns_and_the_selection(tmp_path):
    a = grouped_atlas()
    a.images.labels[0] = "=HYPERLINK(1)"  # a label a spreadsheet would run
    a.images.labelings["meaning"][0] = "=HYPERLINK(1)"
    a.selection = [3, 5, 40]
    written = atlas.save(a, tmp_path, "pca")
    with open(written["similarity"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["space_a", "space_b", "cka", "mutual_knn10"]
    assert [(r["space_a"], r["space_b"]) for r in rows] == [
        ("vae", "vae"),
        ("vae", "pixels"),
        ("pixels", "pixels"),
    ]
    assert float(rows[1]["mutual_knn10"]) == round(ev.point_overlap(a, "vae", "pixels").mean(), 4)
    metrics_rows = _rows(written["metrics"])
    assert {"probe", "probe_chance", "probe_spread", "probe_folds"} <= set(metrics_rows[0])
    overlap = _rows(written["point_overlap"])
    assert len(overlap) == 48 and "overlap10_vae_pixels" in overlap[0]
    assert overlap[0]["label"] == "'=HYPERLINK(1)"  # neutralised
    points = _rows(written["points"])
    assert [int(r["index"]) for r in points if r["selected"] == "1"] == [3, 5, 40]
    meta = json.loads(written["meta"].read_text())
    assert meta["selection"] == [3, 5, 40] and meta["evidence"]["own_group_left_out"] is True
    back, _ = atlas.load_saved(tmp_path)
    assert back.selection == [3, 5, 40]


def test_the_controls_pass_public_modes_model_rules(monkeypatch):
    from explorer.ui.atlas.request import OpenRequest
    from explorer.ui.components import check_space_refs

    monkeypatch.setenv("EXPLORER_PUBLIC", "1")
    req = OpenRequest(
        checked=("VAE", "Pixels (control)", "Texture (control)"), vae_model="test-tiny"
    )
    refs = req.spaces()
    assert refs == ["vae:test-tiny", "pixels:16x16-rgb", "texture:hog-128px"]
    assert req.checked_for_public().folder is None
    with pytest.raises(ExplorerError, match="one form"):
        check_space_refs(["pixels:../../etc/passwd"], None)
    with pytest.raises(ExplorerError, match="only runs the models in its list"):
        check_space_refs(["colour:hsv-8x4x4", "vae:someone/other-vae"], None)


def test_a_refused_lasso_puts_the_panels_back_with_a_sentence(monkeypatch):
    """The browser draws a lasso's selection before the server answers: a refused one (past the
    display cap) is answered with the atlas's own selection, so the panels go back to it."""
    import gradio as gr

    from explorer.ui.atlas import evidence_handlers as handlers

    a = grouped_atlas()
    atlas.STORE.put(a)
    a.selection = [1, 2]
    monkeypatch.setenv("EXPLORER_DISPLAY_MAX_POINTS", "4")
    event = gr.EventData(None, {"indices": [0, 1, 2, 3, 4], "space": "vae"})
    update, sentence, gallery = handlers.on_atlas_lasso(a.id, "pca", event)
    assert json.loads(update)["selection"] == [1, 2] and a.selection == [1, 2]
    assert "at most 4" in sentence and sentence.startswith("> **⚠ Not done.**")
    event = gr.EventData(None, {"indices": [4, 0, 3], "space": "pixels"})
    update, sentence, gallery = handlers.on_atlas_lasso(a.id, "pca", event)
    assert json.loads(update)["selection"] == [0, 3, 4] == a.selection
    assert "you selected in **Pixels &#40;control&#41;**" in sentence
    assert len(gallery["value"]) == 3
    _, sentence, gallery = handlers.on_atlas_lasso(a.id, "pca", gr.EventData(None, {"indices": []}))
    assert a.selection == [] and "Nothing selected" in sentence and not gallery["visible"]


def _hidden_label_atlas(signal: float, seed: int = 0, control_signal: float | None = None) -> Atlas:
    """Two classes of 120 images in two spaces whose neighbours follow noise: each has one
    coordinate shifted by ``signal`` per class among 60 of wide noise, so a linear probe can
    find the label (for a large enough signal) where a 5-neighbour vote cannot. With
    ``control_signal`` a third space, the ``pixels`` control, is built the same way."""
    rng = np.random.default_rng(seed)
    n = 120
    classes = np.arange(n) % 2
    labels = [f"c{c}" for c in classes]
    image_set = ImageSet("hidden", _images(n), labels, [f"p{i}" for i in range(n)])
    shifts = {"vae": signal, "other": signal}
    spaces = [Space("vae", "vae:a", "vae", "a"), Space("other", "clip:b", "clip", "b")]
    if control_signal is not None:
        shifts["pixels"] = control_signal
        spaces.append(Space("pixels", "pixels:16x16-rgb", "pixels", "16x16-rgb"))
    embs = {}
    for key, shift in shifts.items():
        x = rng.standard_normal((n, 60)) * 3.0
        x[:, 0] = shift * (2 * classes - 1) + 0.2 * rng.standard_normal(n)
        embs[key] = x.astype(np.float32)
    coords = {"pca": {k: v[:, :2].copy() for k, v in embs.items()}}
    thumbs = atlas.write_thumbs(
        image_set.images, [image_hash(im) for im in image_set.images], atlas.thumb_dir()
    )
    return Atlas(f"test-hidden-{signal}", image_set, spaces, embs, coords, thumbs=thumbs)


def test_a_probe_above_chance_beside_a_chance_vote_is_said_in_one_sentence():
    a = _hidden_label_atlas(signal=1.0)
    table = atlas.metrics_table(a, "pca")
    v = atlas.verdict(table, a.labels)
    assert not v.above_chance  # the vote: noise decides the neighbours
    found = ev.probes_above_chance(table, v.labeling, len(a.images))
    assert {s for s, _, _ in found} == {"vae", "other"}
    assert all(p > 0.9 and c == pytest.approx(0.5, abs=0.05) for _, p, c in found)
    titles = {"vae": "VAE", "other": "CLIP"}
    text = words.evidence_markdown(a, table, titles, v)
    sentence = next(line for line in text.split("\n\n") if "neighbour vote" in line)
    for s, p, c in found:  # the sentence quotes the table's own numbers
        assert f"**{titles[s]}** {p:.0%} (chance {c:.0%})" in sentence
    # the export's verdict says the same
    assert "neighbour vote finds no grouping" in views.export_verdict(a, "pca")


@pytest.mark.parametrize(("control_signal", "where"), [(1.0, "level with"), (0.0, "above")])
def test_the_reconciling_sentence_places_the_probe_against_the_control(control_signal, where):
    """The hidden label is as readable from the control (level) or not at all (above): the
    sentence says which, with the two probes' numbers from the table."""
    a = _hidden_label_atlas(signal=1.0, control_signal=control_signal)
    table = atlas.metrics_table(a, "pca")
    v = atlas.verdict(table, a.labels)
    assert not v.above_chance
    readings = [
        r for r in ev.control_readings(table, [v.labeling], len(a.images)) if r.space == "vae"
    ]
    assert [r.position for r in readings] == [where.split()[0]]
    titles = {"vae": "VAE", "other": "CLIP", "pixels": "Pixels"}
    text = words.evidence_markdown(a, table, titles, v)
    sentence = next(line for line in text.split("\n\n") if "neighbour vote" in line)
    r = readings[0]
    assert (
        f"By the same probe **VAE** ({r.score:.0%}) is {where} the best control, "
        f"**Pixels** ({r.control_score:.0%})"
    ) in sentence


def test_no_reconciling_sentence_where_the_probe_is_at_chance_too():
    a = _hidden_label_atlas(signal=0.0)
    table = atlas.metrics_table(a, "pca")
    v = atlas.verdict(table, a.labels)
    assert not v.above_chance
    assert ev.probes_above_chance(table, v.labeling, len(a.images)) == []
    assert "neighbour vote" not in words.evidence_markdown(a, table, {}, v)


def test_the_overlap_view_starts_on_a_model_space_beside_a_meaning_trained_one():
    from explorer.ui.atlas import evidence_handlers as handlers

    a = grouped_atlas()  # vae and the pixels control: the model space comes first
    assert handlers.default_pair(a) == ("vae", "pixels")
    a.spaces = [a.spaces[1], a.spaces[0], Space("clip", "clip:b", "clip", "b")]
    assert handlers.default_pair(a) == ("vae", "clip")
