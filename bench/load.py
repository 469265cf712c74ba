"""Concurrent load on the app: N gradio_client sessions at once, mixed lab and atlas endpoints.

Each session is its own ``gradio_client.Client`` (its own Gradio session, so its own atlas) and
uses its OWN synthetic images: a solid colour that no other session has, with the session number
written as 8 black/white blocks along the top edge. Every answer that carries pixels is checked
against the session that asked (the /roundtrip original's colour and number, the /interpolate
crossfade's two ends), /encode's per-channel statistics must be the same every time a session
asks the same thing and never equal another session's, /atlas_select must star the point this
session asked for and /atlas_text must quote this session's sentence. A mismatch is counted as
an error of its own kind.

Each session first opens an atlas: the bundled set (/atlas_bundled with the tiny test spaces) or,
with ``--atlas upload``, a zip of 9 images of its own whose labels name the session
(/atlas_upload; then every atlas answer must show only this session's labels); it then
cycles through /encode, /roundtrip, /atlas_select, /edit, /atlas_text and /interpolate (each
session starts the cycle at a different place; lab resolutions 64 and 128; lab models test-tiny
and test-kl). With ``--exports`` /atlas_export joins the cycle (its points table must hold this session's
labels only); with ``--public`` the in-process app runs in public mode (a Space's limits), and
the report adds the disk growth of the app's temporary folder and Gradio's cache.
Latency is measured from submit to result, so it includes time spent waiting in
Gradio's queue: what a user sees.

Without ``--url`` it launches the app itself, in this process, with the tiny test models
(tests/tiny_models.py) registered, on a free 127.0.0.1 port and a fresh embedding cache in a
temporary folder (so the first atlas is cold); peak memory is then the RSS of this process (server + the clients, which are small) and
its children. With ``--url`` it loads an app already running on this machine (loopback only)
and samples the process listening on that port (or ``--pid``).

Bounded: ``--sessions`` x ``--requests`` requests at most, and no new request after
``--max-seconds`` (a request still running then is abandoned and counted as a timeout).
Prints Markdown (for BENCHMARKS.md) on stdout, progress on stderr.

    python -m bench.load                          # 32 sessions x 20 requests
    python -m bench.load --sessions 8 --requests 6 --max-seconds 120
    python -m bench.load --atlas upload --public --exports  # a public Space's worst case
    python -m bench.load --lesson --sessions 30 --requests 8  # a class of 30 (lesson_load.py)
    EXPLORER_PLUGINS=tests.tiny_models python app.py &  python -m bench.load --url http://127.0.0.1:7860/
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import re
import shlex
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from PIL import Image

from bench.common import cpu_name
from explorer.ui.atlas.payload import read_columns

SPACES = (["VAE", "CLIP", "DINOv2"], "test-tiny", "test-clip", "test-dino", "test-vit", "pca", "")
MIX = ("encode", "roundtrip", "atlas_select", "edit", "atlas_text", "interpolate")
LAB_MODELS = ("test-tiny", "test-kl")
LESSON_MODELS = ("test-tiny", "test-kl")  # bench/lesson_load.py: even / odd sessions
LAB_RESOLUTIONS = (64, 128)
ATLAS_SETS = {"bundled": "the bundled set", "upload": "each session's own 9-image zip"}
SIDE = 256  # the uploaded images are SIDE x SIDE
BITS = 8  # the session number, as BITS blocks along the top edge


def mix_for(args) -> tuple[str, ...]:
    """The endpoints a session cycles through (with ``--exports``: /atlas_export too; with
    ``--lesson``: the lesson's, bench/lesson_load.py)."""
    if getattr(args, "lesson", False):
        from bench import lesson_load

        return lesson_load.MIX
    return MIX + (("atlas_export",) if getattr(args, "exports", False) else ())


SCHOOL = "192.0.2.10"  # --classroom: every ordinary session behind this one address


def address_header(args, sid: int) -> dict[str, str] | None:
    """With --attacker or --classroom each client plays its own proxy (the app reads the address
    one hop in, as on a Space): session ``sid`` is 198.51.100.<sid+1>, or the school's."""
    if not (getattr(args, "attacker", False) or getattr(args, "classroom", False)):
        return None
    return {"X-Forwarded-For": SCHOOL if args.classroom else f"198.51.100.{sid + 1}"}


def app_disk_bytes() -> int:
    """Bytes under the app's own temporary folder and Gradio's cache (an in-process app)."""
    from gradio.utils import get_upload_folder

    from explorer.core import files

    return files.folder_bytes(files.tmp_root()) + files.folder_bytes(Path(get_upload_folder()))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- session images


def session_colours(n: int) -> list[tuple[int, int, int]]:
    """n distinct colours on a k x k x k grid (k = ceil(cbrt n)), at least 195/(k-1) apart."""
    k = max(2, math.ceil(n ** (1 / 3) - 1e-9))
    levels = [round(30 + i * 195 / (k - 1)) for i in range(k)]
    grid = [(r, g, b) for r in levels for g in levels for b in levels]
    return grid[:n]


def colour_tolerance(n: int) -> float:
    """How far (per channel) an answer's colour may be from its session's: under half the grid step."""
    k = max(2, math.ceil(n ** (1 / 3) - 1e-9))
    return 0.45 * 195 / (k - 1)


def session_image(sid: int, colour: tuple[int, int, int]) -> Image.Image:
    """A solid ``colour`` with ``sid`` in binary along the top edge (white = 1, black = 0)."""
    if not 0 <= sid < 2**BITS:
        raise ValueError(f"session number {sid} does not fit in {BITS} bits")
    arr = np.empty((SIDE, SIDE, 3), np.uint8)
    arr[:] = colour
    block = SIDE // (2 * BITS)  # BITS blocks across the left half, one block high
    for bit in range(BITS):
        arr[:block, bit * block : (bit + 1) * block] = 255 if (sid >> bit) & 1 else 0
    return Image.fromarray(arr)


def read_session(img: Image.Image) -> int:
    """The session number written by :func:`session_image` (any square size)."""
    a = np.asarray(img.convert("L"), np.float32)
    block = a.shape[1] / (2 * BITS)
    sid = 0
    for bit in range(BITS):
        x0, x1 = int(bit * block + block / 4), int((bit + 1) * block - block / 4)
        y1 = max(1, int(block * 3 / 4))
        if a[int(block / 4) : y1, x0 : max(x1, x0 + 1)].mean() > 127:
            sid |= 1 << bit
    return sid


def median_colour(img: Image.Image) -> np.ndarray:
    """Per-channel median (the session's colour; the number blocks are a small minority)."""
    return np.median(np.asarray(img.convert("RGB"), np.float32).reshape(-1, 3), axis=0)


SET_CLASSES = ("dark", "mid", "light")


def set_label(sid: int, name: str) -> str:
    return f"s{sid:03d}-{name}"


def session_zip(sid: int, colour: tuple[int, int, int], path: Path, per_class: int = 3) -> None:
    """A zip of 3 class folders named after the session (``s007-dark`` ...), images in its colour."""
    rng = np.random.default_rng(sid)
    with zipfile.ZipFile(path, "w") as z:
        for c, (name, gain) in enumerate(zip(SET_CLASSES, (0.5, 1.0, 1.3), strict=True)):
            for i in range(per_class):
                arr = np.clip(np.array(colour) * gain + rng.normal(0, 12, (48, 48, 3)), 0, 255)
                arr[c * 16 : c * 16 + 8] = 255  # a class mark
                buf = io.BytesIO()
                Image.fromarray(arr.astype(np.uint8)).save(buf, "PNG")
                z.writestr(f"set/{set_label(sid, name)}/{i}.png", buf.getvalue())


EXPORT_FILES = (
    "points.csv",
    "metrics.csv",
    "similarity.csv",
    "overlap.csv",
    "point_overlap.csv",
    "atlas.html",
)
"""What /atlas_export returns (its file names)."""


def _path(value) -> str:
    if isinstance(value, dict):
        value = value.get("path") or value.get("value") or value.get("url")
    return str(value)


def _open(value) -> Image.Image:
    with Image.open(_path(value)) as im:
        return im.convert("RGB")


# --------------------------------------------------------------------------- recording


class Recorder:
    """Latencies and errors from every session thread (thread-safe)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.errors_by_endpoint: Counter[str] = Counter()
        self.finished: Counter[str] = Counter()  # requests answered (rightly or not) per endpoint
        self.done: list[float] = []  # completion times of every request, ok or not
        self.encode_owner: dict[str, int] = {}  # stats fingerprint -> session
        self.not_sent: Counter[str] = Counter()  # requests a session did not send, and why

    def ok(self, endpoint: str, seconds: float) -> None:
        with self.lock:
            self.latency[endpoint].append(seconds)
            self.finished[endpoint] += 1
            self.done.append(time.perf_counter())

    def error(self, endpoint: str, kind: str, seconds: float | None = None) -> None:
        with self.lock:
            self.errors[kind] += 1
            self.errors_by_endpoint[endpoint] += 1
            self.finished[endpoint] += 1
            self.done.append(time.perf_counter())
            if seconds is not None:  # a wrong answer still took this long
                self.latency[endpoint].append(seconds)

    def unsent(self, why: str, n: int) -> None:
        with self.lock:
            self.not_sent[why] += n

    def claim_encode(self, fingerprint: str, sid: int) -> int:
        """The session that first got this /encode answer (``sid`` if nobody else did)."""
        with self.lock:
            return self.encode_owner.setdefault(fingerprint, sid)


def error_kind(exc: BaseException) -> str:
    """A short, countable description: the exception type and the start of its message."""
    msg = re.sub(r"'?/[^\s']+'?", "<path>", " ".join(str(exc).split()))
    if "No image set is open" in msg:
        msg = "No image set is open (atlas evicted from the store)"
    return f"{type(exc).__name__}: {msg[:120]}" if msg else type(exc).__name__


class Mismatch(Exception):
    """An answer that does not belong to the session that asked for it."""


# --------------------------------------------------------------------------- one session


class Session:
    def __init__(self, sid: int, args, rec: Recorder, folder: Path, colours):
        self.sid, self.args, self.rec = sid, args, rec
        self.colour = np.array(colours[sid], np.float32)
        self.colour_b = 255 - self.colour  # image B of /interpolate: the complement
        self.tol = colour_tolerance(args.sessions)
        self.folder = folder / f"s{sid:03d}"
        (self.folder / "downloads").mkdir(parents=True, exist_ok=True)
        self.image_a = self.folder / "a.png"
        self.image_b = self.folder / "b.png"
        session_image(sid, colours[sid]).save(self.image_a)
        session_image(sid, tuple(int(c) for c in self.colour_b)).save(self.image_b)
        self.opener = f"atlas_{args.atlas}"
        self.own_labels = None  # the labels this session's set has, when it uploads its own
        if args.atlas == "upload":
            self.set_zip = self.folder / "set.zip"
            session_zip(sid, colours[sid], self.set_zip)
            self.own_labels = {set_label(sid, c) for c in SET_CLASSES}
        self.rng = np.random.default_rng(1000 + sid)
        self.encode_seen: dict[tuple, str] = {}
        self.atlas_n = 0
        self.atlas_base = None  # the "base" of the atlas this session opened
        self.client = None

    def connect(self) -> None:
        from gradio_client import Client

        self.client = Client(
            self.args.url,
            verbose=False,
            download_files=str(self.folder / "downloads"),
            analytics_enabled=False,
            headers=address_header(self.args, self.sid),
        )

    def plan(self) -> list[str]:
        mix = mix_for(self.args)
        start = self.sid % len(mix)
        cycle = mix[start:] + mix[:start]
        return [self.opener] + [cycle[i % len(cycle)] for i in range(self.args.requests - 1)]

    def run(self, start: threading.Barrier, deadline_box: list[float]) -> None:
        try:
            self.connect()
        except Exception as exc:  # counted, and this session sends nothing
            self.rec.error("connect", error_kind(exc))
            start.wait()
            return
        start.wait()  # every session connected: the load starts for all at once
        deadline = deadline_box[0]
        plan = self.plan()
        for j, endpoint in enumerate(plan):
            if time.perf_counter() >= deadline:
                self.rec.unsent("--max-seconds reached", len(plan) - j)
                break
            if endpoint.startswith("atlas_") and endpoint != self.opener and not self.atlas_n:
                self.rec.unsent("no atlas open in the session", 1)
                continue  # its opening failed: nothing to ask
            try:
                self.call(endpoint, j, deadline)
            except Exception as exc:  # a bug here: counted, and the session goes on
                self.rec.error(endpoint, f"bench error: {error_kind(exc)}")

    def call(self, endpoint: str, j: int, deadline: float) -> None:
        from gradio_client import handle_file

        model = LAB_MODELS[(self.sid + j) % len(LAB_MODELS)]
        res = int(LAB_RESOLUTIONS[(self.sid // len(LAB_MODELS) + j) % len(LAB_RESOLUTIONS)])
        a, b = handle_file(str(self.image_a)), handle_file(str(self.image_b))
        own_set = [handle_file(str(self.set_zip))] if endpoint == "atlas_upload" else None
        text = f"session {self.sid} query {j}"
        index = (7 * self.sid + j) % max(1, self.atlas_n)
        args = {
            "atlas_bundled": SPACES,
            "atlas_upload": (own_set, *SPACES),
            "encode": (a, model, res, "square", "", "shared"),
            "roundtrip": (a, model, res, "square", "", "mean", 0),
            "edit": (
                a,
                model,
                res,
                "square",
                "",
                j % 4,
                ("scale", "zero", "shift", "noise")[j % 4],
                1.5,
                j,
            ),
            "interpolate": (a, b, model, 4, ("slerp", "lerp")[j % 2], res, ""),
            "atlas_select": (index,),
            "atlas_text": (text,),
            "atlas_export": (),
        }[endpoint]
        t0 = time.perf_counter()
        job = None
        try:
            job = self.client.submit(*args, api_name=f"/{endpoint}")
            out = job.result(timeout=max(1.0, deadline - t0))
        except TimeoutError:
            if job is not None:
                job.cancel()
            self.rec.error(endpoint, "timeout (--max-seconds reached)")
            return
        except Exception as exc:
            self.rec.error(endpoint, error_kind(exc), time.perf_counter() - t0)
            return
        seconds = time.perf_counter() - t0
        try:
            self.check(endpoint, out, model=model, res=res, text=text, index=index)
        except Mismatch as exc:
            self.rec.error(endpoint, f"mismatch: {exc}", seconds)
            return
        except Exception as exc:  # an answer the check could not even read
            self.rec.error(endpoint, f"unreadable answer: {error_kind(exc)}", seconds)
            return
        self.rec.ok(endpoint, seconds)

    # ------------------------------------------------------------------ checks

    def _colour_ok(self, got: np.ndarray, want: np.ndarray) -> bool:
        return bool(np.all(np.abs(got - want) <= self.tol))

    def _fetch(self, url: str) -> bytes:
        """A file the app serves (``/gradio_api/file=…``) -> its bytes."""
        with urllib.request.urlopen(self.args.url.rstrip("/") + url, timeout=60) as resp:
            return resp.read()

    def check(self, endpoint: str, out, *, model: str, res: int, text: str, index: int) -> None:
        if endpoint in ("atlas_bundled", "atlas_upload"):
            # the panels' columns, fetched from the app's file route as the browser does
            data = read_columns(json.loads(out[0]), self._fetch)
            self._own_set(data["labels"], endpoint)
            self.atlas_n = len(data["labels"])
            self.atlas_base = data["base"]  # what a later update must belong to
            if [p["key"] for p in data["panels"]] != ["vae", "clip", "dino"]:
                raise Mismatch("atlas panels")
        elif endpoint == "encode":
            summary, stats = out[0], out[5]
            rows = len(stats["data"])
            fingerprint = json.dumps(stats["data"])
            key = (model, res)
            if self.encode_seen.setdefault(key, fingerprint) != fingerprint:
                raise Mismatch("encode stats changed between two identical requests")
            owner = self.rec.claim_encode(f"{model}|{res}|{fingerprint}", self.sid)
            if owner != self.sid:
                raise Mismatch(f"encode stats of session {owner}")
            if f"{rows}×{res // 8}×{res // 8}" not in summary:
                raise Mismatch("encode summary of another size")
        elif endpoint == "roundtrip":
            orig = _open(out[0])
            if orig.size != (res, res):
                raise Mismatch(f"roundtrip original is {orig.size}, asked {res}")
            if read_session(orig) != self.sid or not self._colour_ok(
                median_colour(orig), self.colour
            ):
                raise Mismatch(f"roundtrip original of session {read_session(orig)}")
        elif endpoint == "edit":
            for value in out[:2]:  # the baseline and the edited decode
                if _open(value).size != (res, res):
                    raise Mismatch("edit image of another size")
            w, h = _open(out[2]).size  # the difference map, its colour bar under it
            if w != res or h <= res:
                raise Mismatch("edit difference map of another size")
        elif endpoint == "interpolate":
            fade = np.asarray(_open(out[3]), np.float32)
            w = fade.shape[1] // 4  # 4 steps side by side
            first = np.median(fade[:, :w].reshape(-1, 3), axis=0)
            last = np.median(fade[:, -w:].reshape(-1, 3), axis=0)
            if not (self._colour_ok(first, self.colour) and self._colour_ok(last, self.colour_b)):
                raise Mismatch("interpolate crossfade of other images")
        elif endpoint == "atlas_select":
            data = json.loads(out[1])
            if out[0] != index or data["selected"] != index:
                raise Mismatch("atlas_select starred another point")
            self._own_update(data, endpoint)
            for gallery in out[2:]:
                self._own_gallery(gallery, endpoint)
        elif endpoint == "atlas_export":
            paths = [_path(p) for p in out]
            names = sorted(p.rsplit("/", 1)[-1] for p in paths)
            points = [p for p in paths if p.endswith("/points.csv")]
            if names != sorted(EXPORT_FILES) or not points:
                raise Mismatch(f"atlas_export returned {names}, not {sorted(EXPORT_FILES)}")
            import pandas as pd

            frame = pd.read_csv(points[0])
            if len(frame) != self.atlas_n:
                raise Mismatch("atlas_export of a set of another size")
            self._own_set([str(v) for v in frame["label"]], endpoint)
        elif endpoint == "atlas_text":
            if text not in out[1]:
                raise Mismatch("atlas_text answered another sentence")
            self._own_update(json.loads(out[2]), endpoint)
            self._own_gallery(out[0], endpoint)

    def _own_update(self, data: dict, endpoint: str) -> None:
        """A click's or a search's answer only updates the selection: it must be for the atlas
        this session opened (the same ``base``: set, projection, colouring and cap)."""
        if not data.get("update") or data.get("base") != self.atlas_base:
            raise Mismatch(f"{endpoint} answered for another atlas")

    def _own_set(self, labels: list[str], endpoint: str) -> None:
        """With an uploaded set: every label is one of this session's."""
        if self.own_labels is not None and not set(labels) <= self.own_labels:
            others = sorted(set(labels) - self.own_labels)[:3]
            raise Mismatch(f"{endpoint} shows labels of another set: {others}")

    def _own_gallery(self, gallery, endpoint: str) -> None:
        """Gallery captions read '#i label · similarity': the labels must be this session's."""
        if self.own_labels is None or not gallery:
            return
        items = gallery.get("value") if isinstance(gallery, dict) else gallery
        for item in items or []:
            caption = item.get("caption") if isinstance(item, dict) else item[1]
            label = (caption or "").split(" ")[1] if caption else ""
            if label not in self.own_labels:
                raise Mismatch(f"{endpoint} gallery shows {caption!r}")


def run_sessions(sessions: list[Session], max_seconds: float, progress=None) -> float:
    """Run every session in its own thread; the load starts once all are connected and stops
    sending ``max_seconds`` later. Returns the start time (time.perf_counter)."""
    box = [math.inf, math.inf]  # [deadline, start], set when every session is connected

    def go() -> None:
        box[1] = time.perf_counter()
        box[0] = box[1] + max_seconds

    barrier = threading.Barrier(len(sessions), action=go)
    threads = [threading.Thread(target=s.run, args=(barrier, box), daemon=True) for s in sessions]
    for t in threads:
        t.start()
    shown = 0.0
    while any(t.is_alive() for t in threads):
        time.sleep(0.2)
        now = time.perf_counter()
        if progress is not None and now - box[1] >= shown + 10:
            shown = now - box[1]
            progress(shown)
        if now > box[0] + 120:
            log("sessions still running 120 s after --max-seconds: giving up on them")
            break
    return box[1]


# --------------------------------------------------------------------------- memory


class MemorySampler(threading.Thread):
    """RSS of a process and all its children, every ``interval`` s; keeps the peak."""

    def __init__(self, pid: int | None, interval: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = 0
        self.stop_event = threading.Event()

    def rss(self) -> int:
        """Bytes: VmRSS of the process and its descendants, from /proc (Linux; 0 elsewhere)."""
        if self.pid is None:
            return 0
        total, todo, seen = 0, [self.pid], set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            with contextlib.suppress(OSError, ValueError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                for task in Path(f"/proc/{pid}/task").iterdir():
                    with contextlib.suppress(OSError, ValueError):
                        todo += [int(c) for c in (task / "children").read_text().split()]
        return total

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.peak = max(self.peak, self.rss())
            self.stop_event.wait(self.interval)

    def stop(self) -> int:
        self.stop_event.set()
        self.join()
        self.peak = max(self.peak, self.rss())
        return self.peak


def listening_pid(url: str) -> int | None:
    """The process listening on ``url``'s port on this machine, if psutil (optional) can see it;
    otherwise pass ``--pid``."""
    try:
        import psutil
    except ImportError:
        return None

    port = urlparse(url).port or 80
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return conn.pid
    except psutil.Error:
        return None
    return None


# --------------------------------------------------------------------------- the app


def launch_app(folder: Path):
    """The real app in this process, tiny test models, on a free 127.0.0.1 port."""
    import socket

    os.environ.setdefault("EXPLORER_CACHE_DIR", str(folder / "embedding-cache"))
    os.environ.setdefault("GRADIO_TEMP_DIR", str(folder / "gradio"))  # its own, to measure
    from explorer.ui.app import build_demo, launch_kwargs
    from tests import tiny_models  # python -m bench.X puts the repository root on sys.path

    tiny_models.register()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = build_demo()
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        **launch_kwargs(),
    )
    return demo, demo.local_url


def check_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"--url must be a loopback address (127.0.0.1, localhost), not {host!r}")


# --------------------------------------------------------------------------- report


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


def machine() -> str:
    import gradio
    import gradio_client
    import torch

    cpu = cpu_name()
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return (
        f"{cpu}; {os.cpu_count()} CPUs visible (torch uses {torch.get_num_threads()} threads), "
        f"{ram / 2**30:.0f} GiB RAM, no GPU used "
        f"(device {'cuda' if torch.cuda.is_available() else 'cpu'}); Python "
        f"{platform.python_version()}, torch {torch.__version__}, gradio {gradio.__version__}, "
        f"gradio_client {gradio_client.__version__}; {platform.system()} {platform.release()}; "
        f"load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1 / 5 / 15 min) "
        "at the end, other work included"
    )


def report(args, rec: Recorder, wall: float, mem: dict, queue: str) -> str:
    n_err = sum(rec.errors.values())
    n_done = len(rec.done)
    planned = args.sessions * args.requests
    wall = max(wall, 1e-9)
    unsent = "".join(f" ({n} not sent: {why})" for why, n in rec.not_sent.items())
    what = (
        f"the lesson's steps 1-7 pressed by every session at once, models "
        f"{', '.join(LESSON_MODELS)} (alternate sessions)"
        if getattr(args, "lesson", False)
        else f"lab models {', '.join(LAB_MODELS)} at {'/'.join(map(str, LAB_RESOLUTIONS))} px, "
        f"atlas: {ATLAS_SETS[args.atlas]} in the VAE/CLIP/DINOv2 test spaces, PCA"
    )
    lines = [
        f"Command: `{' '.join(shlex.quote(a) for a in [Path(sys.argv[0]).as_posix(), *sys.argv[1:]])}`",
        "",
        f"Machine: {machine()}.",
        "",
        f"App: {queue}{', public mode' if getattr(args, 'public', False) else ''}; {what}.",
        "",
        f"{args.sessions} sessions x {args.requests} requests = {planned} planned; {n_done} finished "
        f"in {wall:.1f} s{unsent}: "
        f"**{n_done / wall:.2f} req/s** overall, {(n_done - n_err) / wall:.2f} req/s answered "
        f"correctly; **{n_err} errors**.",
        "",
        "| endpoint | requests | errors | p50 (s) | p95 (s) | p99 (s) | max (s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    order = [] if getattr(args, "lesson", False) else [f"atlas_{args.atlas}"]
    order += mix_for(args)
    all_lat: list[float] = []
    for ep in order + sorted(set(rec.finished) - set(order)):
        if not rec.finished[ep]:
            continue
        lat = rec.latency.get(ep, [])
        all_lat += lat
        lines.append(
            f"| /{ep} | {rec.finished[ep]} | {rec.errors_by_endpoint[ep]} | {pct(lat, 50):.2f} | "
            f"{pct(lat, 95):.2f} | {pct(lat, 99):.2f} | {max(lat, default=math.nan):.2f} |"
        )
    lines.append(
        f"| **all** | {n_done} | {n_err} | {pct(all_lat, 50):.2f} | {pct(all_lat, 95):.2f} | "
        f"{pct(all_lat, 99):.2f} | {max(all_lat, default=math.nan):.2f} |"
    )
    lines += ["", "Errors by kind: " + ("none." if not rec.errors else "")]
    for kind, count in rec.errors.most_common():
        lines.append(f"- {count} × {kind}")
    lines += [
        "",
        f"Memory ({mem['what']}): RSS {mem['before'] / 2**20:.0f} MiB before the load, "
        f"**peak {mem['peak'] / 2**20:.0f} MiB** during it, {mem['after'] / 2**20:.0f} MiB after.",
    ]
    if mem.get("disk_before") is not None:
        grown = mem["disk_after"] - mem["disk_before"]
        lines += [
            "",
            f"Disk (the app's temporary folder + Gradio's cache): {mem['disk_before'] / 2**20:.1f} "
            f"MiB before, {mem['disk_after'] / 2**20:.1f} MiB after: **{grown / 2**20:+.1f} MiB**, "
            f"{grown / 2**20 / max(n_done, 1) * 100:+.1f} MiB per 100 requests.",
        ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=32, help="concurrent clients (default 32)")
    ap.add_argument("--requests", type=int, default=20, help="requests per session (default 20)")
    ap.add_argument("--url", help="a running app on this machine (default: launch one here)")
    ap.add_argument(
        "--atlas",
        choices=("bundled", "upload"),
        default="bundled",
        help="what each session opens: the bundled set (default) or its own zip of 9 images "
        "with labels of its own (then every atlas answer must show only those labels)",
    )
    ap.add_argument(
        "--public",
        action="store_true",
        help="launch the app in public mode (EXPLORER_PUBLIC=1: a Space's limits and rules)",
    )
    ap.add_argument(
        "--exports",
        action="store_true",
        help="sessions also call /atlas_export (each must get its own set's points back)",
    )
    ap.add_argument(
        "--attacker",
        action="store_true",
        help="with --public: run the load twice, without and then with one client flooding "
        "/atlas_upload joins under fresh session ids and no listener (bench/attacker.py)",
    )
    ap.add_argument(
        "--classroom",
        action="store_true",
        help="every ordinary session behind one school address (the per-address limits)",
    )
    ap.add_argument(
        "--lesson",
        action="store_true",
        help="a class instead: every session presses the lesson's steps 1-7 at the same moment "
        "(bench/lesson_load.py); --requests 8 is one pass through the lesson",
    )
    ap.add_argument("--pid", type=int, help="with --url: the server's process id for memory")
    ap.add_argument(
        "--max-seconds", type=float, default=600, help="no new request after this (default 600)"
    )
    args = ap.parse_args(argv)
    if not 1 <= args.sessions <= 2**BITS or args.requests < 1 or args.max_seconds <= 0:
        ap.error(f"need 1 <= --sessions <= {2**BITS}, --requests >= 1, --max-seconds > 0")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # test models only: never reach the Hub
    if args.public:
        os.environ["EXPLORER_PUBLIC"] = "1"
    if args.attacker or args.classroom:
        if args.url or not args.public:
            ap.error("--attacker and --classroom launch the app here in public mode: add --public")
        os.environ["EXPLORER_PROXY_HOPS"] = "1"  # as on a Space: the address one proxy in
        os.environ["FORWARDED_ALLOW_IPS"] = ""  # and uvicorn trusts no forwarded header

    with tempfile.TemporaryDirectory(prefix="explorer-load-") as tmp:
        folder = Path(tmp)
        demo = None
        if args.url:
            check_loopback(args.url)
            pid = args.pid or listening_pid(args.url)
            what = f"the server process {pid} and its children" if pid else "server not found"
            queue = f"running at {args.url}"
        else:
            log("launching the app in this process ...")
            demo, args.url = launch_app(folder)
            pid = os.getpid()
            what = "this process: the app in-process plus the clients, and children"
            q = demo._queue
            queue = (
                f"launched in-process, queue default_concurrency_limit={q.default_concurrency_limit}"
                f", max_size={q.max_size}"
            )
        sampler = MemorySampler(pid)
        mem = {"what": what, "before": sampler.rss(), "disk_before": None}
        if demo is not None:
            mem["disk_before"] = app_disk_bytes()
        phases = [None, "attacker"] if args.attacker else [None]
        errors = 0
        for phase in phases:
            attacker = None
            if phase == "attacker":
                from bench.attacker import Attacker, attacker_report, costly_zip, until_drained

                sampler = MemorySampler(pid)
                mem = {"what": what, "before": sampler.rss(), "disk_before": app_disk_bytes()}
                attacker = Attacker(args.url, costly_zip(folder / "attack.zip"), SPACES)
                attacker.start()
                log("the attacker is flooding /atlas_upload joins ...")
            rec, sessions, wall, mem = run_phase(args, folder, sampler, mem, demo)
            errors += sum(rec.errors.values())
            if phase is None and args.attacker:
                print("### Without the attacker\n")
            elif phase == "attacker":
                counts = attacker.stop()
                until_drained(demo)
                print("\n### With the attacker\n")
            print(report(args, rec, wall, mem, queue))
            if args.lesson and demo is not None:
                from bench.lesson_load import computations

                print("\n" + computations())
            if attacker is not None:
                print(attacker_report(counts, demo))
            for s in sessions:
                if s.client is not None:
                    s.client.close()
        if demo is not None:
            demo.close()
    return 1 if errors else 0


def run_phase(args, folder: Path, sampler, mem: dict, demo):
    """One load run of ``args.sessions`` fresh sessions -> (recorder, sessions, wall, mem)."""
    rec = Recorder()
    colours = session_colours(args.sessions)
    kind = Session
    if args.lesson:
        from bench.lesson_load import LessonSession

        LessonSession.reset(args.sessions, args.requests)
        kind = LessonSession
    sessions = [kind(i, args, rec, folder, colours) for i in range(args.sessions)]
    log(f"connecting {args.sessions} clients to {args.url} ...")
    sampler.start()
    t0 = run_sessions(
        sessions,
        args.max_seconds,
        progress=lambda t, rec=rec: log(
            f"  {t:6.0f} s: {len(rec.done)} done, {sum(rec.errors.values())} errors, "
            f"peak RSS {sampler.peak / 2**20:.0f} MiB"
        ),
    )
    wall = (max(rec.done) if rec.done else time.perf_counter()) - t0
    mem["peak"] = sampler.stop()
    mem["after"] = sampler.rss()
    if demo is not None:
        mem["disk_after"] = app_disk_bytes()
    return rec, sessions, wall, mem


if __name__ == "__main__":
    sys.exit(main())
