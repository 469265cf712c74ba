"""What a ``spaces.GPU`` function can and cannot do on ZeroGPU, shown with tiny pure functions.

The real ``spaces`` package runs them (tests/zerogpu.py: its CPU shims and loopback device API)
in a subprocess; this process never imports ``spaces``, whose torch patches are process-wide.
Each test makes the workers it needs with ``fresh_next`` (a fresh grant forks a new worker), so
none depends on what an earlier test left in a worker.
"""

from __future__ import annotations

import pytest
from zerogpu import DeviceAPI, Driver

pytestmark = pytest.mark.slow  # the subprocess imports torch, gradio and spaces (~10 s)

MODULE = """
import os
import threading

import gradio as gr
import spaces
import torch

STATE = {"n": 0}
W = torch.arange(4.0).to("cuda")  # prepared at import, in the main thread, as the docs ask
LIN = torch.nn.Linear(3, 2)
with torch.no_grad():
    LIN.weight.fill_(1.0)
    LIN.bias.fill_(0.5)
LIN.to("cuda")


def main_state():
    return {"pid": os.getpid(), "n": STATE["n"]}


def set_main(value):
    STATE["n"] = value


@spaces.GPU
def bump(x):
    STATE["n"] += x
    return {"pid": os.getpid(), "n": STATE["n"]}


@spaces.GPU
def peek():
    return {"pid": os.getpid(), "n": STATE["n"]}


@spaces.GPU
def unpicklable_result():
    return lambda: 1


@spaces.GPU
def echo(x):
    return x


def unpicklable_argument():
    return echo(threading.Lock())


@spaces.GPU
def append_one(xs):
    xs.append(3)
    return xs


def copy_semantics():
    sent = [1, 2]
    back = append_one(sent)
    return {"sent": sent, "back": back}


@spaces.GPU
def plain_error():
    raise ValueError("the message of a plain exception")


@spaces.GPU
def gradio_error():
    raise gr.Error("A clear sentence.")


@spaces.GPU
def weights():
    x = torch.ones(1, 3, device=LIN.weight.device)
    return {"w2": (W * 2).cpu().tolist(), "y": LIN(x).detach().cpu().tolist(), "pid": os.getpid()}


def weights_in_main():
    return {"w2": (W * 2).tolist()}


def per_step(steps):
    return 7 * steps


@spaces.GPU(duration=per_step)
def steps(steps):
    return steps


@spaces.GPU(duration=lambda: 12.7)
def fractional():
    return 0


@spaces.GPU
def die_once(flag):
    if not os.path.exists(flag):  # the first call: the worker dies under its job
        open(flag, "w").close()
        os._exit(1)
    return {"pid": os.getpid()}
"""


@pytest.fixture(scope="module")
def api():
    with DeviceAPI(gpus=2, placement="rotate") as device_api:
        yield device_api


