"""ZeroGPU's process model on a CPU-only machine: the real ``spaces`` package, a loopback device API.

What runs is the installed ``spaces`` package (tested with 0.51.3), unmodified: its ``spaces.GPU``
wrapper forks a worker with the ``fork`` context, pickles arguments and results through its
queues, reuses a worker only while it is alive and the device API answers ``idle``, and forks a
new one otherwise; its CUDA emulation lets the main process move tensors to ``"cuda"`` at import
and packs them to disk at ``launch()``. Three pieces make that run here:

* :class:`DeviceAPI` answers what ``SPACES_ZERO_DEVICE_API_URL`` answers on a Space (the calls
  the package makes, from ``spaces/zero/api.py``): ``POST /startup-report`` (200),
  ``POST /schedule?cgroupPath&taskId&enableQueue&tokenVersion[&durationSeconds][&gpuSize]
  [&token]`` (200 JSON ``{idle, nvidiaIndex, nvidiaUUID, allowToken}``), ``POST
  /allow?allowToken&pid`` (200; the worker reports its pid once, at its first call) and ``POST
  /release?allowToken&fail`` (200). It speaks only on 127.0.0.1 and stops itself (``close``,
  the ``with`` block, or ``lifetime_s``).
* :func:`install` (run before the app imports ``spaces``; :func:`subprocess_env` arranges it for
  a ``python app.py`` started by a test) makes the package importable on a CPU-only torch.
* :class:`Driver` runs a module's functions in such a subprocess, one call at a time, each in a
  thread of its own as Gradio runs a handler, so that a test in the pytest process (which never
  imports ``spaces``: its ``torch`` patches are process-wide) sees the answers.

How this differs from a real ZeroGPU Space, and why:

1. ``torch.version.cuda`` reads ``"12.8"`` while ``spaces`` is imported: its
   ``spaces/zero/torch/static.py`` calls ``torch.version.cuda.startswith(...)`` at import, which
   raises on a CPU-only torch (``None``). The value only picks the shape of a fake memory-stats
   dict; it is restored right after the import.
2. In a worker, ``spaces.zero.torch.init`` and ``move`` are replaced: the package's own
   ``init`` runs ``torch.Tensor([0]).cuda()`` and its ``move`` copies every tensor that the main
   process put on ``"cuda"`` (and every tensor packed to disk at launch) into pinned memory and
   then to the GPU. Here ``init`` sets ``CUDA_VISIBLE_DEVICES`` as the package does and ``move``
   gives each of those tensors its data on the CPU: the originals still held in memory, and the
   packed ones read back from the package's own pack files. So a model moved to ``"cuda"`` at
   import is usable in a worker, on the CPU, and reads ``device == cpu`` there (``cuda:0`` on a
   Space); inside a worker ``torch.cuda.is_available()`` is False here (True on a Space). Code
   that passes a device chosen in the main process into a GPU function therefore fails here and
   works there: choose the device inside the GPU function, or from the model's parameters.
3. A worker runs torch on the CPU with one thread (``torch.set_num_threads(1)`` in ``init``): a
   child forked from a process whose OpenMP pool has run a parallel region (the tensor packing
   at ``launch()`` does) hangs at its first parallel region of its own (GNU libgomp is not
   fork-safe). On a Space the worker's tensors are on the GPU and the question does not arise.
4. The device API is the harness's: it grants at once (a Space may queue a visitor over SSE),
   never refuses for quota, and decides ``idle`` by its own rule (below). It reclaims a GPU the
   way the package's code implies a Space does (a worker's pid is registered with ``/allow``
   and a worker that the wrapper stops using must not keep a GPU): on a fresh grant it SIGKILLs
   the workers last seen on that GPU index, and after ``release(fail=true)`` it SIGKILLs the
   worker if it was forked for that call (a reused worker does not report its pid again; it
   goes at the next fresh grant on its index or at ``close``). The package forks a new worker
   after either event anyway.

Workers: the package keeps one worker per decorated function and GPU index, so state a function
leaves in its worker is seen only by later calls of the same function on the same index, and
only until the worker is replaced. A worker is forked from the main process as it is at that
call (it sees module state written there before), keeps nothing the main process writes later,
and loads what the main process moved to ``"cuda"`` once, at its first call (``worker_init``).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

__all__ = ["DeviceAPI", "Driver", "Reply", "install", "startup", "subprocess_env"]

HARNESS_ENV = "ZEROGPU_HARNESS"  # "1" in a subprocess: its sitecustomize calls install()
REPLY = "ZEROGPU-REPLY "  # prefix of the Driver's answer lines (workers print to the same stdout)
FAKE_CUDA_VERSION = "12.8"
SITECUSTOMIZE = """\
import os
if os.environ.get({env!r}) == "1":
    import importlib.util as _u
    _spec = _u.spec_from_file_location("zerogpu_harness", {path!r})
    _mod = _u.module_from_spec(_spec)
    import sys as _sys
    _sys.modules["zerogpu_harness"] = _mod  # its functions pickle by this name
    _spec.loader.exec_module(_mod)
    _mod.install()
