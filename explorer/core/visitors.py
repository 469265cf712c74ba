"""Who a request is from, and whether anyone listens for its answer: the visitor key of a public
app (the client address the server sees, behind a stated number of proxies, plus the session the
client names) and the record of open event streams. Pure Python, thread-safe, bounded memory.

* **Who.** A visitor is the client *address* plus the *session* the client names. The address is
  the key every limit uses: a session id is whatever the client sends, so a client can mint a
  fresh one per request; only per-session limits (one browser tab) use it, inside its address's.
  IPv6 addresses are keyed by their /64 (one subscriber's prefix).
* **Behind a proxy.** ``proxy_hops`` is the number of reverse proxies in front of the app that each
  append the address they saw to ``X-Forwarded-For``. 0 (no proxy): the connection's address. N:
  the N-th entry from the right, the one the outermost trusted proxy wrote; entries left of it
  are whatever the client sent and are never read. On a Hugging Face Space the app is reached
  only through the platform's proxy (the connection comes from an internal 10.x address), so 1
  there; the operator states it, it is never guessed from the request.
* **Listening.** :class:`Listeners` counts each session's open event streams, so that a waiting
  request nobody listens for can be named (:meth:`Listeners.stale`) and dropped.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from contextvars import ContextVar, Token
from dataclasses import dataclass

__all__ = [
    "Listeners",
    "Visitor",
    "address_key",
    "client_address",
    "current_visitor",
    "describe_forwarded",
    "use_visitor",
    "visitor",
]

MAX_SESSION_CHARS = 128  # a session id longer than this is cut (it is only a key)


# --------------------------------------------------------------------------- who


@dataclass(frozen=True)
class Visitor:
    """One client: ``address`` (the key every limit uses) and ``session`` (its tab, as it says)."""

    address: str
    session: str = ""


def _host_only(entry: str) -> str:
    """``1.2.3.4:5678`` / ``[::1]:80`` / ``::1`` / ``fe80::1%eth0`` -> the bare address text."""
    entry = entry.strip().strip('"')
    if entry.startswith("["):
        end = entry.find("]")
        return entry[1:end] if end > 0 else entry
    if entry.count(":") == 1:  # IPv4 with a port (an IPv6 address has two colons at least)
        return entry.split(":", 1)[0]
    return entry


def _forwarded_entries(forwarded_for: str | Iterable[str] | None) -> list[str]:
    if not forwarded_for:
        return []
    values = [forwarded_for] if isinstance(forwarded_for, str | bytes) else list(forwarded_for)
    out: list[str] = []
    for value in values[:16]:  # a request with more header lines than this is not from a proxy
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        out.extend(part.strip() for part in text[:4096].split(",") if part.strip())
    return out


def client_address(
    peer: str | None, forwarded_for: str | Iterable[str] | None = None, *, proxy_hops: int = 0
) -> str | None:
    """The client's address: ``peer`` (the connection's) when ``proxy_hops`` is 0, else the
    ``proxy_hops``-th ``X-Forwarded-For`` entry from the right (several header lines are read in
    order, as one list). A header with fewer entries than that, or an entry that is not an IP
    address, falls back to ``peer``: entries further left came from the client and mean nothing."""
    if proxy_hops < 0:
        raise ValueError("proxy_hops must be 0 or more")
    if proxy_hops == 0:
        return peer
    entries = _forwarded_entries(forwarded_for)
    if len(entries) < proxy_hops:
        return peer
    host = _host_only(entries[-proxy_hops])
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return peer
    return host


def describe_forwarded(forwarded_for: str | Iterable[str] | None) -> str:
    """The shape of an ``X-Forwarded-For`` header for an operator's log (no addresses in it):
    e.g. ``"3 entries: public, private, private"``, read right to left as the proxies wrote it.
    On a platform whose proxy chain is unknown, the first request's shape says how many hops to
    set: the client's entry is the rightmost *public* one."""
    entries = _forwarded_entries(forwarded_for)
    kinds = []
    for entry in entries[-8:]:
        try:
            ip = ipaddress.ip_address(_host_only(entry).split("%", 1)[0])
        except ValueError:
            kinds.append("unreadable")
            continue
        kinds.append(
            "private" if (ip.is_private or ip.is_loopback or ip.is_link_local) else "public"
        )
    if not entries:
        return "no X-Forwarded-For"
    more = "..., " if len(entries) > 8 else ""
    return f"{len(entries)} entries: {more}{', '.join(kinds)}"


