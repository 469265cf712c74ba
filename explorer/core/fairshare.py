"""Per-visitor fair share for a public app: how many requests one visitor (:mod:`.visitors`) may
have waiting or running, how much work it may buy per minute, and which waiting request goes next.
Pure Python (no Gradio), thread-safe, bounded memory, clock injectable.

* **How many.** At most ``per_address`` requests waiting or running from one address (a class of
  30 behind one school address fits in the default 32), and ``per_session`` from one session
  inside it; the request bodies one address holds in the queue are capped too. A known address
  (:class:`Known`, e.g. the school's) gets its limits multiplied.
* **How much.** Work is priced before it runs, in estimated CPU-seconds. Each address and each
  session has a token bucket (``rate`` units a minute, up to ``burst`` saved). A request the
  buckets cannot pay for now is refused at once with a sentence saying in how many seconds it
  can; one that costs more than a whole bucket waits for a full bucket and leaves it in debt.
* **Who goes next.** :func:`fair_pick` starts the waiting request of the address with the fewest
  running (weighted), then the one served longest ago, then the oldest: round robin by address.

The caller (the app's Gradio glue) reserves a slot at queue join (:meth:`FairShare.reserve`),
binds it to Gradio's event id (:meth:`FairShare.bind`), charges the priced cost when the handler
starts (:meth:`FairShare.charge`, or :meth:`FairShare.charge_current` for the visitor set with
:func:`.visitors.use_visitor`), and hands :meth:`FairShare.sync` the ids Gradio still holds, so
finished, cancelled or dropped events give their slot back without any callback.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from .visitors import Visitor, current_visitor

__all__ = ["FairShare", "Known", "Limits", "Refused", "fair_pick", "parse_known"]


# --------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class Known:
    """A network whose visitors share more (a school's address): every per-address limit of an
    address inside ``network`` is multiplied by ``factor``."""

    network: str
    factor: float = 4.0

    def __post_init__(self) -> None:
        ipaddress.ip_network(self.network, strict=False)  # ValueError for a bad network
        if not (math.isfinite(self.factor) and self.factor >= 1):
            raise ValueError(f"the factor for {self.network} must be a number of at least 1")


def parse_known(text: str) -> tuple[Known, ...]:
    """``"203.0.113.7=8, 198.51.100.0/24"`` -> :class:`Known` entries (factor 4 where none is
    given). Raises ValueError with a sentence naming the bad entry."""
    out = []
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        net, _, factor = part.partition("=")
        try:
            out.append(Known(net.strip(), float(factor) if factor.strip() else 4.0))
        except ValueError:
            raise ValueError(
                f"{part[:80]!r} is not a known address: write an address or network, optionally "
                "with =FACTOR (a number of at least 1), e.g. 203.0.113.7=8 or 198.51.100.0/24"
            ) from None
    return tuple(out)


@dataclass(frozen=True)
class Limits:
    """What one visitor may hold and spend. Costs are in estimated CPU-seconds; rates per minute.

    The per-address defaults are a classroom's worth (30 students behind one school address each
    with a request in flight); the per-session ones keep one tab from taking the address's share.
    """

    per_address: int = 32  # requests waiting or running from one address
    per_session: int = 4  # ... from one session, inside its address's
    address_bytes: int = 256 * 2**20  # request-body bytes one address's waiting requests hold
    address_rate: float = 120.0  # CPU-seconds one address may buy per minute (2 cores' worth)
    address_burst: float = 360.0  # ... and save up (3 minutes' worth)
    session_rate: float = 60.0  # CPU-seconds one session may buy per minute (one core)
    session_burst: float = 180.0
    known: tuple[Known, ...] = ()
    max_addresses: int = 4096  # addresses remembered (the least recently seen idle ones go)
    max_sessions: int = 256  # sessions remembered per address
    pending_ttl: float = 60.0  # a reservation never bound to an event is given back after this

    def __post_init__(self) -> None:
        for name in (
            "per_address",
            "per_session",
            "address_bytes",
            "max_addresses",
            "max_sessions",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in (
            "address_rate",
            "address_burst",
            "session_rate",
            "session_burst",
            "pending_ttl",
        ):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number")


class Refused(Exception):
    """A request this visitor may not make now: ``sentence`` (what to tell them), ``reason``
    (``session_busy``, ``address_busy``, ``address_bytes``, ``budget``), ``retry_after`` (whole
    seconds until it would be accepted, where that is known; else None)."""

    def __init__(self, reason: str, sentence: str, retry_after: int | None = None):
        super().__init__(sentence)
        self.reason, self.sentence, self.retry_after = reason, sentence, retry_after


# --------------------------------------------------------------------------- the ledger


@dataclass
class _Bucket:
    tokens: float
    stamp: float

    def refill(self, now: float, rate: float, burst: float) -> None:
        self.tokens = min(burst, self.tokens + max(0.0, now - self.stamp) * rate / 60.0)
        self.stamp = now

    def wait(self, cost: float, rate: float, burst: float) -> float:
        """Seconds until this (refilled) bucket can pay ``cost`` (more than ``burst``: a full one)."""
        need = min(cost, burst)
        return 0.0 if self.tokens >= need else (need - self.tokens) * 60.0 / rate


@dataclass
class _Session:
    bucket: _Bucket
    held: int = 0  # tickets


@dataclass
class _Address:
    factor: float
    bucket: _Bucket
    sessions: OrderedDict[str, _Session] = field(default_factory=OrderedDict)
    held: int = 0
    nbytes: int = 0
    running: int = 0
    last_start: float = -math.inf


@dataclass
class _Ticket:
    address: str
    session: str
    nbytes: int
    created: float
    event_id: str | None = None
    started: bool = False


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


class FairShare:
    """The per-visitor ledger: reservations (waiting or running requests), budgets, fair order.

    Every method takes one lock; nothing blocks inside it. Memory is bounded: at most
    ``limits.max_addresses`` addresses (the least recently seen without requests in flight are
    forgotten first; an address with requests in flight is kept, and those are bounded by the
    queue) and ``limits.max_sessions`` sessions each.
    """

    def __init__(
        self, limits: Limits | None = None, *, clock: Callable[[], float] = time.monotonic
    ):
        self.limits = limits or Limits()
        self._clock = clock
        self._lock = threading.Lock()
        self._addresses: OrderedDict[str, _Address] = OrderedDict()
        self._tickets: dict[int, _Ticket] = {}
        self._by_event: dict[str, int] = {}
        self._next = 0
        self._networks = [
            (ipaddress.ip_network(k.network, strict=False), k.factor) for k in self.limits.known
        ]

    # ------------------------------------------------------------------ bookkeeping

    def _factor(self, address: str) -> float:
        if not self._networks:
            return 1.0
        try:
            ip = ipaddress.ip_address(address.split("/", 1)[0])
        except ValueError:
            return 1.0
        return max(
            (f for net, f in self._networks if ip.version == net.version and ip in net), default=1.0
        )

    def _address(self, key: str, now: float) -> _Address:
        rec = self._addresses.get(key)
        if rec is None:
            factor = self._factor(key)
            rec = _Address(factor, _Bucket(self.limits.address_burst * factor, now))
            self._addresses[key] = rec
            self._evict_addresses(keep=key)
        else:
            self._addresses.move_to_end(key)
        return rec

    def _evict_addresses(self, keep: str) -> None:
        excess = len(self._addresses) - self.limits.max_addresses
        if excess <= 0:
            return
        idle = [k for k, a in self._addresses.items() if a.held == 0 and k != keep][:excess]
        for k in idle:
            del self._addresses[k]

    def _session(self, rec: _Address, key: str, now: float) -> _Session:
        ses = rec.sessions.get(key)
        if ses is None:
            ses = _Session(_Bucket(self.limits.session_burst, now))
            rec.sessions[key] = ses
            excess = len(rec.sessions) - self.limits.max_sessions
            if excess > 0:
                idle = [k2 for k2, s in rec.sessions.items() if s.held == 0 and k2 != key]
                for k in idle[:excess]:
                    del rec.sessions[k]
        else:
            rec.sessions.move_to_end(key)
        return ses

    def _drop(self, ticket_id: int) -> None:
        t = self._tickets.pop(ticket_id, None)
        if t is None:
            return
        if t.event_id is not None:
            self._by_event.pop(t.event_id, None)
        rec = self._addresses.get(t.address)
        if rec is None:
            return
        rec.held -= 1
        rec.nbytes -= t.nbytes
        if t.started:
            rec.running -= 1
        ses = rec.sessions.get(t.session)
        if ses is not None:
            ses.held -= 1

    # ------------------------------------------------------------------ slots

    def reserve(self, who: Visitor, *, nbytes: int = 0) -> int:
        """Hold a slot for one request from ``who`` (``nbytes``: its body) and return its ticket;
        :class:`Refused` where its session or address already holds its limit."""
        lim = self.limits
        with self._lock:
            now = self._clock()
            rec = self._address(who.address, now)
            ses = self._session(rec, who.session, now)
            per_address = max(1, int(lim.per_address * rec.factor))
            per_session = min(lim.per_session, per_address)
            if ses.held >= per_session:
                raise Refused(
                    "session_busy",
                    f"You already have {ses.held} requests waiting or running in this app; "
                    "wait until one of them finishes, then try again.",
                )
            if rec.held >= per_address:
                raise Refused(
                    "address_busy",
                    f"{rec.held} requests from your network address are already waiting or "
                    f"running (everyone behind one address shares a limit of {per_address}); "
                    "try again when one of them has finished.",
                )
            cap = int(lim.address_bytes * rec.factor)
            if rec.held and rec.nbytes + nbytes > cap:
                raise Refused(
                    "address_bytes",
                    f"Requests from your network address already hold {_mb(rec.nbytes)} waiting "
                    f"in this app (the limit is {_mb(cap)}); try again when one has finished.",
                )
            self._next += 1
            self._tickets[self._next] = _Ticket(who.address, who.session, int(nbytes), now)
            rec.held += 1
            rec.nbytes += int(nbytes)
            ses.held += 1
            return self._next

    def bind(self, ticket: int, event_id: str) -> None:
        """The queue accepted the reserved request as ``event_id`` (what :meth:`sync` is given)."""
        with self._lock:
            t = self._tickets.get(ticket)
            if t is not None and t.event_id is None:
                t.event_id = event_id
                self._by_event[event_id] = ticket

    def release(self, ticket: int) -> None:
        """Give a reservation back (the queue refused the request, or it ended)."""
        with self._lock:
            self._drop(ticket)

    def release_event(self, event_id: str) -> None:
        with self._lock:
            ticket = self._by_event.get(event_id)
            if ticket is not None:
                self._drop(ticket)

    def sync(self, live: Collection[str]) -> int:
        """``live``: the event ids the queue still holds (waiting or running). Every bound slot
        whose event is gone, and every unbound one older than ``pending_ttl``, is given back.
        Returns how many were."""
        with self._lock:
            now = self._clock()
            gone = [
                tid
                for tid, t in self._tickets.items()
                if (t.event_id is not None and t.event_id not in live)
                or (t.event_id is None and now - t.created > self.limits.pending_ttl)
            ]
            for tid in gone:
                self._drop(tid)
            return len(gone)

    def in_flight(self, who: Visitor) -> tuple[int, int]:
        """(requests held by ``who``'s address, by its session)."""
        with self._lock:
            rec = self._addresses.get(who.address)
            if rec is None:
                return 0, 0
            ses = rec.sessions.get(who.session)
            return rec.held, ses.held if ses else 0

    def address_of(self, event_id: str) -> str | None:
        with self._lock:
            ticket = self._by_event.get(event_id)
            return self._tickets[ticket].address if ticket is not None else None

    # ------------------------------------------------------------------ budgets

    def wait_for(self, who: Visitor, cost: float) -> float:
        """Seconds until ``who`` could pay ``cost`` (0: now), without charging anything."""
        with self._lock:
            return max(self._waits(who, _cost(cost), self._clock()))

    def _waits(self, who: Visitor, cost: float, now: float) -> tuple[float, float]:
        lim = self.limits
        rec = self._address(who.address, now)
        ses = self._session(rec, who.session, now)
        a_rate, a_burst = lim.address_rate * rec.factor, lim.address_burst * rec.factor
        rec.bucket.refill(now, a_rate, a_burst)
        ses.bucket.refill(now, lim.session_rate, lim.session_burst)
        return (
            ses.bucket.wait(cost, lim.session_rate, lim.session_burst),
            rec.bucket.wait(cost, a_rate, a_burst),
        )

    def charge(self, who: Visitor, cost: float) -> None:
        """Spend ``cost`` (estimated CPU-seconds, priced before the work runs) from ``who``'s
        session and address budgets, or raise :class:`Refused` with the seconds until both could
        pay it (nothing is spent then)."""
        cost = _cost(cost)
        with self._lock:
            now = self._clock()
            w_session, w_address = self._waits(who, cost, now)
            wait = max(w_session, w_address)
            if wait > 0:
                secs = max(1, math.ceil(wait))
                whose = "your" if w_session >= w_address else "your network address's"
                raise Refused(
                    "budget",
                    f"This request would take about {max(1, round(cost)):,} CPU-seconds, more "
                    f"than {whose} share of this public app has left just now; try again in "
                    f"{secs} s.",
                    retry_after=secs,
                )
            rec = self._addresses[who.address]
            rec.bucket.tokens -= cost
            rec.sessions[who.session].bucket.tokens -= cost

    def charge_current(self, cost: float) -> None:
        """:meth:`charge` the visitor of this context (:func:`current_visitor`); no visitor (the
        CLI, a private app): nothing to charge."""
        who = current_visitor()
        if who is not None:
            self.charge(who, cost)

    # ------------------------------------------------------------------ order

    def started(self, event_id: str) -> None:
        """The queue started ``event_id``: its address has one more running, served now."""
        with self._lock:
            ticket = self._by_event.get(event_id)
            t = self._tickets.get(ticket) if ticket is not None else None
            if t is None or t.started:
                return
            t.started = True
            rec = self._addresses.get(t.address)
            if rec is not None:
                rec.running += 1
                rec.last_start = self._clock()

    def pick(self, waiting: Sequence[str]) -> int:
        """``waiting``: the event ids in one queue, oldest first -> the index to start next
        (:func:`fair_pick` over their addresses; an id this ledger never saw counts as an address
        of its own with nothing running)."""
        with self._lock:
            keys, running, last, weight = [], {}, {}, {}
            for eid in waiting:
                ticket = self._by_event.get(eid)
                addr = self._tickets[ticket].address if ticket is not None else f"?{eid}"
                keys.append(addr)
                rec = self._addresses.get(addr)
                if rec is not None:
                    running[addr], last[addr], weight[addr] = (
                        rec.running,
                        rec.last_start,
                        rec.factor,
                    )
        return fair_pick(keys, running=running, last_start=last, weight=weight)


def _cost(cost: float) -> float:
    cost = float(cost)
    if not (math.isfinite(cost) and cost >= 0):
        raise ValueError(f"a request's cost must be a finite number of at least 0, not {cost!r}")
    return cost


def fair_pick(
    waiting: Sequence[str],
    *,
    running: Mapping[str, int],
    last_start: Mapping[str, float],
    weight: Mapping[str, float] | None = None,
) -> int:
    """``waiting``: the address of each waiting request, oldest first -> the index of the one to
    start: fewest running for its address (divided by its weight), then the address served
    longest ago (never: first), then the oldest. Raises ValueError for an empty queue."""
    if not waiting:
        raise ValueError("nothing is waiting")
    weight = weight or {}
    return min(
        range(len(waiting)),
        key=lambda i: (
            running.get(waiting[i], 0) / max(weight.get(waiting[i], 1.0), 1e-9),
            last_start.get(waiting[i], -math.inf),
            i,
        ),
    )
