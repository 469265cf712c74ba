"""An ASGI middleware in front of Gradio's queue routes: per-visitor admission at join time, and a
record of which sessions listen, so that waiting requests nobody listens for are dropped.

* ``POST {prefix}/queue/join`` and ``POST {prefix}/call[/v2]/{api_name}`` (how the page, the
  Python client and ``curl`` put a request in the queue): the visitor (:func:`visitors.visitor`
  of the connection's address, ``X-Forwarded-For`` read only with ``proxy_hops`` > 0, and the
  body's ``session_hash``) reserves a slot with :meth:`FairShare.reserve` before Gradio sees the
  request; a refusal is HTTP 429 with ``{"detail": sentence}`` (Gradio's page shows the detail of
  any refusal but a 503) and ``Retry-After`` where known. Gradio's answer binds the slot to its
  event id; any other answer gives it back.
* ``GET {prefix}/queue/data?session_hash=S`` and ``GET {prefix}/call[/v2]/{api_name}/{event_id}``
  (the event streams): :class:`visitors.Listeners` counts them open while they run.
* With ``queued`` and ``drop``, a task on the server's event loop (started by the first request)
  drops, every ``sweep_every`` s, each waiting request whose session has had no stream open for
  ``grace`` s (:meth:`Listeners.stale`).

Gradio's own state comes in through callables (``live_events``, ``queued``, ``drop``), so this
module imports nothing from Gradio; the app's glue passes e.g.
``lambda: demo._queue.event_ids_to_events.keys()``. Put :class:`bodylimit.BodyLimit` outside it:
the join body is read whole here (and never more than ``max_join_bytes``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from .fairshare import FairShare, Refused
from .visitors import Listeners, Visitor, visitor

__all__ = ["VisitorGate", "scope_visitor"]

log = logging.getLogger("explorer.gate")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _path(scope: Scope) -> str:
    path = scope.get("path") or "/"
    root = scope.get("root_path") or ""
    return path[len(root) :] if root and path.startswith(root) else path


def scope_visitor(
    scope: Scope, session: str | None, *, proxy_hops: int = 0, v6_prefix: int = 64
) -> Visitor:
    """An ASGI scope (its ``client`` and ``X-Forwarded-For`` lines) -> the :class:`Visitor`."""
    client = scope.get("client")
    peer = client[0] if client else None
    forwarded = [v for k, v in scope.get("headers") or () if k.lower() == b"x-forwarded-for"]
    return visitor(peer, forwarded, session, proxy_hops=proxy_hops, v6_prefix=v6_prefix)


class VisitorGate:
    """``VisitorGate(app, fairshare=fs, live_events=..., proxy_hops=1)``: see the module."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        fairshare: FairShare,
        live_events: Callable[[], Collection[str]],
        listeners: Listeners | None = None,
        queued: Callable[[], Iterable[tuple[str, str, float]]] | None = None,
        drop: Callable[[str], Awaitable[None] | None] | None = None,
        grace: float = 5.0,
        sweep_every: float = 1.0,
        proxy_hops: int = 0,
        v6_prefix: int = 64,
        prefix: str = "/gradio_api",
        max_join_bytes: int = 64 * 2**20,
    ):
        self.app = app
        self.fairshare = fairshare
        self.live_events = live_events
        self.listeners = listeners or Listeners()
        self.queued, self.drop = queued, drop
        self.grace, self.sweep_every = float(grace), float(sweep_every)
        self.proxy_hops, self.v6_prefix = int(proxy_hops), int(v6_prefix)
        self.max_join_bytes = int(max_join_bytes)
        p = re.escape(prefix.rstrip("/"))
        self._join = re.compile(rf"{p}/(?:queue/join|call/(?:v2/)?[^/]+)/?")
        self._call_stream = re.compile(rf"{p}/call/(?:v2/)?[^/]+/([^/]+)/?")
        self._data = f"{prefix.rstrip('/')}/queue/data"
        self._sweeper: asyncio.Task | None = None
        self.dropped = 0  # waiting requests dropped for want of a listener

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        self._start_sweeper()
        method, path = scope.get("method"), _path(scope)
        if method == "POST" and self._join.fullmatch(path):
            await self._admit(scope, receive, send)
            return
        if method == "GET":
            session = None
            if path.rstrip("/") == self._data:
                session = (
                    parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_hash")
                    or [None]
                )[0]
            elif m := self._call_stream.fullmatch(path):
                session = m.group(1)  # a /call event's session is its own id (Gradio's Event)
            if session:
                self.listeners.opened(session)
                try:
                    await self.app(scope, receive, send)
                finally:
                    self.listeners.closed(session)
                return
        await self.app(scope, receive, send)

    async def _admit(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                return
            chunk = message.get("body") or b""
            size += len(chunk)
            if size > self.max_join_bytes:
                await _answer(
                    send, 413, "This request is larger than this app accepts in one request."
                )
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        session = _session_hash(body)
        who = scope_visitor(scope, session, proxy_hops=self.proxy_hops, v6_prefix=self.v6_prefix)
        self.fairshare.sync(set(self.live_events()))
        try:
            ticket = self.fairshare.reserve(who, nbytes=len(body))
        except Refused as exc:
            log.info("refused a request from %s: %s", who.address, exc.reason)
            await _answer(send, 429, exc.sentence, exc.retry_after)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status, answer = 0, bytearray()

        async def watch(message: Message) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 0))
            elif message.get("type") == "http.response.body" and len(answer) < 65536:
                answer.extend(message.get("body") or b"")
            await send(message)

        event_id = None
        try:
            await self.app(scope, replay, watch)
            event_id = _event_id(bytes(answer)) if status == 200 else None
        finally:
            if event_id:  # held until the queue no longer has it (sync, at the next join)
                self.fairshare.bind(ticket, event_id)
            else:
                self.fairshare.release(ticket)

    # ------------------------------------------------------------------ sweeping

    def _start_sweeper(self) -> None:
        if self._sweeper is not None or self.queued is None or self.drop is None:
            return
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_every)
            try:
                await self.sweep()
            except Exception:  # the sweep must outlive a bad moment in the queue's state
                log.exception("sweeping requests without listeners failed")

    async def sweep(self) -> list[str]:
        """Drop every waiting request whose session has had no listener for ``grace`` s now;
        returns their ids."""
        if self.queued is None or self.drop is None:
            return []
        stale = self.listeners.stale(list(self.queued()), grace=self.grace)
        for event_id in stale:
            result = self.drop(event_id)
            if inspect.isawaitable(result):
                await result
            self.fairshare.release_event(event_id)
        self.dropped += len(stale)
        return stale

    def close(self) -> None:
        """Stop the sweeping task (a server that stops cancels it anyway)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None


def _session_hash(body: bytes) -> str | None:
    try:
        data = json.loads(body) if body else None
    except ValueError:
        return None
    value = data.get("session_hash") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _event_id(answer: bytes) -> str | None:
    try:
        data = json.loads(answer)
    except ValueError:
        return None
    value = data.get("event_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


async def _answer(send: Send, status: int, sentence: str, retry_after: int | None = None) -> None:
    body = json.dumps({"detail": sentence}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(int(retry_after)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
