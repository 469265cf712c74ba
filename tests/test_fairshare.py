"""explorer.core.fairshare and .visitors: visitor keys, per-address and per-session slots, budgets, fair order,
listeners. A fake clock throughout: no test waits."""

from __future__ import annotations

import contextvars
import threading

import pytest

from explorer.core.fairshare import FairShare, Known, Limits, Refused, fair_pick, parse_known
from explorer.core.visitors import (
    Listeners,
    Visitor,
    address_key,
    client_address,
    current_visitor,
    describe_forwarded,
    use_visitor,
    visitor,
)


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


# --------------------------------------------------------------------------- who


def test_without_a_proxy_the_forwarded_header_is_never_read():
    assert client_address("198.51.100.7", "203.0.113.9", proxy_hops=0) == "198.51.100.7"
    v = visitor("198.51.100.7", ["203.0.113.9"], "s1")
    assert v == Visitor("198.51.100.7", "s1")


def test_behind_one_proxy_the_rightmost_entry_is_the_client_and_spoofed_ones_are_ignored():
    # the client sent "X-Forwarded-For: 1.2.3.4, 5.6.7.8"; the proxy appended what it saw
    xff = "1.2.3.4, 5.6.7.8, 203.0.113.9"
    assert client_address("10.16.3.80", xff, proxy_hops=1) == "203.0.113.9"
    # two header lines read as one list, in order
    assert client_address("10.16.3.80", ["1.2.3.4", "203.0.113.9:5123"], proxy_hops=1) == (
        "203.0.113.9"
    )
    # two proxies: the outer one wrote the client, the inner one wrote the outer proxy
    assert client_address("10.0.0.2", "6.6.6.6, 203.0.113.9, 10.0.0.1", proxy_hops=2) == (
        "203.0.113.9"
    )


@pytest.mark.parametrize(
    "xff",
    [None, "", "not-an-address", "203.0.113.9 <script>", ",,,"],
)
def test_a_missing_or_unreadable_forwarded_entry_falls_back_to_the_connection(xff):
    assert client_address("10.16.3.80", xff, proxy_hops=1) == "10.16.3.80"


def test_too_few_entries_for_the_proxies_falls_back_to_the_connection():
    assert client_address("10.0.0.2", "203.0.113.9", proxy_hops=2) == "10.0.0.2"


def test_bracketed_and_ported_ipv6_entries_are_read():
    assert client_address("10.0.0.1", "[2001:db8::1]:443", proxy_hops=1) == "2001:db8::1"
    assert client_address("10.0.0.1", "2001:db8::1", proxy_hops=1) == "2001:db8::1"


def test_ipv6_addresses_share_a_key_per_64_and_mapped_ipv4_is_ipv4():
    a = address_key("2001:db8:1:2::1")
    b = address_key("2001:db8:1:2:ffff:ffff:ffff:ffff")
    c = address_key("2001:db8:1:3::1")
    assert a == b == "2001:db8:1:2::/64"
    assert c != a
    assert address_key("::ffff:203.0.113.9") == "203.0.113.9"
    assert address_key("203.0.113.9:1234") == "203.0.113.9"
    assert address_key("testclient") == "host:testclient"
    assert address_key(None) == "unknown"
    assert address_key("x" * 10_000).startswith("host:") and len(address_key("x" * 10_000)) < 80


def test_the_forwarded_shape_names_kinds_not_addresses():
    assert describe_forwarded(None) == "no X-Forwarded-For"
    shape = describe_forwarded("1.1.1.1, 10.16.3.80:443, junk")
    assert shape == "3 entries: public, private, unreadable"
    assert "1.1.1.1" not in shape
    assert describe_forwarded(", ".join(["1.1.1.1"] * 20)).startswith("20 entries: ..., public")


def test_a_huge_session_id_is_cut():
    assert len(visitor("203.0.113.9", None, "s" * 1_000_000).session) == 128


# --------------------------------------------------------------------------- slots