def address_key(address: str | None, *, v6_prefix: int = 64) -> str:
    """An address -> the key its limits are kept under: IPv4 as is (an IPv4-mapped IPv6 address
    too), IPv6 as its ``/v6_prefix`` network, anything else (a test client, a socket name) as
    ``host:<text>`` (clipped), nothing as ``unknown``."""
    if not address:
        return "unknown"
    text = _host_only(str(address)[:256])
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return f"host:{text[:64]}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{v6_prefix}", strict=False))
    return str(ip)


def visitor(
    peer: str | None,
    forwarded_for: str | Iterable[str] | None,
    session: str | None,
    *,
    proxy_hops: int = 0,
    v6_prefix: int = 64,
) -> Visitor:
    """(connection address, X-Forwarded-For values, session id) -> the :class:`Visitor`."""
    address = client_address(peer, forwarded_for, proxy_hops=proxy_hops)
    return Visitor(
        address_key(address, v6_prefix=v6_prefix), str(session or "")[:MAX_SESSION_CHARS]
    )


_current: ContextVar[Visitor | None] = ContextVar("explorer_visitor", default=None)


def use_visitor(who: Visitor | None) -> Token:
    """Make ``who`` the visitor of the work running in this context (a handler and the worker
    thread it runs in: anyio copies the context); returns the token to reset it with."""
    return _current.set(who)


def current_visitor() -> Visitor | None:
    """The visitor set by :func:`use_visitor` in this context, or None (the CLI, a test, a
    private app)."""
    return _current.get()


# --------------------------------------------------------------------------- listeners


class Listeners:
    """Which sessions have an event stream open (Gradio's ``queue/data``), so that a waiting
    request nobody listens for can be dropped: :meth:`stale` names those whose session has had
    no stream open for ``grace`` seconds since they were queued. Bounded: at most
    ``max_sessions`` sessions remembered (the least recently seen closed ones go first)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_sessions: int = 4096):
        self._clock = clock
        self._max = max_sessions
        self._lock = threading.Lock()
        self._open: OrderedDict[str, list] = OrderedDict()  # session -> [open streams, last close]

    def _rec(self, session: str) -> list:
        rec = self._open.get(session)
        if rec is None:
            rec = self._open[session] = [0, -math.inf]
            excess = len(self._open) - self._max
            if excess > 0:
                for k in [k for k, r in self._open.items() if r[0] == 0 and k != session][:excess]:
                    del self._open[k]
        else:
            self._open.move_to_end(session)
        return rec

    def opened(self, session: str) -> None:
        with self._lock:
            self._rec(session)[0] += 1

    def closed(self, session: str) -> None:
        with self._lock:
            rec = self._rec(session)
            rec[0] = max(0, rec[0] - 1)
            rec[1] = self._clock()

    def listening(self, session: str) -> bool:
        with self._lock:
            rec = self._open.get(session)
            return bool(rec and rec[0] > 0)

    def stale(self, queued: Iterable[tuple[str, str, float]], *, grace: float) -> list[str]:
        """``queued``: (event id, session, queued at, on this object's clock) of each waiting
        request -> the ids whose session has had no stream open for more than ``grace`` s."""
        with self._lock:
            now = self._clock()
            out = []
            for event_id, session, queued_at in queued:
                rec = self._open.get(session)
                if rec is not None and rec[0] > 0:
                    continue
                since = max(queued_at, rec[1] if rec is not None else -math.inf)
                if now - since > grace:
                    out.append(event_id)
            return out
