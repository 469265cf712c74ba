"""The app as a ZeroGPU Space runs it: ``python app.py`` with the real ``spaces`` package, its
forked GPU workers and a loopback device API (tests/zerogpu.py), called through its API.

Two GPU indices (so two workers), workers killed between calls, and every answer checked against
the same computation made here, in this process, with the same tiny models (the workers run them
in half precision, as ZeroGPU's CUDA would: numbers agree within a tolerance, not to the bit).
An app that keeps its state in a worker answers the first call and then fails: the atlas opened
in a worker is not in the main process ("No image set is open").
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from zerogpu import DeviceAPI, subprocess_env

from explorer import atlas, datasets
from explorer.core.settings import VARIABLES
from explorer.lab import actions as lab
from explorer.ui.lesson import views as lt
from tests.helpers import atlas_of

pytestmark = [pytest.mark.slow, pytest.mark.app, pytest.mark.timeout(1500)]
if importlib.util.find_spec("spaces") is None:  # requirements-dev.txt installs it
    pytest.skip("the spaces package is not installed", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 300
CALL_TIMEOUT_S = 300
SPACES = (["VAE", "CLIP", "DINOv2"], "test-tiny", "test-clip", "test-dino", "test-vit", "pca", "")
REFS = ["vae:test-tiny", "clip:test-clip", "dino:test-dino"]
SIM_TOL = 0.03  # cosine: half precision in the workers, single precision here
STAT_TOL = 0.02


@dataclass
class Space:
    url: str
    api: DeviceAPI
    proc: subprocess.Popen
    log: Path

    def client(self) -> Client:
        return Client(self.url, verbose=False)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the app's process group, then SIGKILL it if it is still there after 15 s."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the workers too (same group)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("zerogpu-app")
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {v.name for v in VARIABLES} and not k.startswith(("HF_", "SPACE", "GRADIO_"))
    }
    port = _free_port()
    base.update(
        SPACE_ID="someone/explorer",  # a Space: public mode, ZeroGPU handlers
        EXPLORER_PLUGINS="tests.tiny_models",
        EXPLORER_CACHE_DIR=str(tmp / "cache"),
        HF_HOME=str(tmp / "hf"),
        HF_HUB_OFFLINE="1",
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_TEMP_DIR=str(tmp / "gradio"),
        GRADIO_ANALYTICS_ENABLED="False",
        PYTHONPATH=str(ROOT),
    )
    base.setdefault("OMP_NUM_THREADS", "1")  # two shared cores; the workers compute on them too
    api = DeviceAPI(gpus=2, placement="rotate", lifetime_s=3000)
    env = subprocess_env(api, tmp, base)
    log = tmp / "app.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the workers go with it
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the app exited: {log.read_text()[-4000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/config", timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"the app did not start in time: {log.read_text()[-4000:]}")
            time.sleep(1)
        yield Space(url, api, proc, log)
    finally:
        _stop(proc)
        api.close()


def call(space: Space, client: Client, api_name: str, *args):
    """One API call, bounded in time (a hung worker fails the test, not the run)."""
    job = client.submit(*args, api_name=api_name)
    try:
        return job.result(timeout=CALL_TIMEOUT_S)
    except TimeoutError:
        pytest.fail(
            f"{api_name} gave no answer in {CALL_TIMEOUT_S} s: {space.log.read_text()[-3000:]}"
        )


def _allowed_pids(api: DeviceAPI) -> set[int]:
    return {int(c["params"]["pid"]) for c in api.requests("/allow")}


def _gallery_sims(gallery: dict) -> list[float]:
    """The similarities a gallery's captions show (``#i label · 0.93``), in order."""
    return [float(item["caption"].rsplit("·", 1)[1]) for item in gallery["value"]
            if "·" in (item.get("caption") or "")]  # fmt: skip


def _table(df) -> list[dict]:
    return [dict(zip(df["headers"], row, strict=True)) for row in df["data"]]


