"""A prototype of per-visitor admission in a real Gradio server: a minimal gr.Blocks on 127.0.0.1
behind stand-in proxies (also on 127.0.0.1) that append the client's address to X-Forwarded-For,
as a Hugging Face Space's proxy does. One "flooding" visitor (203.0.113.66) joins the queue under a
fresh session id each time; another (198.51.100.7) must still be served.

The glue is the app's own (``explorer.ui.fairness``, wired in by ``ExplorerBlocks``): the visitor
set around each handler for its pricing, the queue that starts the next request round robin by
address, and the ASGI middleware (``BodyLimit`` outside ``VisitorGate``) every launch gets. It
overrides Gradio's private ``Queue.get_events``: this test is the guard when Gradio is upgraded.

Uvicorn trusts X-Forwarded-For from loopback by default (``FORWARDED_ALLOW_IPS``); here it is
set to trust no one, as on a Space, whose proxy connects from a non-loopback address, so the
address comes from ``proxy_hops=1`` alone. Every wait is a bounded poll; nothing asserts a time.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from collections.abc import Callable

import gradio as gr
import httpx
import pytest

from explorer.core import public
from explorer.ui.components import ExplorerBlocks
from explorer.ui.fairness import FairQueue
from tests.helpers import free_port

pytestmark = pytest.mark.app

FLOODER, VISITOR = "203.0.113.66", "198.51.100.7"
HOPS = 1
GRACE = 3.0  # a waiting request with no listener for this long is dropped


# --------------------------------------------------------------------------- the stand-in proxy


class StandInProxy:
    """An HTTP/1.1 reverse proxy on 127.0.0.1 for one pretend client address: it appends that
    address to X-Forwarded-For (after whatever the client sent) and forwards to ``upstream``,
    one request per connection. Runs its own event loop in a daemon thread."""

    def __init__(self, upstream: int, client_ip: str):
        self.upstream, self.client_ip = upstream, client_ip.encode()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        threading.Thread(target=self._run, daemon=True).start()
        if not self.ready.wait(10):
            raise RuntimeError("the stand-in proxy did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        lines = head[:-4].split(b"\r\n")
        out, forwarded = [lines[0]], []
        for line in lines[1:]:
            name = line.split(b":", 1)[0].strip().lower()
            if name == b"x-forwarded-for":
                forwarded.append(line.split(b":", 1)[1].strip())
            elif name not in (b"connection", b"keep-alive"):
                out.append(line)
        out.append(b"X-Forwarded-For: " + b", ".join([*forwarded, self.client_ip]))
        out.append(b"Connection: close")
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        up_writer.write(b"\r\n".join(out) + b"\r\n\r\n")

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()

        tasks = [
            asyncio.create_task(pipe(reader, up_writer)),
            asyncio.create_task(pipe(up_reader, writer)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
        for w in (writer, up_writer):
            w.close()


# --------------------------------------------------------------------------- the app's glue

# Public mode with small limits: 3 requests in flight per address, 2 per session, a session
# budget of 3.4 CPU-seconds a minute (10.2 saved up), a request unheard for 3 s dropped.
ENV = {
    "EXPLORER_PUBLIC": "1",
    "EXPLORER_PROXY_HOPS": str(HOPS),
    "EXPLORER_VISITOR_REQUESTS": "3",
    "EXPLORER_SESSION_REQUESTS": "2",
    "EXPLORER_SESSION_CPU_S": "3.4",
    "EXPLORER_VISITOR_CPU_S": "40",
    "EXPLORER_LISTENER_GRACE_S": str(GRACE),
    "EXPLORER_QUEUE_SIZE": "6",
    "EXPLORER_MAX_FILE_MB": "1",
}

STARTED: list[str] = []
RELEASE = threading.Event()


def hold(name: str) -> str:
    STARTED.append(name)
    RELEASE.wait(timeout=60)
    return name


def priced(n: str) -> str:
    public.price(float(n))  # the handler's price, before any work
    STARTED.append(f"priced {n}")
    return f"did {n}"


def build(cls: type[gr.Blocks]) -> gr.Blocks:
    with cls() as demo:
        box, out = gr.Textbox(), gr.Textbox()
        gr.Button("hold").click(hold, box, out, api_name="hold", concurrency_limit=1)
        gr.Button("priced").click(priced, box, out, api_name="priced", concurrency_limit=4)
    demo.queue(max_size=6, default_concurrency_limit=1)
    return demo


def launch(demo: gr.Blocks) -> int:
    port = free_port()
    old = os.environ.get("FORWARDED_ALLOW_IPS")
    os.environ["FORWARDED_ALLOW_IPS"] = ""  # trust no proxy header (a Space's proxy is remote)
    try:
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    finally:
        if old is None:
            os.environ.pop("FORWARDED_ALLOW_IPS", None)
        else:
            os.environ["FORWARDED_ALLOW_IPS"] = old
    return port


# --------------------------------------------------------------------------- a client


def fn_index(demo: gr.Blocks, api_name: str) -> int:
    return next(f._id for f in demo.fns.values() if f.api_name == api_name)


def join(port: int, fn: int, data: str, session: str, spoof: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": spoof} if spoof else {}
    body = {"data": [data], "fn_index": fn, "session_hash": session, "event_data": None}
    return httpx.post(
        f"http://127.0.0.1:{port}/gradio_api/queue/join", json=body, headers=headers, timeout=30
    )


def listen(port: int, session: str, results: dict) -> None:
    """Read the session's event stream until its events complete; results[event_id] = message."""
    url = f"http://127.0.0.1:{port}/gradio_api/queue/data"
    try:
        with httpx.stream("GET", url, params={"session_hash": session}, timeout=60) as r:
            for line in r.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    results[msg.get("event_id")] = msg
                if msg.get("msg") == "close_stream":
                    return
    except httpx.HTTPError as exc:
        results[f"error-{session}"] = repr(exc)


