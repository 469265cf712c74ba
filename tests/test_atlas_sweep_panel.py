"""The atlas tab's UNet sweep panel (explorer.ui.atlas.sweep), its handlers called as Gradio calls
them, on the tiny random models: the sweep of the open set, its heatmap and sentences, opening the
atlas at a cell, and the refusals."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from explorer import atlas, datasets
from explorer.atlas import sweep
from explorer.spaces import unet_blocks
from explorer.ui.atlas import sweep as panel
from tests import tiny_models

NAME = tiny_models.UNET.name


def _progress(*_args, **_kwargs) -> None:
    return None


@pytest.fixture(scope="module")
def opened():
    s = datasets.teaching_set(size=32)
    keep = list(dict.fromkeys(s.labeling("source")))[:4]
    small = s.subset([i for i, g in enumerate(s.labeling("source")) if g in keep])
    a = atlas.build(small, ["vae:test-tiny", "clip:test-clip"], "pca")
    atlas.STORE.put(a)
    return a


@pytest.mark.slow
def test_the_panel_runs_the_sweep_of_the_open_set_and_opens_a_cell(opened):
    status, labels, fig, text, cell, table, csv_path = panel.on_atlas_unet_sweep(
        opened.id, NAME, ["0", "200"], 1, ["empty", "label"], "appearance", "probe", _progress
    )
    assert "UNet passes" in status and f"{len(opened.images)} images" in status
    assert labels["value"] == "appearance" and labels["choices"] == opened.images.labeling_names
    assert isinstance(table, pd.DataFrame) and len(table) == 5 * 2 * 2 * 3
    assert Path(csv_path).read_text().splitlines()[0] == ",".join(sweep.COLUMNS)
    assert "leaks the label by construction" in text and "*appearance*" in text
    names = [a.text.rsplit(" ", 1)[0] for a in fig.layout.annotations if a.text]
    assert {"VAE latents", "CLIP", "pixels", "colour", "texture", "chance"} <= set(names)
    stored = sweep.STORE.get(opened.id)
    assert stored is not None and stored.table.equals(table)
    best = sweep.prompt_reading(table, "appearance", "probe").best["empty"]
    assert cell["value"] == f"{best.block}@{best.timestep}"
    # another labelling and score: the same sweep, read again
    fig2, text2, _ = panel.on_atlas_sweep_view(opened.id, "meaning", "knn5")
    assert "5-NN vote on *meaning*" in text2 and fig2.layout.title.text != fig.layout.title.text
    # the atlas opened at a cell: the UNet panel at that block and timestep
    out = panel.on_atlas_sweep_open(opened.id, "up0@200", "pca", None, _progress)
    reopened = atlas.STORE.get(out[0])
    assert [s.ref for s in reopened.spaces] == [
        "vae:test-tiny",
        "clip:test-clip",
        f"unet:{NAME}@t200/up0",
    ]
    assert reopened.embeddings["unet"].shape == (len(opened.images), 64)
    assert sweep.STORE.get(reopened.id) is stored  # the panel keeps its sweep
    with pytest.raises(Exception, match="one of the sweep's cells"):
        panel.on_atlas_sweep_open(opened.id, "up9@200", "pca", None, _progress)


def test_the_panel_refuses_without_a_set_and_past_the_public_budget(opened, monkeypatch):
    with pytest.raises(Exception, match="Open a set first"):
        panel.on_atlas_unet_sweep(None, NAME, ["0"], 1, ["empty"], "meaning", "probe", _progress)
    with pytest.raises(Exception, match="at least one prompt"):
        panel.on_atlas_unet_sweep(opened.id, NAME, ["0"], 1, [], "meaning", "probe", _progress)
    with pytest.raises(Exception, match="Run the sweep first"):
        panel.on_atlas_sweep_open("no-such-sweep", "mid@0", "pca", None, _progress)
    monkeypatch.setenv("EXPLORER_PUBLIC", "1")
    every = [str(t) for t in sweep.DEFAULT_TIMESTEPS]
    cost = unet_blocks.estimate(
        NAME, len(opened.images), timesteps=7, blocks=["up1"], seeds=4, prompts=3, device="cpu"
    )
    assert cost.seconds > unet_blocks.unet.CPU_BUDGET_S
    with pytest.raises(Exception, match="at most 120 s of UNet work"):
        panel.on_atlas_unet_sweep(
            opened.id, NAME, every, 4, list(unet_blocks.PROMPTS), "meaning", "probe", _progress
        )
    with pytest.raises(Exception, match="only runs the models in its list"):
        panel.on_atlas_unet_sweep(
            opened.id, "someone/else", ["0"], 1, ["empty"], "meaning", "probe", _progress
        )
