"""Regression tests for the holes a hostile visitor found (each failed before its fix)."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
from PIL import Image

from explorer import atlas, datasets
from explorer.core.errors import BadImageError, ExplorerError
from explorer.datasets import streaming
from explorer.images import io as imaging
from explorer.lab import actions as lab


def test_hub_ids_never_name_a_builtin_loader_or_a_local_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret" / "photos").mkdir(parents=True)
    for text in ("json", "imagefolder", "csv", "parquet", "secret/photos"):
        assert not streaming.is_hub_id(text), text
        with pytest.raises(datasets.DatasetError, match="not a Hugging Face dataset id"):
            datasets.from_hub(text)
    assert streaming.is_hub_id("timm/mini-imagenet")


def test_dataset_rows_must_carry_their_image_not_a_server_path(tmp_path):
    secret = tmp_path / "secret.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(secret)
    for path in (str(secret), "/etc/passwd", "../x.png"):
        with pytest.raises(BadImageError, match="names a file") as info:
            streaming._hub_image({"path": path, "bytes": None})
        assert path not in str(info.value)  # and the server's path is not echoed back
    png = secret.read_bytes()
    assert streaming._hub_image({"path": str(secret), "bytes": png}) == png


def test_an_edit_amount_must_be_a_finite_bounded_number(astronaut):
    for amount in (math.nan, math.inf, -math.inf, 1e9):
        with pytest.raises(ExplorerError, match="amount must be a number"):
            lab.edit(str(astronaut), "test-tiny", 0, "shift", amount, resolution=64)
    assert lab.edit(str(astronaut), "test-tiny", 0, "shift", 2.0, resolution=64).mean_abs_change > 0


def test_thumbnail_names_do_not_reveal_the_image(tmp_path):
    im = Image.new("RGB", (20, 20), (10, 200, 30))
    h = "ab" * 32
    (path,) = atlas.write_thumbs([im], [h], tmp_path)
    name = path.rsplit("/", 1)[-1][:-4]
    assert h[:32] != name and hashlib.sha256(h.encode()).hexdigest()[:32] != name
    assert atlas.write_thumbs([im], [h], tmp_path) == [path]  # stable within the process


def test_a_saved_atlas_reads_no_thumbnail_outside_its_folder(tmp_path):
    a = atlas.build(datasets.teaching_set(size=32), ["vae:test-tiny"], "pca")
    out = tmp_path / "saved"
    atlas.save(a, out, "pca")
    outside = tmp_path / "outside.png"
    Image.new("RGB", (32, 32), (255, 0, 255)).save(outside)
    meta = json.loads((out / "atlas.json").read_text())
    meta["thumbs"][0] = str(outside)  # absolute
    meta["thumbs"][1] = "../outside.png"  # relative, escaping
    (out / "atlas.json").write_text(json.dumps(meta))
    reopened, _ = atlas.load_saved(out)
    magenta = (255, 0, 255)
    for i in (0, 1):
        pixels = np.asarray(reopened.images.images[i])
        assert not (pixels == magenta).all(axis=-1).any()  # a grey stand-in, not the outside file
    assert np.asarray(reopened.images.images[2]).std() > 0  # the folder's own thumbnails load


def test_text_queries_are_capped():
    a = atlas.build(datasets.teaching_set(size=32), ["clip:test-clip"], "pca")
    with pytest.raises(ExplorerError, match=f"up to {atlas.MAX_QUERY_CHARS}"):
        atlas.text_query(a, "cat " * 10_000)
    top, _ = atlas.text_query(a, "a photo of a cat")
    assert len(top) == 8


def test_pillow_refuses_what_the_app_refuses(monkeypatch):
    from explorer.ui.app import build_demo

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored afterwards
    monkeypatch.setenv("EXPLORER_MAX_PIXELS", "1000000")
    build_demo()
    assert Image.MAX_IMAGE_PIXELS == 1_000_000
    assert imaging.max_pixels() == 1_000_000
