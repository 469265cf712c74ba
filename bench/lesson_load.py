"""A class pressing the lesson's steps at the same moment (``python -m bench.load --lesson``).

Each session is one student's browser: it picks the lesson's model (even sessions keep the
default, odd ones choose the second test model through /lesson_model), then presses steps 1 to
7 in order (/lesson_1 … /lesson_7, each with a prediction), and every session presses step N
together: a barrier holds them until all have the answer to step N-1. With ``--requests`` past
8 the class goes through the lesson again (then every result is already computed).

Every answer is checked: it names the session's model, it carries the reveal, and its *what to
notice* line is the same for every session on that model (one shared result, nobody else's).
In-process, the report adds how many real computations the lesson's shared results made.
"""

from __future__ import annotations

import contextlib
import threading
from typing import ClassVar

from bench import load

STEPS = tuple(range(1, 8))
MODELS = load.LESSON_MODELS
MIX = ("lesson_model", *(f"lesson_{n}" for n in STEPS))


class LessonSession(load.Session):
    requests: ClassVar[int] = 8
    barriers: ClassVar[dict[int, threading.Barrier]] = {}  # plan index -> the class's barrier
    notices: ClassVar[dict[tuple[str, int], str]] = {}  # (model, step) -> first notice seen
    lock = threading.Lock()

    connected: ClassVar[list[int]] = []  # the sessions that connected
    # Students open the page before class, not all in the same second: a Client's connection
    # reads the app's config and API page (~1 s of this app's CPU each), and 30 at once on a
    # busy 2-core machine run past gradio_client's read timeout. Two connect at a time; the
    # pressing of the steps is what is measured, all together.
    connecting = threading.Semaphore(2)

    def connect(self) -> None:
        from gradio_client import Client

        with self.connecting:
            # a browser waits for an answer: no 5 s read timeout (httpx's default) on a busy
            # machine; the latency measured includes the wait
            self.client = Client(
                self.args.url,
                verbose=False,
                download_files=str(self.folder / "downloads"),
                analytics_enabled=False,
                httpx_kwargs={"timeout": 120},
            )

    @classmethod
    def reset(cls, sessions: int, requests: int) -> None:
        cls.requests = requests
        cls.barriers, cls.notices, cls.connected = {}, {}, []

    def run(self, start: threading.Barrier, deadline_box: list[float]) -> None:
        """As :meth:`load.Session.run`, with the class's barriers made for the sessions that
        connected (a session that could not connect never holds the others up)."""
        try:
            self.connect()
            with self.lock:
                self.connected.append(self.sid)
        except Exception as exc:
            self.rec.error("connect", load.error_kind(exc))
        start.wait()  # every session has tried to connect
        with self.lock:
            if not self.barriers and self.connected:
                n = len(self.connected)
                self.barriers.update({j: threading.Barrier(n) for j in range(self.requests)})
        if self.sid not in self.connected:
            return
        import time

        deadline = deadline_box[0]
        plan = self.plan()
        for j, endpoint in enumerate(plan):
            if time.perf_counter() >= deadline:
                self.rec.unsent("--max-seconds reached", len(plan) - j)
                # the others must not wait for this session at the steps it leaves out
                for k in range(j, len(plan)):
                    self.barriers[k].abort()
                break
            try:
                self.call(endpoint, j, deadline)
            except Exception as exc:
                self.rec.error(endpoint, f"bench error: {load.error_kind(exc)}")

    @property
    def model(self) -> str:
        return MODELS[self.sid % len(MODELS)]

    def plan(self) -> list[str]:
        steps = [f"lesson_{STEPS[i % len(STEPS)]}" for i in range(self.args.requests - 1)]
        return ["lesson_model", *steps]

    def call(self, endpoint: str, j: int, deadline: float) -> None:
        import time

        barrier = self.barriers.get(j)
        if barrier is not None and not barrier.broken:
            # the whole class presses this step together (if a session gave up, the rest go
            # on unsynchronised)
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=max(1.0, deadline - time.perf_counter()))
        n = int(endpoint.split("_")[1]) if endpoint != "lesson_model" else 0
        name = endpoint if j <= len(STEPS) else f"{endpoint} again"  # a later pass: all stored
        if n:  # each student's prediction, one of the shown choices
            from explorer.ui.lesson import questions

            labels = questions.QUESTIONS[n].labels()
            args = (labels[(self.sid + n) % len(labels)],)
        else:
            args = (self.model,)
        t0 = time.perf_counter()
        try:
            out = self.client.submit(*args, api_name=f"/{endpoint}").result(
                timeout=max(1.0, deadline - t0)
            )
        except TimeoutError:
            self.rec.error(name, "timeout (--max-seconds reached)")
            return
        except Exception as exc:
            self.rec.error(name, load.error_kind(exc), time.perf_counter() - t0)
            return
        seconds = time.perf_counter() - t0
        try:
            self.check(n, out)
        except load.Mismatch as exc:
            self.rec.error(name, f"mismatch: {exc}", seconds)
            return
        except Exception as exc:
            self.rec.error(name, f"unreadable answer: {load.error_kind(exc)}", seconds)
            return
        self.rec.ok(name, seconds)

    def check(self, n: int, out) -> None:
        if n == 0:
            if f"**{self.model}**" not in out:
                raise load.Mismatch("lesson_model names another model")
            return
        note = out[-1]
        notice, _, answer = note.partition("\n\n**The answer, from this run.**")
        if not answer or "the numbers support" not in answer:
            raise load.Mismatch(f"step {n} without its answer")
        if n > 1 and f"With **{self.model}**" not in notice:
            raise load.Mismatch(f"step {n} ran on another model")
        key = ("" if n == 1 else self.model, n)
        with self.lock:
            first = self.notices.setdefault(key, notice)
        if first != notice:
            raise load.Mismatch(f"step {n} on {self.model}: another session saw other numbers")


def computations() -> str:
    """How many real computations the lesson's shared results made (this process's app)."""
    from explorer.ui.lesson import results

    total = sum(results.COMPUTED.values())
    keys = len(results.COMPUTED)
    return (
        f"Lesson results: **{total} real computations** for {keys} distinct (step, model) "
        f"results (step 1 is one for every model: {1 + (len(STEPS) - 1) * len(MODELS)} "
        f"expected); the shared store keeps at most {results.MAX_RESULTS}."
    )