def until(check: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    """Poll ``check`` (bounded); fail naming ``what`` if it never holds."""
    for _ in range(int(limit / 0.05)):
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"never happened: {what}")


def listener(port: int, session: str, results: dict) -> threading.Thread:
    t = threading.Thread(target=listen, args=(port, session, results), daemon=True)
    t.start()
    return t


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def baseline():
    """A plain gr.Blocks, as Gradio runs it: its queue as is, no per-visitor admission."""
    demo = build(gr.Blocks)
    port = launch(demo)
    flood, visit = StandInProxy(port, FLOODER), StandInProxy(port, VISITOR)
    yield demo, flood.port, visit.port
    RELEASE.set()
    demo.close()
    flood.stop()
    visit.stop()


@pytest.fixture(scope="module")
def gated():
    """The same Blocks as the app's ExplorerBlocks, in public mode with small limits."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in ENV.items():
            mp.setenv(k, v)
        demo = build(ExplorerBlocks)
        assert isinstance(demo._queue, FairQueue) and demo.api_open is False
        port = launch(demo)
        flood, visit = StandInProxy(port, FLOODER), StandInProxy(port, VISITOR)
        yield demo, flood.port, visit.port, {"gate": demo.visitor_gate}
        RELEASE.set()
        demo.close()
        flood.stop()
        visit.stop()


@pytest.fixture
def fresh(request):
    """Each test starts with nothing held or running."""
    RELEASE.set()
    STARTED.clear()
    for name in ("baseline", "gated"):
        if name in request.fixturenames:
            demo = request.getfixturevalue(name)[0]
            until(lambda d=demo: not d._queue.event_ids_to_events, "the queue drained")
    RELEASE.clear()
    yield
    RELEASE.set()


# --------------------------------------------------------------------------- the tests


def test_today_one_flooder_fills_the_queue_and_the_visitor_is_refused(baseline, fresh):
    demo, flood, visit = baseline
    hold_fn = fn_index(demo, "hold")
    codes = []
    for i in range(30):  # bounded: fresh session ids until the queue is full
        codes.append(join(flood, hold_fn, f"flood-{i}", f"flood-session-{i}").status_code)
        if codes[-1] != 200:
            break
    assert codes[-1] == 503 and codes.count(200) == 7  # one running + max_size 6 waiting
    r = join(visit, hold_fn, "visitor", "visitor-session")
    assert r.status_code == 503 and "Queue is full" in r.json()["detail"]


def test_the_flooder_is_capped_by_address_and_its_unheard_requests_are_dropped(gated, fresh):
    demo, flood, visit, made = gated
    hold_fn = fn_index(demo, "hold")
    accepted, refusal = [], None
    for i in range(30):  # fresh sessions, and a spoofed X-Forwarded-For naming the visitor
        r = join(flood, hold_fn, f"flood-{i}", f"flood-session-{i}", spoof=VISITOR)
        if r.status_code != 200:
            refusal = r
            break
        accepted.append(r.json()["event_id"])
    assert len(accepted) == 3
    assert refusal is not None and refusal.status_code == 429
    assert "network address" in refusal.json()["detail"]
    until(lambda: STARTED == ["flood-0"], "the flooder's first request started")

    r = join(visit, hold_fn, "visitor", "visitor-session")
    assert r.status_code == 200
    event_id = r.json()["event_id"]
    results: dict = {}
    t = listener(visit, "visitor-session", results)
    # nobody listens for the flooder's two waiting requests: dropped after the grace period
    until(lambda: made["gate"].dropped >= 2, "the unheard requests were dropped")
    assert not set(accepted[1:]) & set(demo._queue.event_ids_to_events)
    RELEASE.set()
    t.join(timeout=60)
    assert results[event_id]["success"] and results[event_id]["output"]["data"] == ["visitor"]
    assert STARTED == ["flood-0", "visitor"]  # flood-1 and flood-2 never ran


def test_a_flooder_that_listens_still_waits_its_turn(gated, fresh):
    demo, flood, visit, made = gated
    hold_fn = fn_index(demo, "hold")
    results: dict = {}
    threads = []
    for i in range(3):
        r = join(flood, hold_fn, f"flood-{i}", f"listening-flood-{i}")
        assert r.status_code == 200
        threads.append(listener(flood, f"listening-flood-{i}", results))
    until(lambda: STARTED == ["flood-0"], "the flooder's first request started")
    r = join(visit, hold_fn, "visitor", "visitor-2")
    assert r.status_code == 200
    threads.append(listener(visit, "visitor-2", results))
    until(
        lambda: all(made["gate"].listeners.listening(f"listening-flood-{i}") for i in (1, 2)),
        "the flooder's streams are open",
    )
    RELEASE.set()
    for t in threads:
        t.join(timeout=60)
    # Gradio alone runs them oldest first (flood-0, flood-1, flood-2, visitor)
    assert STARTED == ["flood-0", "visitor", "flood-1", "flood-2"]


def test_a_request_over_its_budget_is_refused_with_when_to_try_again(gated, fresh):
    demo, _, visit, _ = gated
    priced_fn = fn_index(demo, "priced")
    results: dict = {}
    first = join(visit, priced_fn, "8", "budget-session").json()["event_id"]
    t = listener(visit, "budget-session", results)
    t.join(timeout=60)
    assert results[first]["success"] and results[first]["output"]["data"] == ["did 8"]
    second = join(visit, priced_fn, "8", "budget-session").json()["event_id"]
    t = listener(visit, "budget-session", results)
    t.join(timeout=60)
    message = results[second]["output"]["error"]
    assert not results[second]["success"]
    assert "8 CPU-seconds" in message and "try again in" in message and message.endswith(" s.")
    assert STARTED == ["priced 8"]  # the refused one did no work


def test_the_direct_run_route_is_closed_and_the_queue_is_the_only_way_in(gated, fresh):
    _, _, visit, _ = gated
    r = httpx.post(
        f"http://127.0.0.1:{visit}/gradio_api/run/hold", json={"data": ["direct"]}, timeout=30
    )
    assert r.status_code == 404 and "join the queue" in r.json()["detail"]
    assert STARTED == []


def test_a_join_body_over_the_cap_is_refused_before_it_is_read(gated, fresh):
    demo = gated[0]
    port = int(demo.local_url.rstrip("/").rsplit(":", 1)[1])
    size = 200 * 2**20  # declared, never sent: the answer comes before the body is read
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(
            f"POST /gradio_api/queue/join HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n".encode()
        )
        s.sendall(b'{"data": ["' + b"x" * 1000)
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            got = s.recv(65536)
            if not got:
                break
            data += got
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == b"413"
    assert "200.0 MB" in json.loads(body)["detail"]
    assert not demo._queue.event_ids_to_events