def test_one_address_minting_session_ids_is_held_to_the_per_address_cap():
    fs = FairShare(Limits(per_address=5, per_session=2), clock=Clock())
    held = []
    with pytest.raises(Refused) as exc:
        for i in range(100):  # bounded: a fresh session id for every request
            held.append(fs.reserve(Visitor("203.0.113.9", f"s{i}")))
    assert len(held) == 5
    assert exc.value.reason == "address_busy"
    assert "5" in exc.value.sentence and "network address" in exc.value.sentence
    # another visitor is not affected
    assert fs.reserve(Visitor("198.51.100.7", "t")) > 0
    assert fs.in_flight(Visitor("203.0.113.9", "s0")) == (5, 1)


def test_one_session_is_held_to_its_own_cap_inside_the_address():
    fs = FairShare(Limits(per_address=10, per_session=2), clock=Clock())
    who = Visitor("203.0.113.9", "tab")
    fs.reserve(who)
    fs.reserve(who)
    with pytest.raises(Refused) as exc:
        fs.reserve(who)
    assert exc.value.reason == "session_busy"
    assert fs.reserve(Visitor("203.0.113.9", "other-tab")) > 0  # same address, another tab


def test_a_class_of_30_behind_one_address_is_served_with_the_defaults():
    fs = FairShare(clock=Clock())
    school = "198.51.100.20"
    tickets = [fs.reserve(Visitor(school, f"student-{i}")) for i in range(30)]
    assert len(set(tickets)) == 30
    assert fs.in_flight(Visitor(school, "student-0")) == (30, 1)
    # ... and each student's per-minute budget is their own, inside the address's
    for i in range(30):
        fs.charge(Visitor(school, f"student-{i}"), 3.0)  # 90 CPU-s of 360 saved


def test_a_known_address_gets_its_limits_multiplied():
    lim = Limits(per_address=2, per_session=1, known=(Known("198.51.100.0/24", 10),))
    fs = FairShare(lim, clock=Clock())
    for i in range(20):
        fs.reserve(Visitor("198.51.100.20", f"s{i}"))
    with pytest.raises(Refused):
        fs.reserve(Visitor("198.51.100.20", "s20"))
    fs.reserve(Visitor("203.0.113.9", "a"))
    fs.reserve(Visitor("203.0.113.9", "b"))
    with pytest.raises(Refused):
        fs.reserve(Visitor("203.0.113.9", "c"))


def test_the_bodies_one_address_holds_are_capped():
    fs = FairShare(Limits(per_address=100, per_session=100, address_bytes=100), clock=Clock())
    who = Visitor("203.0.113.9", "s")
    fs.reserve(who, nbytes=500)  # the first request always gets in (BodyLimit caps its size)
    with pytest.raises(Refused) as exc:
        fs.reserve(who, nbytes=1)
    assert exc.value.reason == "address_bytes"


def test_sync_gives_back_the_slots_of_events_the_queue_no_longer_holds():
    clock = Clock()
    fs = FairShare(Limits(per_address=2, per_session=2, pending_ttl=30), clock=clock)
    who = Visitor("203.0.113.9", "s")
    t1, t2 = fs.reserve(who), fs.reserve(who)
    fs.bind(t1, "e1")
    fs.bind(t2, "e2")
    assert fs.address_of("e1") == "203.0.113.9"
    with pytest.raises(Refused):
        fs.reserve(who)
    assert fs.sync({"e2"}) == 1  # e1 finished, was cancelled or was dropped
    assert fs.in_flight(who) == (1, 1)
    t3 = fs.reserve(who)  # never bound (the join failed without telling us)
    assert fs.sync({"e2"}) == 0
    clock.t += 31
    assert fs.sync({"e2"}) == 1
    fs.release(t3)  # releasing twice is harmless
    assert fs.in_flight(who) == (1, 1)
    fs.release_event("e2")
    assert fs.in_flight(who) == (0, 0)