def _number(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in {text[:400]!r}"
    return float(found.group(1))


@pytest.fixture(scope="module")
def reference():
    """The teaching set's atlas in this process (no ZeroGPU): what the Space must agree with."""
    return atlas.build(datasets.teaching_set(), REFS, "pca")


def test_the_atlas_survives_workers(space, reference, astronaut, examples):
    api, client = space.api, space.client()
    out = call(space, client, "/atlas_bundled", *SPACES)
    data = atlas_of(out[0])
    assert [p["key"] for p in data["panels"]] == ["vae", "clip", "dino"]
    assert len(data["labels"]) == len(reference.images) == 112
    assert "112 images" in out[1]
    opened, forked = len(api.requests("/schedule")), _allowed_pids(api)
    killed = api.kill_workers()  # the GPUs are taken back between two clicks

    index, payload, *galleries = call(space, client, "/atlas_select", 5)
    assert index == 5 and json.loads(payload)["selected"] == 5
    res = atlas.neighbours(reference, 5, 6)
    shown = [g for g in galleries if g["visible"]]
    assert len(shown) == 3
    for gallery, key in zip(shown, ("vae", "clip", "dino"), strict=True):
        assert _gallery_sims(gallery) == pytest.approx([s for _, s in res[key]], abs=SIM_TOL)

    galleries = call(space, client, "/atlas_query_image", handle_file(astronaut), "")
    want = atlas.query_image(reference, _loaded(astronaut), 6)
    for gallery, key in zip(galleries, ("vae", "clip", "dino"), strict=False):
        assert _gallery_sims(gallery) == pytest.approx([s for _, s in want[key]], abs=SIM_TOL), key

    items, note, payload = call(space, client, "/atlas_text", "a photo of a cat")
    top, scores = atlas.text_query(reference, "a photo of a cat", 8)
    assert [float(i["caption"].rsplit("·", 1)[1]) for i in items] == pytest.approx(
        [s for _, s in top], abs=SIM_TOL
    )
    assert len(json.loads(payload)["highlight"]) == 8 and "CLIP" in note
    assert np.ptp(scores) > 0  # the reference itself is not degenerate

    data = json.loads(call(space, client, "/atlas_color", "appearance"))
    assert data["color_by"] == "appearance" and "sepia" in data["classes"]
    out = call(space, client, "/atlas_method", "tsne")
    assert json.loads(out[0])["method"] == "tsne"
    files = call(space, client, "/atlas_export")
    assert sorted(f.rsplit("/", 1)[-1] for f in files) == [
        "atlas.html", "metrics.csv", "overlap.csv", "point_overlap.csv", "points.csv",
        "similarity.csv",
    ]  # fmt: skip

    # the same set again: every row is in the embedding cache, so no GPU is asked for
    before = len(api.requests("/schedule"))
    out = call(space, client, "/atlas_bundled", *SPACES)
    assert len(atlas_of(out[0])["labels"]) == 112
    assert len(api.requests("/schedule")) == before
    # the first opening: at least one GPU call per space, on both GPU indices in turn
    assert opened >= 3 and len(forked) >= 2 and set(killed) == forked


def _loaded(path):
    from explorer.images import io as imaging

    return imaging.load_image(str(path))


def test_the_lab_and_the_lesson_answer_through_workers(space, astronaut, examples):
    api, client = space.api, space.client()
    enc_out = call(
        space, client, "/encode", handle_file(astronaut), "test-kl", 128, "square", "", "shared"
    )
    st = lab.latent_stats(lab.encode(astronaut, "test-kl", 128))
    summary = enc_out[0]
    assert _number(r"mean (-?[\d.]+), std", summary) == pytest.approx(
        st.gaussian["mean"], abs=STAT_TOL
    )
    assert _number(r"std (-?[\d.]+), skewness", summary) == pytest.approx(
        st.gaussian["std"], abs=STAT_TOL
    )
    assert "test-kl" in summary

    rt_out = call(
        space, client, "/roundtrip", handle_file(astronaut), "test-kl", 128, "square", "", "mean", 0
    )
    rt = lab.roundtrip(astronaut, "test-kl", 128)
    row = _table(rt_out[4])[0]
    assert row["PSNR (dB)"] == pytest.approx(rt.psnr, abs=0.3)
    assert row["SSIM"] == pytest.approx(rt.ssim, abs=0.02)

    api.kill_workers()
    it_out = call(
        space, client, "/interpolate", handle_file(astronaut), handle_file(examples["coffee"]),
        "test-tiny", 4, "slerp", 128, "",
    )  # fmt: skip
    it = lab.interpolate(astronaut, examples["coffee"], "test-tiny", 4, "slerp", 128)
    assert _loaded(it_out[0]).size == it.strip.size
    note = it_out[5]
    ends = re.search(r"decode at (-?[\d.]+) dB and (-?[\d.]+) dB", note)
    assert ends, note
    assert [float(x) for x in ends.groups()] == pytest.approx(list(it.endpoint_psnr), abs=0.3)

    gen = call(
        space, client, "/generations", handle_file(astronaut), "test-tiny", 128, "square", "", 3
    )
    g = lab.generations(astronaut, "test-tiny", 3, 128)
    assert [r["PSNR (dB)"] for r in _table(gen[2])] == pytest.approx(g.psnr, abs=0.3)

    cmp_out = call(
        space, client, "/compare", handle_file(astronaut), "test-tiny", "test-kl", 128, "square", ""
    )
    rows = _table(cmp_out[4])
    assert [r["model"] for r in rows] == ["test-tiny", "test-kl"]
    ed = call(
        space,
        client,
        "/edit",
        handle_file(astronaut),
        "test-kl",
        128,
        "square",
        "",
        1,
        "scale",
        2.0,
        0,
    )
    e = lab.edit(astronaut, "test-kl", 1, "scale", 2.0, 0, 128)
    assert _number(r"\*\*(-?[\d.]+) dB PSNR\*\*", ed[4]) == pytest.approx(
        e.psnr_vs_baseline, abs=0.3
    )
    assert _number(r"mean absolute change ([\d.]+)", ed[4]) == pytest.approx(
        255 * e.mean_abs_change, abs=0.51
    )  # in 8-bit levels, whole ones from 10 up

    pert = call(
        space,
        client,
        "/perturb",
        handle_file(astronaut),
        ["VAE", "CLIP"],
        "test-tiny",
        "test-clip",
        "test-dino",
        "",
        "flip",
    )
    assert {r["space"] for r in _table(pert[3])} >= {"vae:test-tiny", "clip:test-clip"}

    for n in range(1, 8):
        if n == 4:
            api.kill_workers()
        out = call(space, client, f"/lesson_{n}")
        assert out[-1].startswith("**What to notice.**"), (n, out[-1])
        want = lt.run_step(n, "test-tiny", None)  # the lesson's model here: the first tiny one
        _same_table(_table(out[-2]), want.table, n)
    assert len(_allowed_pids(api)) >= 3  # workers were replaced after the kills


def _same_table(rows: list[dict], want, step: int) -> None:
    """A lesson's table from the Space against the one made here: the same rows and words,
    numbers within the precision's tolerance (PSNR 0.3 dB, rates and distances 0.06)."""
    assert [list(r) for r in rows] == [list(want.columns)] * len(rows) and len(rows) == len(want)
    for got, (_, ref) in zip(rows, want.iterrows(), strict=True):
        for col, value in ref.items():
            if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
                tol = 0.3 if "psnr" in col.lower() else 0.06
                assert got[col] == pytest.approx(float(value), abs=tol), (step, col)
            else:
                assert got[col] == value, (step, col)
