"""Several sessions at once against the launched app (bench/load.py's sessions, fewer of them):
no errors, and no session ever sees another session's images, image set or results; the request
queue's limits and what a client sees when the queue is full."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.utils import QueueError
from PIL import Image

from bench import load
from tests.helpers import free_port

pytestmark = pytest.mark.app

N_SESSIONS = 6
N_REQUESTS = 8  # opening the session's own set, then each of the seven mixed endpoints once


def _expected_stats(image: Path, model: str, resolution: int) -> np.ndarray:
    """What /encode's statistics table must hold for this image, computed here directly
    (bypassing the app's encode cache)."""
    import pandas as pd

    from explorer.analysis import metrics
    from explorer.images import io as imaging
    from explorer.lab import actions as lab
    from explorer.models.vae import load_vae

    vae = load_vae(model)
    x = imaging.to_tensor(lab.prepare_input(str(image), resolution, "square"))
    z = vae.encode(x).mean[0].numpy()
    return pd.DataFrame(metrics.channel_stats(z)).round(4).to_numpy(float)


def _load_models_one_at_a_time(app_url, tmp_path) -> None:
    """Every model the sessions use, loaded before they start, so that what is measured is
    sessions sharing loaded models (cold, concurrent first loads are serialised by the model
    cache; tests/test_vae.py covers that)."""
    client = Client(app_url, verbose=False)
    try:
        image = tmp_path / "warm-up.png"
        load.session_image(255, (128, 128, 128)).save(image)
        for model in load.LAB_MODELS:
            client.predict(
                handle_file(str(image)), model, 64, "square", "", "mean", 0, api_name="/roundtrip"
            )
        client.predict(*load.SPACES, api_name="/atlas_bundled")
    finally:
        client.close()


@pytest.mark.slow
def test_concurrent_sessions_see_only_their_own_images_sets_and_results(app_url, tmp_path):
    _load_models_one_at_a_time(app_url, tmp_path)
    args = SimpleNamespace(
        sessions=N_SESSIONS, requests=N_REQUESTS, url=app_url, atlas="upload", exports=True
    )
    rec = load.Recorder()
    colours = load.session_colours(N_SESSIONS)
    sessions = [load.Session(i, args, rec, tmp_path, colours) for i in range(N_SESSIONS)]
    try:
        load.run_sessions(sessions, max_seconds=120)
    finally:
        for s in sessions:
            if s.client is not None:
                s.client.close()

    # every answer was checked against the session that asked (bench/load.py Session.check):
    # the round trip's original and the crossfade's ends carry the session's colour and number,
    # every atlas label and gallery caption is one of the session's own labels, ...
    assert not rec.errors, dict(rec.errors)
    assert not rec.not_sent, dict(rec.not_sent)
    assert sum(rec.finished.values()) == N_SESSIONS * N_REQUESTS
    assert rec.finished["atlas_upload"] == N_SESSIONS
    assert all(rec.finished[ep] == N_SESSIONS for ep in load.mix_for(args))
    assert "atlas_export" in load.mix_for(args)
    # ... and /encode's statistics are exactly those of the session's own image
    for s in sessions:
        assert len(s.encode_seen) == 1
        (model, res), fingerprint = next(iter(s.encode_seen.items()))
        got = np.array(json.loads(fingerprint), float)
        np.testing.assert_allclose(got, _expected_stats(s.image_a, model, res), atol=2e-4)
    fingerprints = [next(iter(s.encode_seen.values())) for s in sessions]
    assert len(set(fingerprints)) == N_SESSIONS


def test_session_images_are_told_apart():
    """The marks the load test relies on: colours far apart, the session number readable back
    after the app's resize to 64 px."""
    colours = load.session_colours(32)
    assert len(set(colours)) == 32
    for sid in (0, 5, 31, 255):
        small = load.session_image(sid, colours[sid % 32]).resize((64, 64), Image.BICUBIC)
        assert load.read_session(small) == sid
        assert np.allclose(load.median_colour(small), colours[sid % 32], atol=1)


def _wait_for(condition, what: str, seconds: float = 30) -> None:
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.mark.slow
def test_a_full_queue_is_refused_with_a_clear_message(monkeypatch, tmp_path):
    """The real app with EXPLORER_QUEUE_SIZE=1, EXPLORER_CONCURRENCY=1: one round trip runs (held
    inside the model's lock, so nothing depends on timing), one waits, the next is refused."""
    from explorer.models.vae import load_vae
    from explorer.ui.app import build_demo

    monkeypatch.delenv("EXPLORER_QUEUE_SIZE", raising=False)
    monkeypatch.delenv("EXPLORER_CONCURRENCY", raising=False)
    default = build_demo()
    assert (default._queue.max_size, default._queue.default_concurrency_limit) == (64, 2)

    monkeypatch.setenv("EXPLORER_QUEUE_SIZE", "1")
    monkeypatch.setenv("EXPLORER_CONCURRENCY", "1")
    demo = build_demo()
    assert (demo._queue.max_size, demo._queue.default_concurrency_limit) == (1, 1)
    demo.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True
    )
    queue = demo._queue
    lock = load_vae("test-kl").lock
    image = tmp_path / "noise.png"  # never seen before: no encode-cache hit skips the model
    rng = np.random.default_rng(int(time.time()))
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(image)
    args = (handle_file(str(image)), "test-kl", 64, "square", "", "mean", 0)
    jobs = []
    lock.acquire()
    try:
        client = Client(demo.local_url, verbose=False)
        jobs.append(client.submit(*args, api_name="/roundtrip"))
        _wait_for(lambda: len(queue) == 0 and any(queue.active_jobs), "the first job to run")
        jobs.append(client.submit(*args, api_name="/roundtrip"))
        _wait_for(lambda: len(queue) == 1, "the second job to wait")

        refused = client.submit(*args, api_name="/roundtrip")  # what a script sees
        with pytest.raises(QueueError, match="Queue is full! Please try again"):
            refused.result(timeout=30)
        # what the server says (the browser shows "This application is currently busy. Please
        # try again." for this 503)
        r = httpx.post(
            f"{demo.local_url}gradio_api/queue/join",
            json={"data": [], "fn_index": 0, "session_hash": "load-test"},
            timeout=30,
        )
        assert r.status_code == 503
        assert r.json()["detail"] == "Queue is full. Max size is 1 and size is 1."
    finally:
        lock.release()
        for job in jobs:  # the held and the waiting job both finish once the lock is free
            with contextlib.suppress(Exception):
                job.result(timeout=60)
        demo.close()
    assert [job.exception() for job in jobs] == [None, None]
