"""Public mode against a real server process, started as an operator would start it: ``python
app.py`` from a working directory that is not the repository, with ``EXPLORER_PUBLIC=1``, a
models folder of the operator's own and a temporary directory of its own (so its disk can be
measured), tried as a hostile visitor would try it.

The server is a subprocess (one for the module) so that its memory is its own to measure.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.helpers import ROOT, free_port

pytestmark = [pytest.mark.app, pytest.mark.slow]

LAB = ["test-tiny", 64, "square", "", "shared"]
UNET = ["test-tiny-unet", 200]  # the atlas's UNet model and timestep (unticked: unused)
MAX_FILE_MB = 1
START_TIMEOUT_S = 240
CALL_TIMEOUT_S = 120


@dataclass
class Server:
    url: str
    pid: int
    cwd: Path
    models: Path
    tmp: Path  # the process's TMPDIR: the app's own folders live under it
    gradio_tmp: Path  # GRADIO_TEMP_DIR


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    base = tmp_path_factory.mktemp("public-server")
    cwd, models, tmp, gtmp = (base / n for n in ("elsewhere", "operator-models-x7q", "tmp", "gr"))
    for p in (cwd, models, tmp, gtmp):
        p.mkdir()
    port = free_port()
    env = {
        **os.environ,
        "EXPLORER_PUBLIC": "1",
        "EXPLORER_MODELS_DIR": str(models),
        "EXPLORER_PLUGINS": "tests.tiny_models",
        "EXPLORER_MAX_FILE_MB": str(MAX_FILE_MB),
        "EXPLORER_CACHE_DIR": str(base / "cache"),
        "EXPLORER_TMP_MAX_MB": "20",
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_TEMP_DIR": str(gtmp),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "TMPDIR": str(tmp),
        "PYTHONPATH": "",  # the app finds its own package from app.py's folder
    }
    log = open(base / "server.log", "wb")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py")], cwd=cwd, env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the app exited: {(base / 'server.log').read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/config", timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail("the app did not start in time")
            time.sleep(1)
        yield Server(url, proc.pid, cwd, models, tmp, gtmp)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# --------------------------------------------------------------------------------------------
# Helpers: raw HTTP calls, as a hostile visitor would make them (no gradio_client niceties)
# --------------------------------------------------------------------------------------------


def call(server: Server, api_name: str, data: list, session: str | None = None) -> tuple[str, str]:
    """POST /gradio_api/call/<api_name> with ``data`` -> (event, payload) of the answer
    (``("complete", json)`` or ``("error", message)``)."""
    body: dict = {"data": data}
    if session:
        body["session_hash"] = session
    with httpx.Client(base_url=server.url, timeout=CALL_TIMEOUT_S) as http:
        r = http.post(f"/gradio_api/call/{api_name}", json=body)
        if r.status_code != 200:
            return "http", f"{r.status_code} {r.text}"
        event_id = r.json()["event_id"]
        event, payload = "", ""
        with http.stream("GET", f"/gradio_api/call/{api_name}/{event_id}") as s:
            for line in s.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    payload = line.split(":", 1)[1].strip()
                    return event, payload
    return event, payload


def message(payload: str) -> str:
    with contextlib.suppress(ValueError):
        loaded = json.loads(payload)
        if isinstance(loaded, dict):
            loaded = loaded.get("error")
        if isinstance(loaded, str):
            return loaded
        return str(loaded)
    return payload


def a_sentence(event: str, payload: str) -> str:
    """The answer is a refusal with the app's own sentence, not Gradio's bare "Error"."""
    assert event == "error", (event, payload[:300])
    msg = message(payload)
    assert msg and msg not in ("null", "None", "Error"), payload
    assert msg.rstrip().endswith((".", ".)")), msg
    assert "Traceback" not in msg and 'File "' not in msg, msg
    return msg


def data_url(im: Image.Image, fmt: str = "PNG", **kw) -> str:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


def hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1024**2


def astronaut_url() -> str:
    return data_url(Image.open(ROOT / "assets" / "astronaut.jpg").convert("RGB"))


# --------------------------------------------------------------------------------------------
# data: URLs go through the app's loader and its limits, never a decode of their own
# --------------------------------------------------------------------------------------------


def test_a_small_data_url_of_a_huge_image_is_refused_without_decoding_it(server):
    ok_event, _ = call(server, "encode", [{"url": astronaut_url()}, *LAB])
    assert ok_event == "complete"  # the models are loaded before the peak is measured
    before = hwm_mb(server.pid)
    # 5600 x 5600 one-bit pixels: 31 MP (past the public 16 MP, under Pillow's 2x refusal), 12 KB
    bomb = data_url(Image.new("1", (5600, 5600)), optimize=True)
    assert len(bomb) < 100_000
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: call(server, "encode", [{"url": bomb}, *LAB]), range(4)))
    for event, payload in answers:
        assert "megapixel" in a_sentence(event, payload)
    grown = hwm_mb(server.pid) - before
    assert grown < 300, f"the server's peak memory grew by {grown:.0f} MB"
    assert call(server, "encode", [{"url": astronaut_url()}, *LAB])[0] == "complete"


def test_a_data_url_is_held_to_the_upload_size_limit(server):
    noise = np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8)
    big = data_url(Image.fromarray(noise))  # ~1.5 MB of PNG, 0.5 MP
    assert len(big) * 3 / 4 > MAX_FILE_MB * 1024**2
    msg = a_sentence(*call(server, "encode", [{"url": big}, *LAB]))
    assert "MB" in msg


# --------------------------------------------------------------------------------------------
# What the page and the API description show
# --------------------------------------------------------------------------------------------


def test_config_and_api_info_show_no_server_path(server):
    secrets = [str(server.models), sys.prefix, str(ROOT), os.path.expanduser("~")]
    for route in ("/config", "/gradio_api/info"):
        text = httpx.get(server.url + route, timeout=30).text
        for secret in secrets:
            assert secret not in text, f"{route} shows {secret}"


# --------------------------------------------------------------------------------------------
# Started from another working directory
# --------------------------------------------------------------------------------------------


def test_started_elsewhere_it_serves_its_examples_and_opens_the_bundled_set(server):
    assert Path(os.readlink(f"/proc/{server.pid}/cwd")) == server.cwd
    config = httpx.get(server.url + "/config", timeout=30).json()
    urls = [u for u in _urls(config) if u.rsplit("/", 1)[-1] in ("astronaut.jpg", "rocket.jpg")]
    assert urls, "no example image in the page"
    for u in urls:
        r = httpx.get(u if u.startswith("http") else server.url + u, timeout=30)
        assert r.status_code == 200 and r.content[:2] == b"\xff\xd8", u  # a JPEG
    spaces = [["VAE", "CLIP"], "test-tiny", "test-clip", "test-dino", "test-vit", "pca", "", *UNET]
    event, payload = call(server, "atlas_bundled", spaces, session="elsewhere-1")
    assert event == "complete", payload[:500]
    assert "images" in payload


def _urls(node) -> list[str]:
    if isinstance(node, dict):
        return [u for v in node.values() for u in _urls(v)] + (
            [node["url"]] if isinstance(node.get("url"), str) else []
        )
    if isinstance(node, list):
        return [u for v in node for u in _urls(v)]
    return []


# --------------------------------------------------------------------------------------------
# Malformed calls get a sentence, never Gradio's bare "Error"
# --------------------------------------------------------------------------------------------

MALFORMED = {
    "nothing": None,
    "a string": "zzz",
    "an absurd number": 1e308,
    "a nested list": [1, [2]],
    "an object": {"a": 1},
    "an empty string": "",
}


@pytest.mark.parametrize("kind", [*MALFORMED, "too few values"])
def test_every_endpoint_answers_a_malformed_call_with_a_sentence(server, kind):
    info = httpx.get(server.url + "/gradio_api/info", timeout=30).json()["named_endpoints"]
    assert len(info) >= 20
    bare = []
    for name, endpoint in info.items():
        n = len(endpoint["parameters"])
        if kind == "too few values":
            if n == 0:
                continue
            data = []
        else:
            data = [MALFORMED[kind]] * n
        event, payload = call(server, name.strip("/"), data, session=f"malformed-{name}")
        if event == "complete":
            continue  # e.g. an empty folder box is a valid value
        msg = message(payload)
        if event != "error" or msg in ("None", "null", "", "Error") or not msg.endswith("."):
            bare.append(f"{name}: {event} {msg[:120]!r}")
    assert not bare, "\n".join(bare)


# --------------------------------------------------------------------------------------------
# Disk: exports are written once (served where they are written), Gradio's cache kept short
# --------------------------------------------------------------------------------------------


def test_an_export_is_written_once_not_copied_into_gradios_cache(server):
    spaces = [["VAE", "CLIP"], "test-tiny", "test-clip", "test-dino", "test-vit", "pca", "", *UNET]
    assert call(server, "atlas_bundled", spaces, session="exporter")[0] == "complete"
    for _ in range(3):
        event, payload = call(server, "atlas_export", [], session="exporter")
        assert event == "complete", payload[:300]
    html = [p for p in server.tmp.rglob("atlas.html")]
    copies = [p for p in server.gradio_tmp.rglob("*.html")]
    assert len(html) == 3 and not copies, (html, copies)
    for url in _urls(json.loads(payload)):
        if url.endswith("atlas.html"):
            r = httpx.get(url if url.startswith("http") else server.url + url, timeout=30)
            assert r.status_code == 200 and b"plotly" in r.content
