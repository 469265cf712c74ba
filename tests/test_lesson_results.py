"""Lesson results shared between sessions: the same step on the same model computes once,
however many sessions press it at once (real computations counted by the module's counter),
within a stated bound."""

from __future__ import annotations

import os
import threading

import pytest
from PIL import Image

from explorer.ui.lesson import handlers, results
from explorer.ui.lesson import steps as st

MODEL = "test-tiny"


def _state(model: str = MODEL) -> dict:
    return handlers.lesson_state(model, None)


def test_two_sessions_pressing_a_step_at_once_compute_it_once():
    k = results.key(2, MODEL, None)
    results.clear()
    before = results.COMPUTED[k]
    barrier = threading.Barrier(4)
    got = []

    def press():
        barrier.wait()
        got.append(handlers.run_and_record(2, _state()))

    threads = [threading.Thread(target=press) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.COMPUTED[k] - before == 1
    assert len({id(r) for r, _, _ in got}) == 1  # every session was given the one result
    assert len({answer for _, answer, _ in got}) == 1
    # another model is another computation; the first stays stored
    handlers.run_and_record(2, _state("test-kl"))
    assert results.COMPUTED[results.key(2, "test-kl", None)] >= 1
    assert results.COMPUTED[k] - before == 1


def test_a_failure_is_not_stored_and_is_tried_again():
    k = (3, "broken", "", "x")
    calls = []

    def fail():
        calls.append(1)
        raise RuntimeError("no")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            results.shared(k, fail)
    assert len(calls) == 2 and k not in results.stored(3)


def test_the_store_keeps_at_most_its_bound_least_recent_out():
    results.clear()
    keys = [(2, f"m{i}", "", "v") for i in range(results.MAX_RESULTS + 5)]
    for k in keys:
        results.shared(k, st.StepResult)
    assert results.size() == results.MAX_RESULTS
    stored = results.stored(2)
    assert keys[0] not in stored and keys[-1] in stored
    results.clear()


def _result_bytes(r: st.StepResult) -> int:
    n = 0
    if isinstance(r.image, Image.Image):
        n += r.image.width * r.image.height * len(r.image.getbands())
    if r.table is not None:
        n += int(r.table.memory_usage(deep=True).sum())
    if r.plot is not None:
        n += len(r.plot.to_json())
    return n + len(r.notice.encode())


def test_a_stored_result_is_under_the_stated_two_megabytes():
    from explorer.ui.lesson import views as lt

    for n in (2, 3, 4, 5, 6):
        assert _result_bytes(lt.run_step(n, MODEL)) < 2 * 2**20, n


def test_two_app_sessions_share_one_computation(client, app_url):
    from gradio_client import Client

    from explorer.models import registry

    other = Client(app_url, verbose=False)
    model = registry.default_vae()
    k = results.key(5, model, None)
    results.clear()
    before = results.COMPUTED[k]
    jobs = [c.submit(api_name="/lesson_5") for c in (client, other)]
    notes = [j.result()[2] for j in jobs]
    assert results.COMPUTED[k] - before == 1
    assert notes[0] == notes[1] and f"With **{model}**" in notes[0]
    other.close()


def test_a_shared_picture_is_encoded_once_and_again_if_swept():
    r = st.StepResult(image=Image.new("RGB", (40, 20), (200, 10, 10)))
    first = handlers.served(r)
    assert handlers.served(r) == first
    with Image.open(first) as im:
        assert im.size == (40, 20) and im.getpixel((3, 3)) == (200, 10, 10)
    mtime = os.stat(first).st_mtime_ns
    assert os.stat(handlers.served(r)).st_mtime_ns == mtime  # not rewritten
    os.remove(first)  # Gradio's cache sweep took it
    again = handlers.served(r)
    with Image.open(again) as im:
        assert im.size == (40, 20)


@pytest.mark.slow
def test_a_class_pressing_together_gets_one_shared_result_per_step(app_url, tmp_path):
    from types import SimpleNamespace

    from bench import load
    from bench.lesson_load import LessonSession

    n, requests = 4, 8  # the model, then steps 1-7
    args = SimpleNamespace(sessions=n, requests=requests, url=app_url, atlas="bundled", lesson=True)
    results.clear()
    before = sum(results.COMPUTED.values())
    rec = load.Recorder()
    LessonSession.reset(n, requests)
    sessions = [LessonSession(i, args, rec, tmp_path, load.session_colours(n)) for i in range(n)]
    try:
        load.run_sessions(sessions, max_seconds=300)
    finally:
        for s in sessions:
            if s.client is not None:
                s.client.close()
    # every answer named its session's model and carried the reveal, and every session on a
    # model saw the same notice (LessonSession.check) ...
    assert not rec.errors, dict(rec.errors)
    assert sum(rec.finished.values()) == n * requests
    # ... computed once per (step, model): step 1 once, steps 2-7 once per model
    assert sum(results.COMPUTED.values()) - before == 1 + 6 * len({s.model for s in sessions})
