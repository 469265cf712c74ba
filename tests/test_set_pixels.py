"""A set's cost is bounded by the pixels it decodes, not only by its image count and
bytes. Decoded pixels are counted by a wrapper on Pillow's ``ImageFile.load`` (what every decode
goes through), never by timing; CPU time is measured and reported, not asserted."""

from __future__ import annotations

import io
import time
import zipfile

import numpy as np
import pytest
from PIL import Image, ImageFile

from explorer import datasets
from explorer.datasets import plan as set_plan
from explorer.images import io as imaging

SIDE = 4000  # 4000 x 4000 = 16 MP, the public limit for one image


@pytest.fixture
def decoded(monkeypatch):
    """Every pixel Pillow decodes from a file, as ``[(width, height), ...]``."""
    seen: list[tuple[int, int]] = []
    load = ImageFile.ImageFile.load

    def counting(self):
        if self.tile:  # not yet decoded: this call decodes it, at the size it has now
            seen.append(self.size)
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting)
    return seen


@pytest.fixture
def public(monkeypatch):
    monkeypatch.setenv("EXPLORER_PUBLIC", "1")


def flood_zip(path, n: int) -> None:
    """``n`` solid 16 MP PNGs in two class folders: a small zip that decodes to n * 16 MP."""
    buf = io.BytesIO()
    Image.new("RGB", (SIDE, SIDE), (200, 30, 30)).save(buf, "PNG")
    png = buf.getvalue()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(n):
            z.writestr(f"set/{'ab'[i % 2]}/{i:04d}.png", png)


def test_a_flood_of_solid_16_mp_pngs_is_refused_before_any_pixel_is_decoded(
    tmp_path, public, decoded, record_property
):
    path = tmp_path / "flood.zip"
    flood_zip(path, 100)  # 1,600 MP; the 1,000 of them fit every other cap too
    assert path.stat().st_size < 2_000_000
    p = datasets.plan_zip(path)
    assert (p.images, p.pixels) == (100, 100 * SIDE * SIDE)
    cpu0 = time.process_time()
    with pytest.raises(datasets.DatasetError) as info:
        datasets.from_zip(path)
    cpu = time.process_time() - cpu0
    record_property("cpu_s_refused_flood_request", round(cpu, 3))
    print(f"\nCPU for the refused 100 x 16 MP request: {cpu:.3f} s")
    message = str(info.value)
    assert "1,600 megapixels" in message and "1,000" in message and "downscale" in message
    assert decoded == []  # not one pixel


def test_a_set_within_the_cap_decodes_what_its_plan_said(
    tmp_path, public, decoded, record_property
):
    path = tmp_path / "ok.zip"
    flood_zip(path, 4)  # 64 MP: fits
    p = datasets.plan_zip(path)
    cpu0 = time.process_time()
    s = datasets.from_zip(path)
    cpu = time.process_time() - cpu0
    record_property("cpu_s_4_x_16_mp_pngs", round(cpu, 3))
    print(f"\nCPU for 4 x 16 MP PNGs decoded and downsized: {cpu:.3f} s")
    assert len(s) == 4 and all(max(im.size) == datasets.MAX_SIDE for im in s.images)
    assert sum(w * h for w, h in decoded) == p.pixels == 4 * SIDE * SIDE


def _jpeg(w: int, h: int) -> bytes:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([(xx * 255 // w), (yy * 255 // h), ((xx + yy) % 256)], -1).astype(np.uint8)
    arr = np.clip(arr + rng.normal(0, 4, arr.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_a_big_jpeg_is_decoded_at_the_reduced_scale_that_covers_the_set_size(tmp_path, decoded):
    data = _jpeg(4000, 3000)
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as z:
        for i in range(3):
            z.writestr(f"{'abc'[i]}/{i}.jpg", data)
    p = datasets.plan_zip(path)
    assert p.pixels == 3 * 1000 * 750  # 1/4 scale: the smallest that still covers 512 x 384
    s = datasets.from_zip(path)
    assert decoded == [(1000, 750)] * 3  # never the 12 MP
    assert s.images[0].size == (512, 384)
    # the same pixels (within JPEG's own error) as decoding it all and downsizing
    full = datasets.imageset.downsize(imaging.load_image(data))
    diff = np.asarray(s.images[0], np.float64) - np.asarray(full, np.float64)
    psnr = 10 * np.log10(255**2 / np.mean(diff**2))
    assert psnr > 35, psnr


def test_the_running_budget_stops_at_the_image_that_would_pass_it(tmp_path, decoded):
    files = []
    for i in range(4):
        f = tmp_path / f"img_{i}.png"
        Image.new("RGB", (1000, 1000), (i * 40, 0, 0)).save(f)
        files.append(f)
    budget = set_plan.PixelBudget("these files", limit=2_500_000)
    items = [(f.name, "x", (lambda f=f: f)) for f in files]
    with pytest.raises(datasets.DatasetError, match="3 megapixels"):
        datasets.archives._decode_all(items, [], lambda *_: None, budget)
    assert decoded == [(1000, 1000)] * 2  # the third was refused before its decode


def test_uploaded_files_are_held_to_the_same_cap(tmp_path, monkeypatch, decoded):
    monkeypatch.setenv("EXPLORER_MAX_SET_MEGAPIXELS", "2")
    files = []
    for i in range(3):
        f = tmp_path / f"cat_{i}.png"
        Image.new("RGB", (1000, 1000), (0, i * 60, 0)).save(f)
        files.append(f)
    assert datasets.plan_files(files).pixels == 3_000_000
    with pytest.raises(datasets.DatasetError, match="3 megapixels"):
        datasets.from_files(files)
    assert decoded == []
