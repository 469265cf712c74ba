"""An ASGI middleware that caps every HTTP request body before the app reads it into memory.

A declared ``Content-Length`` over the cap is answered at once (the body is never read; a client
that sent ``Expect: 100-continue`` is never asked for it). A body without one (chunked) is counted
as it streams: the read that passes the cap fails inside the app, and whatever the app makes of
that failure (FastAPI turns an error while parsing a body into a 400), the client gets the 413.
Either way the answer is HTTP 413 with a JSON body ``{"detail": sentence}`` (the key Gradio's
page shows) and ``Connection: close``.

Nothing is exempt by default. ``routes`` gives exact paths their own cap: Gradio's
``/gradio_api/upload`` streams multipart files to disk and holds each to its ``max_file_size``, so
it gets a larger cap than the JSON routes, whose largest legitimate body is an image sent inline as
a ``data:`` URL (:func:`data_url_cap`). Paths are matched after the mount's ``root_path``, without
a trailing slash. WebSocket and lifespan traffic passes through.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["BodyLimit", "data_url_cap", "limit_sentence"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_DATA_URL_HEAD = len("data:image/webp;base64,")


def data_url_cap(max_file_bytes: int, *, images: int = 1, slack: int = 64 * 1024) -> int:
    """Bytes of a JSON request carrying ``images`` images of ``max_file_bytes`` each inline as
    base64 ``data:`` URLs, plus ``slack`` for the rest of the request."""
    if max_file_bytes < 0 or images < 0 or slack < 0:
        raise ValueError("sizes must be 0 or more")
    return images * (4 * math.ceil(max_file_bytes / 3) + _DATA_URL_HEAD) + slack


def _size(n: int) -> str:
    if n >= 2**20:
        return f"{n / 2**20:,.1f} MB"
    if n >= 2**10:
        return f"{n / 2**10:,.0f} KB"
    return f"{n:,} bytes"


def limit_sentence(limit: int, size: int | None = None) -> str:
    """The one sentence a refused body gets (``size``: its declared length, where known)."""
    got = f"This request is {_size(size)}" if size is not None else "This request is larger"
    return (
        f"{got}, and this app accepts at most {_size(limit)} in one request; send a smaller file "
        "or fewer images at a time."
    )


class _TooLarge(Exception):
    """Raised inside the app by the read that passes the cap."""


def _content_length(scope: Scope) -> int | None:
    """The declared Content-Length, or None (absent). Several differing values, or one that is
    not a whole number, count as none: the server refuses such a request itself, and otherwise the
    stream is counted anyway."""
    values = {v for k, v in scope.get("headers") or () if k.lower() == b"content-length"}
    if len(values) != 1:
        return None
    raw = next(iter(values)).strip()
    return int(raw) if raw.isdigit() else None


class BodyLimit:
    """``BodyLimit(app, max_bytes=N, routes={"/gradio_api/upload": M})``: request bodies over
    the path's cap get HTTP 413 and a sentence before the app holds them."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, routes: Mapping[str, int] | None = None):
        if max_bytes < 0 or any(v < 0 for v in (routes or {}).values()):
            raise ValueError("body caps must be 0 or more bytes")
        self.app = app
        self.max_bytes = int(max_bytes)
        self.routes = {p.rstrip("/") or "/": int(v) for p, v in (routes or {}).items()}

    def limit_for(self, scope: Scope) -> int:
        path = scope.get("path") or "/"
        root = scope.get("root_path") or ""
        if root and path.startswith(root):
            path = path[len(root) :]
        return self.routes.get(path.rstrip("/") or "/", self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit, declared)
            return

        seen = 0
        tripped = False
        started = False  # the app's response has begun (and reached the client)
        finished = False  # ... and ended
        swallowed = False  # the app's own answer to the failed read, replaced by ours

        async def counted() -> Message:
            nonlocal seen, tripped
            if tripped:
                raise _TooLarge
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body") or b"")
                if seen > limit:
                    tripped = True
                    raise _TooLarge
            return message

        async def guarded(message: Message) -> None:
            nonlocal started, finished, swallowed
            if tripped and not started:
                if message.get("type") == "http.response.start":
                    swallowed = True
                    await _refuse(send, limit, None)
                return  # the app's answer to the failed read: ours went instead
            if message.get("type") == "http.response.start":
                started = True
            elif message.get("type") == "http.response.body" and not message.get("more_body"):
                finished = True
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except _TooLarge:
            if started and not finished:  # an app that answered before reading all of its body
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            elif not swallowed:
                await _refuse(send, limit, None)
            return
        except Exception:
            if not tripped:
                raise
            if not started and not swallowed:
                await _refuse(send, limit, None)
            return
        if tripped and not started and not swallowed:  # the app swallowed the failure silently
            await _refuse(send, limit, None)


async def _refuse(send: Send, limit: int, size: int | None) -> None:
    body = json.dumps({"detail": limit_sentence(limit, size)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
