"""The attacker of ``python -m bench.load --public --attacker``: one client that uploads one
zip and then re-sends ``queue/join`` for the atlas upload under a fresh session id whenever it is
let in, with no event-stream listener, while ordinary sessions use the app.

It plays its own proxy, as every client of the bench does: the app runs as on a Space
(``EXPLORER_PROXY_HOPS=1``, uvicorn trusting no forwarded header), and the attacker's
``X-Forwarded-For`` is a spoofed entry naming an ordinary visitor, then its own address (what the
Space's proxy appends). Refused joins are retried after ``pause`` seconds.
"""

from __future__ import annotations

import io
import threading
import time
import uuid
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

ADDRESS = "203.0.113.66"
SPOOFED = "198.51.100.1"  # an ordinary session's address, written first by the attacker itself


def costly_zip(path: Path, n: int = 500, side: int = 64, seed: int = 0) -> Path:
    """A zip of ``n`` distinct noise PNGs in two class folders: within every cap, and each atlas
    opened from it decodes and embeds all ``n`` (nothing in the embedding cache matches twice
    within one open, and the attacker's sets are the same, so later opens hit the cache for the
    embedding but still decode and project every image)."""
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for i in range(n):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buf, "PNG")
            z.writestr(f"set/{'ab'[i % 2]}/{i:04d}.png", buf.getvalue())
    return path


class Attacker(threading.Thread):
    """``Attacker(url, zip_path, spaces)``; ``start()``, then ``stop()`` -> the counts."""

    def __init__(self, url: str, zip_path: Path, spaces: tuple, pause: float = 0.2):
        super().__init__(daemon=True, name="attacker")
        self.url = url.rstrip("/")
        self.zip_path, self.spaces, self.pause = zip_path, spaces, pause
        self.codes: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.accepted: list[str] = []
        self._halt = threading.Event()
        self.headers = {"X-Forwarded-For": f"{SPOOFED}, {ADDRESS}"}

    def stop(self) -> dict:
        self._halt.set()
        self.join(timeout=60)
        return {
            "joins": dict(self.codes),
            "accepted": len(self.accepted),
            "errors": dict(self.errors),
        }

    def _fn_index(self, http) -> int:
        config = http.get(f"{self.url}/config", headers=self.headers).json()
        for i, dep in enumerate(config["dependencies"]):
            if dep.get("api_name") == "atlas_upload":
                return dep.get("id", i)
        raise RuntimeError("the app has no atlas_upload endpoint")

    def run(self) -> None:
        import httpx

        with httpx.Client(timeout=60) as http:
            fn = self._fn_index(http)
            with open(self.zip_path, "rb") as fh:
                up = http.post(
                    f"{self.url}/gradio_api/upload",
                    files={"files": ("set.zip", fh)},
                    headers=self.headers,
                )
            path = up.json()[0]
            data = [  # the upload, the spaces, and the UNet model and timestep (unticked)
                [{"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": "set.zip"}],
                *self.spaces,
                None,
                200,
            ]
            while not self._halt.is_set():
                body = {"data": data, "fn_index": fn, "session_hash": uuid.uuid4().hex}
                try:
                    r = http.post(
                        f"{self.url}/gradio_api/queue/join", json=body, headers=self.headers
                    )
                except httpx.HTTPError as exc:
                    self.errors[type(exc).__name__] += 1
                    time.sleep(self.pause)
                    continue
                self.codes[r.status_code] += 1
                if (
                    r.status_code == 200
                ):  # then nobody listens: Gradio runs it, or the gate drops it
                    self.accepted.append(r.json().get("event_id", ""))
                else:
                    time.sleep(self.pause)


def until_drained(demo, limit: float = 600) -> None:
    """Wait (bounded) until the in-process app's queue holds nothing."""
    end = time.monotonic() + limit
    while demo is not None and demo._queue.event_ids_to_events and time.monotonic() < end:
        time.sleep(0.5)


def attacker_report(counts: dict, demo) -> str:
    """The attacker's line: its joins by answer, and what became of those let in."""
    joins = counts["joins"]
    gate = getattr(demo, "visitor_gate", None)
    dropped = gate.dropped if gate is not None else 0
    answered = ", ".join(f"{n:,} × HTTP {code}" for code, n in sorted(joins.items()))
    return (
        f"\nThe attacker ({counts['accepted'] + sum(v for k, v in joins.items() if k != 200):,} "
        f"joins of /atlas_upload under fresh session ids, no listener): {answered}"
        f"{'; connection errors ' + str(counts['errors']) if counts['errors'] else ''}. Of the "
        f"{counts['accepted']:,} let in, {dropped:,} were dropped unheard by the gate "
        f"(EXPLORER_LISTENER_GRACE_S) and {counts['accepted'] - dropped:,} ran."
    )
