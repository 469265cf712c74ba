"""The teaching set: colour and meaning crossed, and a real VAE that follows colour, not meaning."""

from __future__ import annotations

import colorsys
import logging
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer.datasets import teaching
from explorer.datasets.teaching import APPEARANCES, SOURCES, teaching_set

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ts():
    return teaching_set()


def _pixels(images):
    return [np.asarray(im) for im in images]


def test_structure(ts):
    n = len(ts.images)
    assert 60 <= n <= 150
    assert set(ts.labelings) == {"meaning", "appearance", "source"}
    assert len(ts.paths) == n
    for labels in ts.labelings.values():
        assert len(labels) == n
        assert all(isinstance(lab, str) and lab for lab in labels)
    for im in ts.images:
        assert isinstance(im, Image.Image) and im.mode == "RGB"
        assert max(im.size) == 128
    assert "crossed on purpose" in ts.description


@pytest.mark.parametrize("size", [64, 97, 256])
def test_longer_side_is_size(size):
    ts = teaching_set(size=size)
    assert all(max(im.size) == size and im.mode == "RGB" for im in ts.images)


def test_all_sources_are_installed_and_fully_crossed(ts):
    # The test environment installs scikit-image and scikit-learn, so nothing is skipped: every
    # source photo appears exactly once in every appearance family.
    pairs = list(zip(ts.labelings["source"], ts.labelings["appearance"], strict=True))
    assert len(set(pairs)) == len(pairs) == len(SOURCES) * len(APPEARANCES)
    assert set(ts.labelings["source"]) == {s.id for s in SOURCES}
    assert set(ts.labelings["appearance"]) == {a.name for a in APPEARANCES}


def test_meaning_and_appearance_are_crossed(ts):
    meanings_of = defaultdict(set)
    appearances_of = defaultdict(set)
    sources_of = defaultdict(set)
    meaning_of_source = defaultdict(set)
    for m, a, s in zip(
        *(ts.labelings[k] for k in ("meaning", "appearance", "source")), strict=True
    ):
        meanings_of[a].add(m)
        appearances_of[m].add(a)
        sources_of[m].add(s)
        meaning_of_source[s].add(m)
    assert len(meanings_of) >= 5 and len(appearances_of) >= 5
    for a, meanings in meanings_of.items():
        assert len(meanings) >= 2, a
    for m in appearances_of:
        assert len(appearances_of[m]) >= 2, m
        assert len(sources_of[m]) >= 2, m  # several different photos per meaning
    assert all(len(ms) == 1 for ms in meaning_of_source.values())  # a photo has one meaning


def test_paths_name_the_source_and_palette(ts):
    for path, src, app in zip(
        ts.paths, ts.labelings["source"], ts.labelings["appearance"], strict=True
    ):
        assert path == f"{src} (palette: {app})"
        assert path.split(":", 1)[0] in {"skimage", "sklearn"}


def test_same_seed_same_pixels_other_seed_other_crops(ts):
    again = teaching_set(seed=0)
    assert again.paths == ts.paths and again.labelings == ts.labelings
    assert all(
        np.array_equal(a, b) for a, b in zip(_pixels(ts.images), _pixels(again.images), strict=True)
    )
    other = teaching_set(seed=1)
    assert other.labelings == ts.labelings
    differ = [
        not np.array_equal(a, b)
        for a, b in zip(_pixels(ts.images), _pixels(other.images), strict=True)
    ]
    assert sum(differ) > len(differ) // 2


def test_returned_images_are_not_shared_between_calls():
    first = teaching_set(size=64)
    before = np.asarray(first.images[0]).copy()
    first.images[0].paste((255, 0, 0), (0, 0, *first.images[0].size))
    assert np.array_equal(np.asarray(teaching_set(size=64).images[0]), before)


def _mean_hue_and_saturation(images):
    rgb = np.concatenate([np.asarray(im, np.float64).reshape(-1, 3) for im in images]).mean(0)
    h, _, s = colorsys.rgb_to_hls(*(rgb / 255.0))
    return h * 360.0, s


