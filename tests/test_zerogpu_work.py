"""The GPU jobs under the real ``spaces`` package (tests/zerogpu.py: forked workers, a loopback
device API): models placed on "cuda" once, at import, and used by every worker without a load;
only uncached images asked for, in chunks, each with a duration priced from its images; a job's
error arriving with its sentence; rows that agree with this process's.

The workers run the tiny models in half precision (as ZeroGPU's CUDA does; here on the CPU), so
rows agree with this process's single-precision rows within a tolerance.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from zerogpu import DeviceAPI, Driver

from explorer import datasets
from explorer.core import gpu
from explorer.spaces import embed as embeddings
from explorer.spaces import gpu_calls, gpu_work

pytestmark = pytest.mark.slow  # a subprocess imports torch, gradio, spaces and the app (~20 s)
if importlib.util.find_spec("spaces") is None:  # requirements-dev.txt installs it
    pytest.skip("the spaces package is not installed", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
ROW_TOL = 0.02

MODULE = """
import os
import sys

sys.path.insert(0, {root!r})
os.environ.update(SPACE_ID="someone/explorer", EXPLORER_PLUGINS="tests.tiny_models",
                  HF_HUB_OFFLINE="1", EXPLORER_CACHE_DIR={cache!r})

from explorer.core.gpu import import_spaces

assert import_spaces()  # before torch, as app.py does
import spaces

from explorer.models import embedders as embedders_module
from explorer.models import vae as vae_module
from explorer.spaces import unet as unet_module

LOADS = []


def counting(module, name):
    real = getattr(module, name)

    def load(spec, *args, **kwargs):
        LOADS.append(spec.name)
        return real(spec, *args, **kwargs)

    setattr(module, name, load)


counting(vae_module, "_load")
counting(embedders_module, "_load_embedder")
counting(unet_module, "_load")

from explorer.datasets import teaching_set
from explorer.spaces import embed, gpu_calls, gpu_work
from explorer.spaces.cache import EmbeddingCache

PRELOADED = gpu_work.preload()  # main thread, at import
AT_IMPORT = list(LOADS)
CACHE = EmbeddingCache({cache!r})
IMAGES = teaching_set().images[:24]


def preloaded():
    return {{"names": PRELOADED, "loads": AT_IMPORT}}


def embed_rows(space, n, chunk):
    gpu_calls.MAX_CHUNK_IMAGES = chunk
    return embed.embed(space, IMAGES[:n], cache=CACHE)


def text(model, sentence):
    return gpu_calls.text_rows(model, [sentence])


@spaces.GPU
def in_a_worker(space, n):
    rows = gpu_work.run(gpu_work.EmbedRows(space, tuple(IMAGES[:n])))
    return {{"loads": list(LOADS), "pid": os.getpid(), "rows": rows}}
"""


@pytest.fixture(scope="module")
def api():
    with DeviceAPI(gpus=2, placement="rotate") as device_api:
        yield device_api


@pytest.fixture(scope="module")
def zero(api, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("zerogpu-work")
    (tmp / "work_module.py").write_text(MODULE.format(root=str(ROOT), cache=str(tmp / "cache")))
    with Driver(tmp / "work_module.py", api, tmp / "run") as driver:
        yield driver


@pytest.fixture(scope="module")
def images():
    return datasets.teaching_set().images[:24]


def value(reply):
    assert reply.ok, dict(reply)
    return reply["value"]


def test_the_spaces_models_are_placed_on_cuda_once_at_import(zero):
    got = value(zero.call("preloaded"))
    want = [name for _, name in gpu_work.preloadable()]  # the same plugin models here
    assert got["names"] == want and len(want) >= 8
    assert got["loads"] == want  # each loaded once (the UNet space's VAE is one of them)


@pytest.mark.parametrize("space", ["vae:test-tiny", "clip:test-clip", "unet:test-tiny-unet"])
def test_a_worker_computes_without_loading_a_model(zero, api, images, space):
    before = value(zero.call("preloaded"))["loads"]
    api.fresh_next()  # a new worker, forked now
    out = value(zero.call("in_a_worker", space, 6))
    assert out["loads"] == before  # no model read in the worker
    want = embeddings.embed(space, images[:6])
    assert np.asarray(out["rows"]) == pytest.approx(want, abs=ROW_TOL)
    assert np.ptp(want) > 0


def test_only_uncached_images_are_sent_in_priced_chunks(zero, api, images, monkeypatch):
    monkeypatch.setattr(gpu_calls, "MAX_CHUNK_IMAGES", 8)  # as the call below sets it there
    start = len(api.requests("/schedule"))
    rows = np.asarray(value(zero.call("embed_rows", "clip:test-clip", 20, 8)))
    calls = api.requests("/schedule")[start:]
    sizes = gpu_calls.chunk_sizes(20, gpu_work.PER_IMAGE_S["clip"], gpu.FLOOR_S)
    assert sizes == [7, 7, 6]
    per = gpu_work.PER_IMAGE_S["clip"]
    assert [int(c["params"]["durationSeconds"]) for c in calls] == [
        gpu.seconds(gpu.FLOOR_S + s * per) for s in sizes
    ]  # preloaded: no load priced
    assert rows == pytest.approx(embeddings.embed("clip:test-clip", images[:20]), abs=ROW_TOL)

    start = len(api.requests("/schedule"))
    again = np.asarray(value(zero.call("embed_rows", "clip:test-clip", 20, 8)))
    assert len(api.requests("/schedule")) == start  # all cached: no GPU asked for
    np.testing.assert_array_equal(again, rows)
    more = np.asarray(value(zero.call("embed_rows", "clip:test-clip", 24, 8)))
    calls = api.requests("/schedule")[start:]
    assert len(calls) == 1  # the 4 new images only
    assert int(calls[0]["params"]["durationSeconds"]) == gpu.seconds(gpu.FLOOR_S + 4 * per)
    np.testing.assert_array_equal(more[:20], rows)


def test_a_jobs_error_keeps_its_sentence(zero):
    reply = zero.call("text", "test-dino", "a photo of a cat")
    assert not reply.ok and reply["type"] == "ExplorerError"
    assert "cannot embed text" in reply["message"]


def test_weights_packed_at_launch_reach_a_new_worker(zero, api, images):
    value(zero.call("__startup__"))  # what launch() does first: the weights go to pack files
    api.fresh_next()
    out = value(zero.call("in_a_worker", "dino:test-dino", 5))
    want = embeddings.embed("dino:test-dino", images[:5])
    assert np.asarray(out["rows"]) == pytest.approx(want, abs=ROW_TOL)
