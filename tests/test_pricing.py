"""Work is priced before it runs, from known figures and what the cache holds."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from explorer import datasets
from explorer.core import costs, public
from explorer.core.visitors import Visitor, use_visitor
from explorer.spaces import embed as embeddings
from explorer.spaces.cache import EmbeddingCache
from explorer.ui import pricing


def test_the_figures_are_the_benchmarks():
    # bench/vae_speed.py: a 512² TAESD round trip is 0.85 s + 0.9 s on both cores
    assert costs.vae_cost("tiny", 0.262) == pytest.approx((0.85 + 0.9) * 2)
    assert costs.vae_cost("kl", 0.262, decodes=0) == pytest.approx(4.83 * 2)
    # bench/atlas_scale.py: a 64 px TAEF2 embedding is 13 ms on both cores
    assert costs.vae_cost("tiny", 64 * 64 / 1e6, decodes=0) == pytest.approx(0.026, rel=0.05)
    # measured: 1,000 solid 16 MP PNGs cost about 420 CPU-seconds to decode
    assert costs.decode_cost(16_000) == pytest.approx(420)
    with pytest.raises(ValueError):
        costs.decode_cost(float("nan"))


def _set(n: int = 12) -> datasets.ImageSet:
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(n)]
    return datasets.ImageSet("s", images, ["a", "b"] * (n // 2), [f"{i}.png" for i in range(n)])


def test_an_atlas_is_priced_by_the_rows_the_cache_lacks(tmp_path):
    s = _set()
    refs = ["vae:test-tiny", "clip:test-clip"]
    cache = EmbeddingCache(tmp_path / "cache")
    per = {r: pricing.space_cost(r) for r in refs}
    project = costs.PROJECT_S_PER_POINT * len(s) * len(refs)
    cold = pricing.atlas_price(s, refs, None, cache)
    assert cold == pytest.approx(len(s) * sum(per.values()) + project)
    embeddings.embed("vae:test-tiny", s.images[:5], None, cache)  # five rows cached
    assert pricing.atlas_price(s, refs, None, cache) == pytest.approx(cold - 5 * per[refs[0]])
    for r in refs:
        embeddings.embed(r, s.images, None, cache)
    assert pricing.atlas_price(s, refs, None, cache) == pytest.approx(project)  # all cached


def test_an_upload_is_priced_by_the_pixels_it_will_decode(tmp_path):
    path = tmp_path / "set.zip"
    buf = io.BytesIO()
    Image.new("RGB", (2000, 1000)).save(buf, "PNG")
    with zipfile.ZipFile(path, "w") as z:
        for i in range(3):
            z.writestr(f"{'ab'[i % 2]}/{i}.png", buf.getvalue())
    assert pricing.upload_price([str(path)]) == pytest.approx(costs.decode_cost(6.0))
    assert pricing.upload_price([str(tmp_path / "missing.zip")]) == 0.0  # the handler refuses


def test_priced_charges_first_and_a_refusal_does_no_work(monkeypatch):
    monkeypatch.setenv("EXPLORER_PUBLIC", "1")
    monkeypatch.setenv("EXPLORER_SESSION_CPU_S", "2")  # 6 saved up
    calls = []

    @pricing.priced(lambda n, **_: float(n))
    def handler(n, label="x"):
        calls.append(n)
        return n

    token = use_visitor(Visitor("192.0.2.77", "tab-1"))
    try:
        assert handler(4) == 4 and calls == [4]
        with pytest.raises(public.PublicModeError, match=r"try again in \d+ s\.$"):
            handler(4)
        assert calls == [4]
    finally:
        token.var.reset(token)
    monkeypatch.setenv("EXPLORER_PUBLIC", "0")
    assert handler(1000) == 1000  # private mode: nothing is charged