def test_concurrent_reservations_never_pass_the_cap():
    fs = FairShare(Limits(per_address=32, per_session=1))
    n = 64
    barrier = threading.Barrier(n)
    got: list[int] = []
    refused: list[str] = []

    def one(i: int) -> None:
        barrier.wait()
        try:
            got.append(fs.reserve(Visitor("203.0.113.9", f"s{i}")))
        except Refused as exc:
            refused.append(exc.reason)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(got) == 32 and len(set(got)) == 32
    assert refused == ["address_busy"] * 32


def test_memory_is_bounded_and_addresses_in_flight_are_kept():
    fs = FairShare(Limits(max_addresses=10, max_sessions=5), clock=Clock())
    busy = Visitor("192.0.2.1", "s")
    fs.reserve(busy)
    for i in range(1000):
        fs.charge(Visitor(f"10.0.{i // 250}.{i % 250}", "s"), 0)
        for j in range(20):
            fs.charge(Visitor("192.0.2.2", f"session-{i}-{j}"), 0)
    assert len(fs._addresses) <= 10
    assert all(len(a.sessions) <= 5 for a in fs._addresses.values())
    assert fs.in_flight(busy) == (1, 1)


# --------------------------------------------------------------------------- budgets


def test_a_request_over_budget_is_refused_with_the_seconds_until_it_is_not():
    clock = Clock()
    lim = Limits(session_rate=60, session_burst=180, address_rate=600, address_burst=1800)
    fs = FairShare(lim, clock=clock)
    who = Visitor("203.0.113.9", "s")
    fs.charge(who, 100)  # 80 left
    with pytest.raises(Refused) as exc:
        fs.charge(who, 100)  # 20 short at 1 a second
    assert exc.value.reason == "budget" and exc.value.retry_after == 20
    assert "try again in 20 s" in exc.value.sentence
    assert fs.wait_for(who, 100) == pytest.approx(20)
    clock.t += 19.5
    with pytest.raises(Refused) as exc:
        fs.charge(who, 100)
    assert exc.value.retry_after == 1  # 0.5 s, rounded up
    clock.t += 0.5
    fs.charge(who, 100)  # nothing was spent by the refusals


def test_a_request_bigger_than_the_whole_budget_waits_for_a_full_one_and_leaves_a_debt():
    clock = Clock()
    fs = FairShare(Limits(session_rate=60, session_burst=100, address_burst=10_000), clock=clock)
    who = Visitor("203.0.113.9", "s")
    fs.charge(who, 250)  # full bucket: allowed, 150 in debt
    with pytest.raises(Refused) as exc:
        fs.charge(who, 1)
    assert exc.value.retry_after == 151  # back to 1 token at 1 a second
    clock.t += 250  # 100 again (full)
    fs.charge(who, 250)


def test_fresh_sessions_do_not_escape_the_address_budget():
    clock = Clock()
    lim = Limits(session_rate=60, session_burst=60, address_rate=120, address_burst=120)
    fs = FairShare(lim, clock=clock)
    fs.charge(Visitor("203.0.113.9", "a"), 60)
    fs.charge(Visitor("203.0.113.9", "b"), 60)
    with pytest.raises(Refused) as exc:
        fs.charge(Visitor("203.0.113.9", "c"), 60)
    assert "network address" in exc.value.sentence and exc.value.retry_after == 30
    fs.charge(Visitor("198.51.100.7", "d"), 60)  # another address has its own


@pytest.mark.parametrize("cost", [float("nan"), float("inf"), -1.0])
def test_a_bad_price_is_a_caller_error(cost):
    fs = FairShare(clock=Clock())
    with pytest.raises(ValueError, match="cost"):
        fs.charge(Visitor("203.0.113.9", "s"), cost)