"""


# --------------------------------------------------------------------------------------------
# The device API (runs in the test process)
# --------------------------------------------------------------------------------------------


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (absent, or a zombie its parent has not reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}


def kill_and_wait(pid: int, timeout_s: float = 120.0) -> None:
    """SIGKILL ``pid`` and wait until it has exited (so a wrapper's ``is_alive()`` reads False);
    on a loaded machine a killed process can take seconds to go, so the wait is long, and a
    process still there after it is an error rather than a race left to the next call."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while not _gone(pid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"worker {pid} still running {timeout_s:.0f} s after SIGKILL")
        time.sleep(0.01)


class DeviceAPI:
    """Loopback stand-in for ZeroGPU's device API: grants at once, on ``gpus`` GPU indices.

    ``placement``: ``"rotate"`` gives consecutive calls the next free index in turn (two
    indices: two workers per function), ``"first"`` the lowest free index (one worker, reused).
    A grant is fresh (``idle: false``, and the workers last seen on its index are killed) the
    first time an index is used, when :meth:`fresh_next` asked for it, every ``fresh_every``-th
    grant, or with probability ``fresh_rate`` (seeded). ``calls`` logs every request.
    """

    def __init__(
        self,
        *,
        gpus: int = 2,
        placement: str = "rotate",
        fresh_every: int | None = None,
        fresh_rate: float = 0.0,
        seed: int = 0,
        kill_on_fail: bool = True,
        lifetime_s: float = 3600.0,
    ) -> None:
        if gpus < 1 or placement not in {"rotate", "first"}:
            raise ValueError("gpus must be >= 1 and placement 'rotate' or 'first'")
        self.gpus, self.placement = gpus, placement
        self.fresh_every, self.fresh_rate, self.kill_on_fail = fresh_every, fresh_rate, kill_on_fail
        self.calls: list[dict[str, Any]] = []
        self._rng = random.Random(seed)
        self._cond = threading.Condition()
        self._held: dict[int, str] = {}  # GPU index -> allow token of the call holding it
        self._tokens: dict[str, dict[str, Any]] = {}
        self._pids: dict[int, set[int]] = {i: set() for i in range(gpus)}  # index -> workers
        self._used: set[int] = set()
        self._grants = self._fresh_pending = 0
        self._last = -1
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._timer = threading.Timer(lifetime_s, self.close)
        self._timer.daemon = True
        self._closed = False
        self._thread.start()
        self._timer.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> DeviceAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving and kill every worker it saw (a worker whose app died would linger)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            pids = [p for s in self._pids.values() for p in s]
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()
        for pid in pids:
            kill_and_wait(pid)

    def fresh_next(self, n: int = 1) -> None:
        """The next ``n`` grants are fresh: the package forks a new worker for each."""
        with self._cond:
            self._fresh_pending += n

    def workers(self) -> list[int]:
        """Pids of the live workers that reported to ``/allow``, oldest first."""
        with self._cond:
            seen = [t["pid"] for t in self._tokens.values() if t["pid"] is not None]
        return [p for p in dict.fromkeys(seen) if not _gone(p)]

    def kill_workers(self) -> list[int]:
        """SIGKILL every live worker (as when a Space's GPU is taken back) -> their pids."""
        pids = self.workers()
        for pid in pids:
            kill_and_wait(pid)
        return pids

    def requests(self, path: str) -> list[dict[str, Any]]:
        """The logged requests to ``path`` (e.g. ``"/schedule"``), in order."""
        with self._cond:
            return [c for c in self.calls if c["path"] == path]

    # -- request handling --------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                api._answer(self)

            def do_GET(self) -> None:
                api._answer(self)

        return Handler

    def _answer(self, req: BaseHTTPRequestHandler) -> None:
        url = urlparse(req.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if int(req.headers.get("content-length") or 0):
            req.rfile.read(int(req.headers["content-length"]))
        routes = {
            ("POST", "/startup-report"): lambda p: (200, None),
            ("POST", "/schedule"): self._schedule,
            ("POST", "/allow"): self._allow,
            ("POST", "/release"): self._release,
            ("GET", "/queue-size"): lambda p: (200, 0),
        }
        route = routes.get((req.command, url.path))
        status, body = route(params) if route else (404, {"detail": "not found"})
        with self._cond:
            self.calls.append({"path": url.path, "params": params, "status": status})
        data = b"" if body is None else json.dumps(body).encode()
        req.send_response(status)
        req.send_header("content-type", "application/json")
        req.send_header("content-length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    def _schedule(self, params: dict[str, str]) -> tuple[int, Any]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._held) < self.gpus, timeout=120):
                return 503, {"detail": "no GPU"}  # the package says "No GPU was available"
            free = [i for i in range(self.gpus) if i not in self._held]
            if self.placement == "rotate":
                index = min(free, key=lambda i: (i - self._last - 1) % self.gpus)
            else:
                index = free[0]
            self._grants += 1
            fresh = index not in self._used or self._rng.random() < self.fresh_rate
            if self.fresh_every and self._grants % self.fresh_every == 0:
                fresh = True
            if self._fresh_pending:
                self._fresh_pending, fresh = self._fresh_pending - 1, True
            stale = sorted(self._pids[index]) if fresh else []
            if fresh:
                self._pids[index] = set()
            token = uuid.uuid4().hex
            self._held[index], self._last = token, index
            self._used.add(index)
            self._tokens[token] = {
                "index": index,
                "pid": None,
                "fail": None,
                "task": params.get("taskId"),
                "duration": params.get("durationSeconds"),
            }
        for pid in stale:  # the GPU was taken back: its old workers are gone
            kill_and_wait(pid)
        return 200, {
            "idle": not fresh,
            "nvidiaIndex": index,
            "nvidiaUUID": f"GPU-zerogpu-harness-{index}",
            "allowToken": token,
        }

    def _allow(self, params: dict[str, str]) -> tuple[int, Any]:
        with self._cond:
            grant = self._tokens.get(params.get("allowToken", ""))
            if grant is None or not params.get("pid", "").isdigit():
                return 404, {"detail": "unknown token"}
            grant["pid"] = int(params["pid"])
            self._pids[grant["index"]].add(grant["pid"])
        return 200, None

    def _release(self, params: dict[str, str]) -> tuple[int, Any]:
        fail = params.get("fail", "false").lower() == "true"
        with self._cond:
            token = params.get("allowToken", "")
            grant = self._tokens.get(token)
            if grant is None or grant["fail"] is not None:
                return 404, {"detail": "unknown token"}
            grant["fail"] = fail
            index = grant["index"]
            self._held.pop(index, None)
            # a reused worker does not call /allow again: its pid is not known here, and it
            # stays until a fresh grant on its index or close() (the package drops it either way)
            pid = grant["pid"]
            self._cond.notify_all()
            if fail and self.kill_on_fail and pid is not None:
                self._pids[index].discard(pid)
            else:
                pid = None
        if pid is not None:
            kill_and_wait(pid)
        return 200, None


# --------------------------------------------------------------------------------------------
# The app's side (runs in the subprocess, before the app imports `spaces`)
# --------------------------------------------------------------------------------------------


def _cpu_init(nvidia_uuid: str) -> None:
    """The worker's ``spaces.zero.torch.init`` without the CUDA call it makes on a Space, and
    with one CPU thread for torch (see the module docstring, point 3)."""
    import torch

    os.environ["CUDA_VISIBLE_DEVICES"] = nvidia_uuid
    torch.set_num_threads(1)


def _read_pack(pack: Any, callback: Any) -> None:
    """Give the fakes of one of the package's disk packs their data on the CPU, read back from the
    pack file in the order the package wrote it (batches, then big tensors, page-aligned)."""
    import torch

    with open(pack.path(), "rb") as f:
        for tensor, size, aligned in [t for batch in pack.batches for t in batch] + list(
            pack.big_tensors
        ):
            raw = torch.empty(aligned, dtype=torch.uint8)
            f.readinto(memoryview(raw.numpy()))
            data = torch.empty(0, dtype=tensor.dtype)
            data.set_(raw[:size].clone().untyped_storage(), 0, tensor.shape, tensor.stride())
            for fake in pack.fakes[tensor]:
                fake.data = data
            callback(size)


def _cpu_move(callback: Any = None) -> None:
    """The worker's ``spaces.zero.torch.move`` with the CPU as the device (see the module
    docstring): each tensor the main process moved to ``"cuda"`` gets its data back."""
    import torch
    from spaces.zero.torch import patching

    callback = callback or (lambda n: None)
    for fake, original in list(patching.cuda_aliases.items()):
        if original is not None:
            fake.data = torch.Tensor(original)  # unwraps a subclass, as the package does
            callback(fake.numel() * fake.element_size())
    for pack in patching.tensor_packs:
        _read_pack(pack, callback)


def _no_cuda_init() -> None:
    """``torch._C._cuda_init`` of a CPU-only torch, which has none (the package saves it)."""
    raise AssertionError("Torch not compiled with CUDA enabled")


def _not_in_bad_fork() -> bool:
    """``torch.cuda._is_in_bad_fork`` of a CPU-only torch (a lambda there, which the package's
    start-up check cannot pickle into its fork pool)."""
    return False


class _SpacesLoader(importlib.abc.Loader):
    """Runs the real ``spaces/__init__.py`` with ``torch.version.cuda`` set, then puts the CPU
    ``init``/``move`` in ``spaces.zero.torch``."""

    def __init__(self, real: importlib.abc.Loader) -> None:
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.real.create_module(spec)

    def exec_module(self, module: Any) -> None:
        gradio = sys.modules.get("gradio")
        try:
            _ = gradio and gradio.Blocks
        except AttributeError:  # gradio's own import-time probe, which the package refuses
            return self.real.exec_module(module)
        import torch

        saved = torch.version.cuda
        if saved is None:
            torch.version.cuda = FAKE_CUDA_VERSION
        if not hasattr(torch._C, "_cuda_init"):
            torch._C._cuda_init = _no_cuda_init
        bad_fork = torch.cuda._is_in_bad_fork
        torch.cuda._is_in_bad_fork = _not_in_bad_fork
        try:
            self.real.exec_module(module)
        finally:
            torch.version.cuda = saved
            torch.cuda._is_in_bad_fork = bad_fork
        if sys.modules["spaces.config"].Config.zero_gpu and saved is None:
            zero_torch = sys.modules["spaces.zero.torch"]
            zero_torch.init, zero_torch.move = _cpu_init, _cpu_move


class _SpacesFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "spaces":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _SpacesLoader(spec.loader)
        return spec


def install() -> None:
    """Make the next ``import spaces`` run the real package on this CPU-only torch.

    Needs ``SPACES_ZERO_GPU=true`` and ``SPACES_ZERO_DEVICE_API_URL`` on 127.0.0.1 (the package
    reads both once, when ``spaces.config`` is imported)."""
    if "spaces" in sys.modules:
        raise RuntimeError("install() must run before `spaces` is imported")
    url = urlparse(os.environ.get("SPACES_ZERO_DEVICE_API_URL", ""))
    if os.environ.get("SPACES_ZERO_GPU", "").lower() not in {"1", "t", "true"}:
        raise RuntimeError("SPACES_ZERO_GPU is not set: the package would not use ZeroGPU")
    if url.hostname != "127.0.0.1":
        raise RuntimeError("SPACES_ZERO_DEVICE_API_URL must be a loopback DeviceAPI")
    if not any(isinstance(f, _SpacesFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _SpacesFinder())


def startup() -> None:
    """What ``gr.Blocks.launch`` does first on ZeroGPU (``spaces/zero/__init__.py``): pack the
    tensors moved to ``"cuda"`` to disk, report start-up; for a process that never launches."""
    import gradio as gr

    zero = sys.modules["spaces.zero"]
    zero.startup()
    gr.Blocks.launch = sys.modules["spaces.zero.gradio"]._orig_launch


def subprocess_env(api: DeviceAPI, tmp: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a subprocess (``python app.py``) that runs under the harness.

    ``tmp``: a folder of the test's own; it gets the sitecustomize that calls :func:`install`,
    the package's pack folder and a cgroup file. ``base``: the environment to extend
    (``os.environ``); its ``PYTHONPATH`` is kept after the harness's folder."""
    env = dict(os.environ if base is None else base)
    shim = tmp / "zerogpu-site"
    shim.mkdir(parents=True, exist_ok=True)
    text = SITECUSTOMIZE.format(env=HARNESS_ENV, path=str(Path(__file__).resolve()))
    (shim / "sitecustomize.py").write_text(text)
    (tmp / "cgroup").write_text("0::/zerogpu-harness\n")
    env.update(
        {
            HARNESS_ENV: "1",
            "SPACES_ZERO_GPU": "true",
            "SPACES_ZERO_DEVICE_API_URL": api.url,
            "ZEROGPU_OFFLOAD_DIR": str(tmp / "zerogpu-offload"),
            "ZEROGPU_PROC_SELF_CGROUP_PATH": str(tmp / "cgroup"),
            # packing deletes the unmapped model files matching this pattern: never ours
            "ZEROGPU_MMAP_AUTOPRUNE_PATTERN": str(tmp / "no-autoprune" / "*"),
            "PYTHONPATH": os.pathsep.join(p for p in (str(shim), env.get("PYTHONPATH")) if p),
        }
    )
    return env


# --------------------------------------------------------------------------------------------
# Driver: a module's functions called in a harnessed subprocess
# --------------------------------------------------------------------------------------------


class Reply(dict):
    """One call's answer: ``ok``, then ``value`` or ``type`` and ``message`` of the error."""

    @property
    def ok(self) -> bool:
        return bool(self["ok"])


class Driver:
    """A subprocess that imports ``module`` (a file) under the harness and calls its functions.

    Each :meth:`call` runs in a thread of the subprocess's pool, not its main thread (Gradio runs
    a sync handler in a worker thread); ``"__startup__"`` calls :func:`startup`."""

    def __init__(self, module: Path, api: DeviceAPI, tmp: Path, *, timeout_s: float = 300) -> None:
        self.timeout_s = timeout_s
        tmp.mkdir(parents=True, exist_ok=True)
        self.log = tmp / "driver.log"
        self._log = open(self.log, "w")  # noqa: SIM115  (closed in close())
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "serve", str(module)],
            env=subprocess_env(api, tmp),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self._lines: list[str] = []
        self._ready = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self._wait()  # the module is imported

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(REPLY):
                with self._ready:
                    self._lines.append(line[len(REPLY) :])
                    self._ready.notify_all()
        with self._ready:
            self._lines.append(json.dumps({"ok": False, "type": "EOF", "message": "exited"}))
            self._ready.notify_all()

    def _wait(self) -> Reply:
        with self._ready:
            if not self._ready.wait_for(lambda: self._lines, timeout=self.timeout_s):
                raise TimeoutError(f"no answer; see {self.log}")
            reply = Reply(json.loads(self._lines.pop(0)))
        if reply.get("type") == "EOF":
            raise RuntimeError(f"the driver exited: {self.log.read_text()[-3000:]}")
        return reply

    def call(self, fn: str, *args: Any, **kwargs: Any) -> Reply:
        """Call ``module.fn(*args, **kwargs)`` (JSON arguments) -> its :class:`Reply`."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"fn": fn, "args": args, "kwargs": kwargs}) + "\n")
        self.proc.stdin.flush()
        return self._wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _serve(module_path: str) -> None:
    """The Driver's subprocess: import the module, then answer one JSON call per stdin line."""
    import importlib.util
    from concurrent.futures import ThreadPoolExecutor

    def answer(reply: dict[str, Any]) -> None:
        sys.stdout.write(REPLY + json.dumps(reply) + "\n")
        sys.stdout.flush()

    spec = importlib.util.spec_from_file_location(Path(module_path).stem, module_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pickle finds the module's functions by name
    spec.loader.exec_module(module)  # in the main thread, as a Space imports app.py
    answer({"ok": True, "value": None})
    with ThreadPoolExecutor(4) as pool:
        for line in sys.stdin:
            request = json.loads(line)
            fn = startup if request["fn"] == "__startup__" else getattr(module, request["fn"])
            try:
                value = pool.submit(fn, *request["args"], **request["kwargs"]).result()
                answer({"ok": True, "value": _jsonable(value)})
            except Exception as exc:  # the call's failure is the answer
                answer({"ok": False, "type": type(exc).__name__, "message": str(exc)})


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "serve":
    _serve(sys.argv[2])
