"""Hugging Face dataset streaming. The tests stub only the network (the reachability check or
``datasets.load_dataset``), never the code under test."""

from __future__ import annotations

import socket
import threading

import pytest
from image_files import noise_png

from explorer import datasets as ds
from explorer.core.errors import ExplorerError, ModelUnavailableError
from explorer.datasets import streaming
from explorer.models import hub


def test_from_hub_offline_env_fails_fast(monkeypatch):
    """HF_HUB_OFFLINE is read at call time (huggingface_hub reads it only at import), and no
    connection is attempted."""
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)

    def no_network(*_a, **_k):
        raise AssertionError("an offline check must not open a connection")

    monkeypatch.setattr(hub, "_can_connect", no_network)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ds.DatasetUnavailableError) as info:
        ds.from_hub("owner/some-images")
    msg = str(info.value)
    assert "needs internet" in msg and "HF_HUB_OFFLINE" in msg and "zip" in msg
    assert isinstance(info.value, ModelUnavailableError) and isinstance(info.value, ExplorerError)


def test_from_hub_unreachable_host_fails_fast(monkeypatch):
    """The real reachability check, with the socket layer stubbed to refuse / hang."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)

    def refuse(address, timeout=None, *a, **k):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(ds.DatasetUnavailableError, match=r"needs internet.*could not be reached"):
        ds.from_hub("owner/some-images")

    release = threading.Event()

    def hang(address, timeout=None, *a, **k):
        release.wait(60)  # a black-holed connection or a DNS lookup that never answers
        raise OSError("timed out")

    monkeypatch.setattr(socket, "create_connection", hang)
    try:
        # the answer comes while the connection still hangs (only this test releases it), and it
        # names the time limit: the check gave up on its own instead of waiting for the socket
        with pytest.raises(ds.DatasetUnavailableError, match=r"within 0\.5 s"):
            ds.from_hub("owner/some-images", timeout=0.5)
        assert not release.is_set()
    finally:
        release.set()


def test_from_hub_bad_id():
    with pytest.raises(ds.DatasetError, match="not a Hugging Face dataset id"):
        ds.from_hub("not a valid id!")


def test_from_hub_streams_per_class(monkeypatch):
    """Column detection and per-class sampling, on a local in-memory dataset."""
    hf = pytest.importorskip("datasets")
    names = ["airplane", "bird", "cat"]
    rows = []
    for i in range(30):
        data = b"garbage" if i == 1 else noise_png(i, 16)
        rows.append({"img": {"bytes": data, "path": None}, "fine": i % 3, "note": f"row {i}"})
    features = hf.Features(
        {"img": hf.Image(), "fine": hf.ClassLabel(names=names), "note": hf.Value("string")}
    )
    local = hf.Dataset.from_list(rows, features=features).to_iterable_dataset()
    calls = []

    def fake_load(dataset_id, split=None, streaming=False, **kw):
        calls.append((dataset_id, split, streaming))
        return local

    monkeypatch.setattr(streaming, "hub_unreachable_reason", lambda timeout=3.0: None)
    monkeypatch.setattr(hf, "load_dataset", fake_load)
    s = ds.from_hub("owner/tiny", per_class=3)
    assert calls == [("owner/tiny", "train", True)]
    assert s.class_counts() == {"airplane": 3, "bird": 3, "cat": 3}
    assert s.paths[:3] == ["owner/tiny[0]", "owner/tiny[2]", "owner/tiny[3]"]
    assert [p for p, _ in s.skipped] == ["owner/tiny[1]"]
    assert all(im.mode == "RGB" for im in s.images)
    assert "'img' and 'fine'" in s.description

    capped = ds.from_hub("owner/tiny", per_class=10, max_images=5)
    assert len(capped) == 5
    with pytest.raises(ds.DatasetError, match="no column 'pixels'"):
        ds.from_hub("owner/tiny", image_column="pixels")