def test_charge_current_charges_the_visitor_of_this_context_across_a_worker_thread():
    fs = FairShare(Limits(session_rate=60, session_burst=10), clock=Clock())
    fs.charge_current(1000)  # no visitor: nothing to charge (the CLI)
    who = Visitor("203.0.113.9", "s")
    errors: list[Refused] = []

    def handler() -> None:
        try:
            fs.charge_current(8)
            fs.charge_current(8)
        except Refused as exc:
            errors.append(exc)

    def one_request() -> None:  # what the glue does: set the visitor, run the handler in a thread
        use_visitor(who)
        ctx = contextvars.copy_context()  # as anyio does for a worker thread
        t = threading.Thread(target=ctx.run, args=(handler,))
        t.start()
        t.join(timeout=10)

    contextvars.copy_context().run(one_request)
    assert len(errors) == 1 and errors[0].retry_after == 6
    assert current_visitor() is None  # outside that request's context


# --------------------------------------------------------------------------- order


def test_fair_pick_is_round_robin_by_address():
    # a flooder (A) queued 3 before the visitor (B); A has one running
    waiting = ["A", "A", "A", "B"]
    assert fair_pick(waiting, running={"A": 1}, last_start={"A": 5.0}) == 3
    # both idle: the one served longest ago goes first
    assert fair_pick(waiting, running={}, last_start={"A": 5.0, "B": 2.0}) == 3
    assert fair_pick(waiting, running={}, last_start={"A": 1.0, "B": 2.0}) == 0
    # a known (weighted) address with 2 running ranks like an ordinary one with 0.5
    assert fair_pick(["S", "C"], running={"S": 2, "C": 1}, last_start={}, weight={"S": 4}) == 0
    with pytest.raises(ValueError):
        fair_pick([], running={}, last_start={})


def test_pick_uses_the_ledger_and_started_marks_running():
    clock = Clock()
    fs = FairShare(clock=clock)
    a, b = Visitor("203.0.113.9", "a"), Visitor("198.51.100.7", "b")
    for i, who in enumerate([a, a, a, b]):
        fs.bind(fs.reserve(who), f"e{i}")
    fs.started("e0")
    assert fs.pick(["e1", "e2", "e3"]) == 2
    fs.started("e3")
    clock.t += 1
    fs.sync({"e1", "e2"})  # e0 and e3 finished
    assert fs.pick(["e1", "e2", "unknown-id"]) == 2  # never served beats served


# --------------------------------------------------------------------------- listeners


def test_listeners_name_waiting_requests_nobody_listens_for():
    clock = Clock(100.0)
    ls = Listeners(clock=clock)
    ls.opened("s1")
    queued = [("e1", "s1", 90.0), ("e2", "s2", 90.0), ("e3", "s3", 99.0)]
    assert ls.stale(queued, grace=5) == ["e2"]  # s1 listens; s3 joined 1 s ago
    ls.closed("s1")
    assert not ls.listening("s1")
    clock.t = 104.0
    assert ls.stale(queued, grace=5) == ["e2"]  # s1 closed 4 s ago, s3 queued 5 s ago
    clock.t = 105.5
    assert ls.stale(queued, grace=5) == ["e1", "e2", "e3"]


def test_listeners_memory_is_bounded():
    ls = Listeners(clock=Clock(), max_sessions=50)
    ls.opened("keep")
    for i in range(10_000):
        ls.opened(f"s{i}")
        ls.closed(f"s{i}")
    assert len(ls._open) <= 51 and ls.listening("keep")


# --------------------------------------------------------------------------- settings text


def test_parse_known():
    assert parse_known("203.0.113.7=8, 198.51.100.0/24") == (
        Known("203.0.113.7", 8.0),
        Known("198.51.100.0/24", 4.0),
    )
    assert parse_known("") == ()
    for bad in ("nonsense", "203.0.113.7=0.5", "203.0.113.7=x"):
        with pytest.raises(ValueError, match="not a known address"):
            parse_known(bad)


@pytest.mark.parametrize("field", ["per_address", "per_session", "max_addresses"])
def test_limits_refuse_nonsense(field):
    with pytest.raises(ValueError):
        Limits(**{field: 0})
    with pytest.raises(ValueError):
        Limits(address_rate=float("nan"))
