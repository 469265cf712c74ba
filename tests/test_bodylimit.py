"""explorer.core.bodylimit: request bodies capped before the app holds them, declared (Content-
Length) or streamed (chunked), on starlette's TestClient and on a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import uvicorn
from fastapi import FastAPI, Request
from starlette.testclient import TestClient

from explorer.core.bodylimit import BodyLimit, data_url_cap, limit_sentence

LIMIT = 1000
UPLOAD = 5000


def make_app() -> tuple[FastAPI, dict]:
    """A FastAPI app like Gradio's routes: a JSON body parsed by FastAPI (which turns a failed
    read into a 400) and an upload route that streams its body; ``seen`` records what the app
    read, so a test can tell whether a body reached it."""
    seen: dict = {"json": None, "streamed": 0, "calls": 0}
    app = FastAPI()

    @app.post("/gradio_api/queue/join")
    async def join(body: dict):
        seen["calls"] += 1
        seen["json"] = body
        return {"event_id": "e1"}

    @app.post("/gradio_api/upload")
    async def upload(request: Request):
        seen["calls"] += 1
        async for chunk in request.stream():
            seen["streamed"] += len(chunk)
        return {"bytes": seen["streamed"]}

    return app, seen


def wrapped():
    app, seen = make_app()
    return BodyLimit(app, max_bytes=LIMIT, routes={"/gradio_api/upload": UPLOAD}), seen


def test_a_small_body_reaches_the_app():
    app, seen = wrapped()
    r = TestClient(app).post("/gradio_api/queue/join", json={"data": ["x" * 100]})
    assert r.status_code == 200 and seen["json"] == {"data": ["x" * 100]}


def test_a_declared_body_over_the_cap_is_refused_before_the_app_runs():
    app, seen = wrapped()
    body = json.dumps({"data": ["x" * 5000]})
    r = TestClient(app).post(
        "/gradio_api/queue/join", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json() == {"detail": limit_sentence(LIMIT, len(body))}
    assert "at most 1,000 bytes" in r.json()["detail"]
    assert r.headers["connection"] == "close"
    assert seen["calls"] == 0


def test_the_upload_route_has_its_own_cap_and_nothing_else_is_exempt():
    app, seen = wrapped()
    client = TestClient(app)
    assert client.post("/gradio_api/upload", content=b"u" * 4000).json() == {"bytes": 4000}
    assert client.post("/gradio_api/upload/", content=b"u" * 6000).status_code == 413
    assert seen["streamed"] == 4000
    # any other path gets the default cap, even one the app does not have
    assert client.post("/gradio_api/upload2", content=b"u" * 4000).status_code == 413
    assert client.post("/", content=b"u" * 4000).status_code == 413


def test_paths_are_matched_under_the_mount_root():
    app, _ = wrapped()
    scope = {"path": "/space/gradio_api/upload", "root_path": "/space"}
    assert app.limit_for(scope) == UPLOAD
    assert app.limit_for({"path": "/gradio_api/upload/"}) == UPLOAD
    assert app.limit_for({"path": "/gradio_api/queue/join"}) == LIMIT


def test_data_url_cap_fits_the_largest_inline_image():
    import base64

    one = 20 * 2**20
    url = "data:image/webp;base64," + base64.b64encode(b"\0" * one).decode()
    assert len(url) <= data_url_cap(one, slack=0) < len(url) + 8
    assert data_url_cap(one, images=2) > 2 * len(url)


# --------------------------------------------------------------------------- a real server


@pytest.fixture(scope="module")
def server():
    app, seen = wrapped()
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):  # up to 10 s for the socket
        if srv.started:
            break
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield port, seen
    srv.should_exit = True
    thread.join(timeout=10)


def chunked(port: int, path: str, chunks: list[bytes], content_type: str) -> tuple[int, bytes]:
    """POST ``chunks`` with Transfer-Encoding: chunked (no Content-Length) -> (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
        )
        try:
            for c in chunks:
                s.sendall(f"{len(c):x}\r\n".encode() + c + b"\r\n")
            s.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may close once it has answered
        data = b""
        while True:
            try:
                got = s.recv(65536)
            except OSError:
                break
            if not got:
                break
            data += got
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_a_chunked_json_body_over_the_cap_is_413_not_fastapis_400(server):
    port, seen = server
    seen["json"] = None
    pieces = [b'{"data": ["', *([b"x" * 300] * 10), b'"]}']
    status, body = chunked(port, "/gradio_api/queue/join", pieces, "application/json")
    assert status == 413
    assert json.loads(body) == {"detail": limit_sentence(LIMIT)}
    assert seen["json"] is None  # the app never got the body


def test_a_chunked_upload_is_cut_at_its_cap(server):
    port, seen = server
    seen["streamed"] = 0
    status, _ = chunked(port, "/gradio_api/upload", [b"u" * 1000] * 20, "application/octet-stream")
    assert status == 413
    assert seen["streamed"] <= UPLOAD  # what the app held before the read that passed the cap
    seen["streamed"] = 0
    status, body = chunked(
        port, "/gradio_api/upload", [b"u" * 1000] * 4, "application/octet-stream"
    )
    assert status == 200 and json.loads(body) == {"bytes": 4000}
