"""The UNet sweep (explorer.atlas.sweep, `python -m explorer unet-sweep`, the atlas panel's
words and heatmap) on the tiny random UNet: every (block, timestep, prompt, labelling) row, the
scores against the atlas's own, the atlas opened at a sweep cell, the Ray runner's path, and the
prompt experiment read from constructed tables."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from explorer import atlas, cli, datasets
from explorer.analysis import metrics
from explorer.analysis.probe import probe
from explorer.atlas import sweep
from explorer.core.errors import ExplorerError
from explorer.images import matrices
from explorer.spaces import baselines, ray_engine, unet_blocks
from explorer.spaces import embed as embeddings
from explorer.spaces.cache import EmbeddingCache
from explorer.ui.atlas import sweep_views
from tests import tiny_models

NAME = tiny_models.UNET.name
BLOCKS = ("down0", "down1", "mid", "up0", "up1")


@pytest.fixture(scope="module")
def small_set():
    """4 photos (2 meanings, 2 photos each) in their 7 palettes: 28 images, 32 px."""
    s = datasets.teaching_set(size=32)
    keep = list(dict.fromkeys(s.labeling("source")))[:4]
    return s.subset([i for i, g in enumerate(s.labeling("source")) if g in keep])


@pytest.fixture(scope="module")
def plan():
    return sweep.make_plan(NAME, timesteps="0,200", seeds=2, prompts="empty,neutral,label")


@pytest.fixture(scope="module")
def result(small_set, plan, tmp_path_factory):
    cache = EmbeddingCache(tmp_path_factory.mktemp("cache"))
    refs = {"pixels": baselines.baseline_features("pixels", small_set.images)}
    return sweep.run(small_set, plan, cache=cache, references=refs), cache


def test_the_plan_defaults_to_every_block_and_checks_its_parts():
    p = sweep.make_plan(NAME)
    assert p.blocks == BLOCKS and p.timesteps == sweep.DEFAULT_TIMESTEPS
    assert p.prompts == unet_blocks.PROMPTS and p.seeds == 4
    assert sweep.make_plan(NAME, blocks="up1,down0..1").blocks == ("down0", "down1", "up1")
    for kw, match in [
        ({"blocks": "up3"}, "no block up3"),
        ({"prompts": "empty,loud"}, "Unknown prompt loud"),
        ({"seeds": 0}, "1 to 16"),
        ({"timesteps": "0,2000"}, "0 to 999"),
    ]:
        with pytest.raises(ExplorerError, match=match):
            sweep.make_plan(NAME, **kw)


@pytest.mark.slow
def test_the_table_has_every_block_timestep_prompt_and_labelling(result, small_set, plan):
    res, _ = result
    t = res.table
    assert list(t.columns) == list(sweep.COLUMNS)
    want = {
        (b, ts, p, lab)
        for b in BLOCKS
        for ts in (0, 200)
        for p in unet_blocks.PROMPTS
        for lab in small_set.labeling_names
    }
    got = set(zip(t.block, t.timestep, t.prompt, t.labels, strict=True))
    assert got == want and len(t) == len(want) == 5 * 2 * 3 * 3
    assert t[["knn5", "chance"]].stack().between(0, 1).all()
    probed = t.probe.dropna()
    assert len(probed) == len(t) and probed.between(0, 1).all()
    assert list(res.references.space.unique()) == ["pixels"]


@pytest.mark.slow
def test_cells_are_the_blocks_rows_and_are_scored_as_the_atlas_scores(result, small_set, plan):
    """A cell's features are the space `unet:NAME@tT/<block>/s2` and its numbers are the atlas's
    metrics table's and the probe's on those rows; opening the atlas at that cell reads them from
    the cache the sweep filled."""
    res, cache = result
    ref = sweep.open_ref(plan, "up0", 200)
    assert ref == f"unet:{NAME}@t200/up0/s2"
    hashes = small_set.keys or [embeddings.image_hash(im) for im in small_set.images]
    key = unet_blocks.block_cache_key(unet_blocks.parse_ref(ref.split(":", 1)[1]), None, "cpu")
    found, missing = cache.get_many(key, hashes)
    assert not missing  # the sweep stored the cell under the space's own key
    fresh = embeddings.embed(ref, small_set.images)  # no cache: computed again
    stored = np.stack([found[i] for i in range(len(small_set))])
    np.testing.assert_allclose(stored, fresh, rtol=1e-4, atol=1e-5)
    a = atlas.build(small_set, ["vae:test-tiny", ref], "pca", cache=cache)
    assert a.space("unet").title == f"UNet features · {NAME}@t200/up0/s2"
    table = atlas.metrics_table(a, "pca")
    for labels in small_set.labeling_names:
        ours = res.table[
            (res.table.block == "up0")
            & (res.table.timestep == 200)
            & (res.table.prompt == "empty")
            & (res.table.labels == labels)
        ].iloc[0]
        theirs = table[(table.space == "unet") & (table.labels == labels)].iloc[0]
        assert ours.knn5 == pytest.approx(theirs.knn5, abs=1e-4)
        assert ours.chance == pytest.approx(theirs.chance, abs=1e-4)
        p = probe(
            a.embeddings["unet"], small_set.labeling(labels), groups=small_set.groups_for(labels)
        )
        assert ours.probe == pytest.approx(p.accuracy, abs=1e-4)


def test_the_label_prompt_captions_each_image_with_its_own_label(small_set):
    plan = sweep.make_plan(NAME, timesteps="100", blocks="mid", seeds=1, prompts="label")
    cells = sweep.sweep_features(small_set, plan)
    x = cells[("mid", 100, "label")]
    labels = small_set.labels
    for label in dict.fromkeys(labels):
        rows = [i for i, lab in enumerate(labels) if lab == label]
        want = embeddings.embed(
            f"unet:{NAME}@t100/mid/p:{unet_blocks.caption('label', label)}",
            [small_set.images[i] for i in rows],
        )
        np.testing.assert_allclose(x[rows], want, rtol=1e-5, atol=1e-6)
    empty = embeddings.embed(f"unet:{NAME}@t100", small_set.images)
    assert not np.allclose(x, empty)


def _in_process_ray_runner(space, images, progress, options):
    """What a RayEngine does with a batch, without Ray: its actor on its dataset rows."""
    actor = ray_engine.EmbedActor(space, options)
    rows = ray_engine._rows(images)
    batch = {k: np.array([r[k] for r in rows], dtype=object) for k in rows[0]}
    out = actor(batch)
    return out["vector"][np.argsort(out["index"])]


def test_the_sweep_runs_its_passes_through_a_runner_like_any_space(small_set):
    plan = sweep.make_plan(NAME, timesteps="0,400", blocks="down1,up1", seeds=2, prompts="empty")
    local = sweep.sweep_features(small_set, plan)
    remote = sweep.sweep_features(small_set, plan, runner=_in_process_ray_runner)
    assert (
        set(local) == set(remote) == {(b, t, "empty") for b in ("down1", "up1") for t in (0, 400)}
    )
    for k in local:
        np.testing.assert_allclose(local[k], remote[k], rtol=1e-5, atol=1e-6)


def test_scores_are_the_metrics_and_the_probe(small_set):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(len(small_set), 8)).astype(np.float32)
    rows = {r["labels"]: r for r in sweep.score(x, small_set)}
    m = small_set.labeling("meaning")
    g = small_set.groups_for("meaning")
    assert rows["meaning"]["knn5"] == round(metrics.knn_accuracy_grouped(x, m, g, 5), 4)
    assert rows["meaning"]["chance"] == round(metrics.chance_level_grouped(m, g, 5), 4)
    assert rows["meaning"]["probe"] == round(probe(x, m, groups=g).accuracy, 4)
    src = small_set.labeling("source")  # the grouping itself: scored plainly
    assert small_set.groups_for("source") is None
    assert rows["source"]["knn5"] == round(metrics.knn_accuracy(x, src, 5), 4)


@pytest.mark.slow
def test_the_cli_writes_every_row_and_says_the_cost_first(tmp_path, monkeypatch, capsys, small_set):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "photos"
    for i, (im, label) in enumerate(zip(small_set.images, small_set.labels, strict=True)):
        (src / label).mkdir(parents=True, exist_ok=True)
        im.save(src / label / f"{i}.png")
    out = tmp_path / "sweep"
    argv = ["unet-sweep", str(src), "--out", str(out), "--unet", NAME, "--timesteps", "0,600"]
    assert cli.main([*argv, "--seeds", "1", "--references", "pixels,colour"]) == 0
    with open(out / "sweep.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(sweep.COLUMNS)
    assert {(r["block"], r["timestep"], r["prompt"], r["labels"]) for r in rows} == {
        (b, t, p, "label") for b in BLOCKS for t in ("0", "600") for p in unet_blocks.PROMPTS
    }
    refs = pd.read_csv(out / "references.csv")
    assert list(refs.space) == ["pixels", "colour"]
    html = (out / "sweep.html").read_text()
    assert html.count("plotly-graph-div") == 2  # probe and knn5 for the one labelling
    captured = capsys.readouterr()
    cost = unet_blocks.estimate(
        NAME, 28, timesteps=2, blocks=BLOCKS, seeds=1, prompts=3, device="cpu"
    )
    assert f"= {cost.passes:,} UNet passes" in captured.err
    assert captured.err.index("UNet passes") < captured.err.index("wrote")
    assert "leaks the label by construction" in captured.out
    assert cli.main([*argv, "--blocks", "up9"]) == 2
    assert "no block up9" in capsys.readouterr().err


def _table(score: dict[str, float], default: float = 0.2) -> pd.DataFrame:
    """A sweep table for blocks down0/mid/up0 and timesteps 0/200: every cell ``default`` but the
    (prompt, block, timestep) cells in ``score`` (``"label"`` alone: every cell of that prompt)."""
    rows = []
    for p in unet_blocks.PROMPTS:
        for t in (0, 200):
            for b in ("down0", "mid", "up0"):
                v = score.get(f"{p}/{b}/{t}", score.get(p, default))
                rows.append([b, t, p, "meaning", v, v, 0.1, 0.12])
    return pd.DataFrame(rows, columns=list(sweep.COLUMNS))


def test_the_prompt_experiment_is_read_from_the_numbers():
    t = _table({"empty/up0/0": 0.31, "neutral/up0/0": 0.33, "label": 0.95})
    r = sweep.prompt_reading(t, "meaning", "probe")
    assert r.best["empty"] == sweep.Cell("up0", 0, 0.31)
    assert r.best["label"].score == 0.95 and r.chance == pytest.approx(0.12)
    assert r.default_cell == sweep.Cell("mid", 200, 0.2)
    text = sweep_views.reading_markdown(r, main_labels="meaning", model=NAME, n_images=28, seeds=2)
    assert "**up0 at t=0** (31%)" in text
    assert "lifts the best score by 62 points" in text  # 0.95 - max(0.31, 0.33)
    assert "leaks the label by construction" in text
    assert "mid block, t=200) scores 20%" in text
    assert "falls by 11 points: 31% at t=0, 20% at t=200" in text
    flat = sweep_views.reading_markdown(
        sweep.prompt_reading(_table({"label": 0.22}), "meaning", "probe"),
        main_labels="meaning", model=NAME, n_images=28, seeds=2,
    )  # fmt: skip
    assert "changes the best score by less than 10 points" in flat
    assert "lifts" not in flat and "leaks the label by construction" in flat
    no_label = _table({}).query("prompt != 'label'")
    text = sweep_views.reading_markdown(
        sweep.prompt_reading(no_label, "meaning", "knn5"),
        main_labels="meaning", model=NAME, n_images=28, seeds=2,
    )  # fmt: skip
    assert "leaks" not in text and "no cell beats chance by 10 points" in text


def test_the_heatmap_holds_the_grid_and_the_reference_lines():
    t = _table({"empty/up0/0": 0.31, "label": 0.95})
    values, prompts, blocks, timesteps = sweep.grid(t, "meaning", "probe")
    assert values.shape == (3, 3, 2) and blocks == ["down0", "mid", "up0"] and timesteps == [0, 200]
    assert values[0, 2, 0] == 0.31 and np.all(values[2] == 0.95)
    fig = matrices.sweep_heatmap(
        values,
        panels=[sweep_views.PROMPT_TITLES[p] for p in prompts],
        blocks=blocks,
        timesteps=timesteps,
        references=[("CLIP", 0.81), ("<img src=x>", 0.4)],
        chance=0.12,
    )
    heat = [d for d in fig.data if d.type == "heatmap"]
    assert len(heat) == 4  # three prompts and the scale
    np.testing.assert_array_equal(np.asarray(heat[0].z), values[0])
    texts = [a.text for a in fig.layout.annotations]
    assert "CLIP 0.81" in texts and "chance 0.12" in texts
    assert "&lt;img src=x&gt; 0.40" in texts and not any("<img" in x for x in texts)
    with pytest.raises(ExplorerError, match="no labelling"):
        sweep.grid(t, "colour")