@pytest.fixture(scope="module")
def zero(api, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("zerogpu")
    (tmp / "gpu_module.py").write_text(MODULE)
    with Driver(tmp / "gpu_module.py", api, tmp / "run") as driver:
        yield driver


def value(reply):
    assert reply.ok, dict(reply)
    return reply["value"]


def test_the_device_api_speaks_only_on_loopback(api):
    assert api.url.startswith("http://127.0.0.1:")


def test_a_workers_module_state_is_not_seen_by_the_main_process(zero, api):
    before = value(zero.call("main_state"))
    api.fresh_next()
    out = value(zero.call("bump", 5))
    after = value(zero.call("main_state"))
    assert out["pid"] != before["pid"]  # it ran in another process ...
    assert out["n"] == before["n"] + 5  # ... forked from the main process as it was
    assert after == before  # the write stayed in the worker


def test_two_workers_each_keep_their_own_state(zero, api):
    main = value(zero.call("main_state"))["n"]
    api.fresh_next(2)
    a, b, c = (value(zero.call("bump", x)) for x in (1, 2, 4))
    assert a["pid"] != b["pid"] and c["pid"] == a["pid"]  # two GPUs in turn; a's worker reused
    assert (a["n"], b["n"], c["n"]) == (main + 1, main + 2, main + 1 + 4)


def test_a_reused_worker_does_not_see_later_main_process_writes(zero, api):
    value(zero.call("set_main", 7))
    api.fresh_next(2)
    first = value(zero.call("peek"))
    value(zero.call("set_main", 9))
    second = value(zero.call("peek"))  # the other GPU: a new worker, forked after the write
    third = value(zero.call("peek"))  # the first GPU again: the first worker, reused
    assert (first["n"], second["n"]) == (7, 9)
    assert third["pid"] == first["pid"] and third["n"] == 7  # stale: forked before the write


def _aborted(reply) -> bool:
    return not reply.ok and "GPU task aborted" in reply["message"]


def test_a_worker_killed_between_two_calls_is_replaced(zero, api):
    main = value(zero.call("main_state"))["n"]
    api.fresh_next(2)
    a, b = value(zero.call("bump", 1)), value(zero.call("bump", 1))
    killed = api.kill_workers()
    assert {a["pid"], b["pid"]} <= set(killed)
    reply = zero.call("bump", 1)
    # The package takes a dead worker for alive while its watcher thread, which reaped it, has
    # not yet recorded the exit (multiprocessing's is_alive() is True then): that call answers
    # "GPU task aborted", and the next forks a new worker. The app sends such a job once more
    # (explorer.spaces.gpu_calls.call).
    if _aborted(reply):
        reply = zero.call("bump", 1)
    c = value(reply)  # the next call answers, from a new worker
    assert c["pid"] not in killed and c["n"] == main + 1  # the old worker's state is gone


def test_a_worker_that_dies_under_its_job_is_an_abort_and_the_next_call_a_new_worker(
    zero, tmp_path
):
    flag = str(tmp_path / "died")
    first = zero.call("die_once", flag)
    assert _aborted(first), dict(first)  # the error explorer.spaces.gpu_calls sends again for
    assert value(zero.call("die_once", flag))["pid"] > 0


def test_arguments_and_results_cross_by_pickle(zero):
    result = zero.call("unpicklable_result")
    assert not result.ok and "PicklingError" in result["message"]
    argument = zero.call("unpicklable_argument")
    assert not argument.ok and argument["type"] == "PicklingError"
    copies = value(zero.call("copy_semantics"))
    assert copies == {"sent": [1, 2], "back": [1, 2, 3]}  # the worker changed its own copy


def test_only_a_gradio_error_keeps_its_message(zero):
    plain = zero.call("plain_error")
    assert not plain.ok and "ValueError" in plain["message"]
    assert "the message of a plain exception" not in plain["message"]
    sentence = zero.call("gradio_error")
    assert not sentence.ok and "A clear sentence." in sentence["message"]


def test_a_duration_callable_gets_the_call_arguments(zero, api):
    assert value(zero.call("steps", 3)) == 3
    assert api.requests("/schedule")[-1]["params"]["durationSeconds"] == "21"
    value(zero.call("fractional"))
    assert api.requests("/schedule")[-1]["params"]["durationSeconds"] == "12"  # floored


def test_weights_moved_to_cuda_at_import_reach_every_worker(zero, api):
    want = {"w2": [0.0, 2.0, 4.0, 6.0], "y": [[3.5, 3.5]]}  # 2*arange(4); 1+1+1+0.5
    api.fresh_next()
    before = value(zero.call("weights"))
    value(zero.call("__startup__"))  # launch(): the package packs them to disk
    assert api.requests("/startup-report")
    api.fresh_next()
    after = value(zero.call("weights"))  # a new worker loads them from the pack
    assert after["pid"] != before["pid"]
    assert {k: before[k] for k in want} == want and {k: after[k] for k in want} == want
    # outside a GPU function, a handler thread of the main process sees placeholders only
    assert value(zero.call("weights_in_main")) == {"w2": [0.0, 0.0, 0.0, 0.0]}