def test_appearance_families_look_like_their_names(ts):
    by_app = defaultdict(list)
    for im, a in zip(ts.images, ts.labelings["appearance"], strict=True):
        by_app[a].append(im)
    grey = np.concatenate(
        [np.asarray(im, np.int16).reshape(-1, 3) for im in by_app["grey high-contrast"]]
    )
    assert np.abs(grey[:, 0] - grey[:, 1]).max() <= 2 and np.abs(grey[:, 1] - grey[:, 2]).max() <= 2
    hue = {a: _mean_hue_and_saturation(ims)[0] for a, ims in by_app.items()}
    assert 15 <= hue["sepia"] <= 50
    assert 190 <= hue["cyan-blue"] <= 230
    assert 290 <= hue["magenta-pink"] <= 340
    assert 80 <= hue["green"] <= 140
    assert 0 <= hue["orange-red"] <= 35
    # Every family's images are mostly its own colour, whichever photo they come from.
    for im, a in zip(ts.images, ts.labelings["appearance"], strict=True):
        if a not in ("grey high-contrast", "pastel low-contrast"):  # those have no hue
            h, _ = _mean_hue_and_saturation([im])
            assert min(abs(h - hue[a]), 360 - abs(h - hue[a])) < 45, a


def test_recolour_keeps_tone_order():
    # A horizontal grey ramp stays a ramp (darker on the left) in every family.
    ramp = Image.fromarray(np.tile(np.linspace(0, 255, 64).astype(np.uint8), (16, 1))).convert(
        "RGB"
    )
    for app in APPEARANCES:
        lum = np.asarray(teaching.recolour(ramp, app), np.float64) @ [0.299, 0.587, 0.114]
        assert np.all(np.diff(lum.mean(axis=0)) >= -1e-9), app.name
        assert lum[:, -1].mean() - lum[:, 0].mean() > 60, app.name


def test_bad_arguments():
    for size in (31, 2049, 64.0, True, "128"):
        with pytest.raises(ValueError, match="size"):
            teaching_set(size=size)
    for seed in (-1, 1.5, None):
        with pytest.raises(ValueError, match="seed"):
            teaching_set(seed=seed)


def test_missing_files_are_skipped_with_a_warning(tmp_path, monkeypatch, caplog):
    keep = {"chelsea.png", "coffee.png", "coins.png"}
    real = {pkg: teaching._data_dir(pkg) for pkg in ("skimage", "sklearn")}
    fake = {pkg: tmp_path / pkg for pkg in real}
    for src in SOURCES:
        if src.file in keep:
            fake[src.package].mkdir(exist_ok=True)
            shutil.copy(real[src.package] / src.file, fake[src.package] / src.file)
    monkeypatch.setattr(teaching, "_data_dir", fake.get)
    teaching._decoded.cache_clear()
    teaching._working_copy.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="explorer.datasets.teaching"):
            ts = teaching_set(size=64)
    finally:
        teaching._decoded.cache_clear()
        teaching._working_copy.cache_clear()
    assert {p.split(" ")[0].split(":")[1] for p in ts.paths} == keep
    assert len(ts.images) == len(keep) * len(APPEARANCES)
    assert "astronaut.png is not installed" in caplog.text
    assert f"{len(keep)} freely licensed photos" in ts.description


def test_readme_lists_every_source():
    text = (ROOT / "assets" / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Teaching set") :]
    for src in SOURCES:
        assert f"`{src.file}`" in section, src.file
    for app in APPEARANCES:
        assert app.name in section, app.name


# --------------------------------------------------------------------------- the real VAE


@pytest.mark.weights
def test_real_vae_follows_appearance_not_meaning(ts, taef2_dir):
    from explorer.analysis import metrics
    from explorer.models.vae import load_vae
    from explorer.spaces import embed as embeddings

    vae = load_vae("local:taef2", taef2_dir, device="cpu")
    x = embeddings.vae_embedding(vae, ts.images)  # the app's "VAE space": 64x64, flattened
    lab = ts.labelings
    meaning = metrics.knn_accuracy_grouped(x, lab["meaning"], lab["source"], k=5)
    chance = metrics.chance_level_grouped(lab["meaning"], lab["source"], k=5)
    appearance = metrics.knn_accuracy_grouped(x, lab["appearance"], lab["source"], k=5)
    ungrouped = metrics.knn_accuracy(x, lab["meaning"], k=5)
    report = (
        f"meaning {meaning:.3f} (chance {chance:.3f}, same-photo neighbours counted "
        f"{ungrouped:.3f}), appearance {appearance:.3f}"
    )
    assert abs(meaning - chance) <= 0.3, report
    assert appearance >= meaning + 0.3, report
    # Same-photo neighbours leak: counted, the VAE looks as if it knew the meaning.
    assert ungrouped > meaning + 0.3, report
