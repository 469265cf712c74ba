"""The Gradio glue of public mode's fair share (the rules are in :mod:`explorer.core.fairshare`):

* :class:`FairQueue`: Gradio's queue, but the next request of a concurrency group is the one
  :meth:`FairShare.pick` names (round robin by network address), not the oldest;
* :func:`request_visitor`: the visitor of a handler's ``gr.Request`` (the join request's address,
  behind ``EXPLORER_PROXY_HOPS`` proxies, and its session), set around each handler by
  ``ExplorerBlocks.process_api`` so that :func:`explorer.core.public.price` can charge it;
* :func:`middleware`: the ASGI middleware every launch gets, outermost first:
  :class:`~explorer.core.headers.SafeDownloads` (``nosniff`` everywhere; HTML and SVG files
  served as downloads), :class:`~explorer.core.bodylimit.BodyLimit` (413 past the caps) and, in
  public mode, :class:`~explorer.core.gate.VisitorGate` (429 past the per-visitor slots at
  join; waiting requests nobody listens for dropped).

``FairQueue`` overrides Gradio's private ``Queue.get_events`` (gradio is pinned to 6.31 in
pyproject); ``tests/test_fairshare_server.py`` is the guard when Gradio is upgraded.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import gradio as gr
from gradio import queueing
from starlette.middleware import Middleware

from explorer.core import public, settings
from explorer.core.bodylimit import BodyLimit
from explorer.core.fairshare import FairShare
from explorer.core.gate import VisitorGate
from explorer.core.headers import SafeDownloads
from explorer.core.visitors import Visitor, describe_forwarded, visitor

__all__ = ["FairQueue", "install_queue", "middleware", "request_visitor"]

log = logging.getLogger("explorer.fairshare")

PRIVATE_BODY_CAP = 4 * 2**30  # a private app's JSON bodies: generous, but not unbounded


class FairQueue(queueing.Queue):
    """Gradio's queue, but within each concurrency group the next request is the one
    :meth:`FairShare.pick` names (round robin by address), not the oldest. Batch functions keep
    Gradio's own order (the app has none)."""

    fairshare: FairShare

    def get_events(self):
        ids = list(self.event_queue_per_concurrency_id)
        random.shuffle(ids)
        for cid in ids:
            q = self.event_queue_per_concurrency_id[cid]
            free = q.concurrency_limit is None or q.current_concurrency < q.concurrency_limit
            if q.queue and free:
                if q.queue[0].fn.batch:
                    return super().get_events()
                event = q.queue.pop(self.fairshare.pick([e._id for e in q.queue]))
                self.fairshare.started(event._id)
                return [event], False, cid
        return None

    def waiting(self) -> list[tuple[str, str, float]]:
        """(event id, session, queued at on the monotonic clock) of every waiting request."""
        return [
            (e._id, e.session_hash or "", e.enqueue_time)
            for g in self.event_queue_per_concurrency_id.values()
            for e in g.queue
        ]


def install_queue(demo: gr.Blocks, fairshare: FairShare) -> None:
    """Make ``demo``'s queue (built by ``demo.queue()``) a :class:`FairQueue` over ``fairshare``."""
    demo._queue.__class__ = FairQueue
    demo._queue.fairshare = fairshare


_shape_logged = False


def request_visitor(request: Any, *, proxy_hops: int | None = None) -> Visitor | None:
    """A handler's ``gr.Request`` (or a batch's list of them) -> its :class:`Visitor`, or None
    where there is no request. The shape of the first request's ``X-Forwarded-For`` (no
    addresses) is logged once, so an operator can check ``EXPLORER_PROXY_HOPS``."""
    global _shape_logged
    req = request[0] if isinstance(request, list) and request else request
    if req is None or isinstance(req, list):
        return None
    hops = settings.get().proxy_hops if proxy_hops is None else proxy_hops
    client = getattr(req, "client", None)
    headers = getattr(req, "headers", None) or {}
    getlist = getattr(headers, "getlist", None)
    forwarded = getlist("x-forwarded-for") if getlist else headers.get("x-forwarded-for")
    if not _shape_logged:
        _shape_logged = True
        log.info(
            "first request: %s (EXPLORER_PROXY_HOPS=%d; the client is the rightmost public entry)",
            describe_forwarded(forwarded),
            hops,
        )
    return visitor(
        getattr(client, "host", None),
        forwarded,
        getattr(req, "session_hash", None),
        proxy_hops=hops,
    )


class _Gate(VisitorGate):
    """The gate, remembered by its demo (tests and the load bench read what it dropped)."""

    def __init__(self, app, *, demo: gr.Blocks, **kwargs):
        super().__init__(app, **kwargs)
        demo.visitor_gate = self


def middleware(demo: gr.Blocks) -> list[Middleware]:
    """The ASGI middleware for ``demo``'s server, outermost first (see the module)."""
    s = settings.get()
    out = [Middleware(SafeDownloads)]
    if not s.public:
        return [*out, Middleware(BodyLimit, max_bytes=PRIVATE_BODY_CAP)]
    q = demo._queue
    out.append(
        Middleware(
            BodyLimit,
            max_bytes=public.request_cap(s),
            routes={"/gradio_api/upload": public.upload_cap(s)},
        )
    )
    out.append(
        Middleware(
            _Gate,
            demo=demo,
            fairshare=q.fairshare if isinstance(q, FairQueue) else public.fairshare(),
            live_events=lambda: q.event_ids_to_events.keys(),
            queued=lambda: q.waiting() if isinstance(q, FairQueue) else [],
            drop=lambda event_id: q.clean_events(event_id=event_id),
            grace=s.listener_grace_s,
            proxy_hops=s.proxy_hops,
            max_join_bytes=public.request_cap(s),
        )
    )
    return out
