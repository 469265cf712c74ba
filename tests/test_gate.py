"""explorer.core.gate: join-time admission and listener tracking, in front of a stand-in for
Gradio's queue routes (starlette's TestClient; the real Gradio server is in
test_fairshare_server.py)."""

from __future__ import annotations

import itertools

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from explorer.core.fairshare import FairShare, Limits
from explorer.core.gate import VisitorGate
from explorer.core.visitors import Listeners, Visitor


def stand_in():
    """Queue routes as Gradio answers them: join -> {"event_id"} (503 when told to be full);
    queue/data -> whether the gate counted the stream open while it ran."""
    live: set[str] = set()
    ids = itertools.count()
    listeners = Listeners()

    async def join(request: Request):
        body = await request.json()
        if body.get("data") == ["full"]:
            return JSONResponse({"detail": "Queue is full."}, status_code=503)
        event_id = f"e{next(ids)}"
        live.add(event_id)
        return JSONResponse({"event_id": event_id})

    async def data(request: Request):
        return PlainTextResponse(str(listeners.listening(request.query_params["session_hash"])))

    routes = [
        Route("/gradio_api/queue/join", join, methods=["POST"]),
        Route("/gradio_api/call/{api}", join, methods=["POST"]),
        Route("/gradio_api/queue/data", data),
    ]
    fs = FairShare(Limits(per_address=3, per_session=2))
    gate = VisitorGate(
        Starlette(routes=routes), fairshare=fs, live_events=lambda: live, listeners=listeners
    )
    return TestClient(gate), fs, live


def body(session: str, data: str = "x") -> dict:
    return {"data": [data], "fn_index": 0, "session_hash": session}


def test_the_cap_refuses_with_429_and_a_sentence_and_a_finished_event_frees_its_slot():
    client, _, live = stand_in()
    got = [client.post("/gradio_api/queue/join", json=body(f"s{i}")) for i in range(4)]
    assert [r.status_code for r in got] == [200, 200, 200, 429]
    assert "network address" in got[3].json()["detail"]
    live.discard(got[0].json()["event_id"])  # Gradio finished it
    assert client.post("/gradio_api/queue/join", json=body("s9")).status_code == 200


def test_a_join_gradio_refuses_gives_its_slot_back():
    client, fs, _ = stand_in()
    for _ in range(5):
        assert client.post("/gradio_api/queue/join", json=body("s", "full")).status_code == 503
    assert fs.in_flight(Visitor("host:testclient", "s")) == (0, 0)


def test_api_calls_without_a_session_share_one_per_session_cap():
    client, _, _ = stand_in()
    codes = [
        client.post("/gradio_api/call/hold", json={"data": ["x"]}).status_code for _ in range(3)
    ]
    assert codes == [200, 200, 429]


def test_the_forwarded_header_counts_only_behind_a_stated_proxy():
    client, fs, _ = stand_in()
    spoof = {"X-Forwarded-For": "203.0.113.9"}
    client.post("/gradio_api/queue/join", json=body("s"), headers=spoof)
    assert fs.in_flight(Visitor("host:testclient", "s")) == (1, 1)  # proxy_hops=0: not read
    live: set[str] = set()
    fs1 = FairShare()
    gate = VisitorGate(
        Starlette(routes=[Route("/gradio_api/queue/join", _ok(live), methods=["POST"])]),
        fairshare=fs1,
        live_events=lambda: live,
        proxy_hops=1,
    )
    TestClient(gate).post("/gradio_api/queue/join", json=body("s"), headers=spoof)
    assert fs1.in_flight(Visitor("203.0.113.9", "s")) == (1, 1)


def _ok(live: set[str]):
    async def join(request: Request):
        live.add("e")
        return JSONResponse({"event_id": "e"})

    return join


def test_an_event_stream_is_counted_open_while_it_runs():
    client, _, _ = stand_in()
    assert client.get("/gradio_api/queue/data", params={"session_hash": "s"}).text == "True"
    gate = client.app
    assert not gate.listeners.listening("s")
