"""Deployable as a Hugging Face Space: ZeroGPU handlers, no CUDA at start, persistent storage.

The ZeroGPU test starts the real app.py in a subprocess as a Space would (``SPACE_ID``, ZeroGPU's
``SPACES_ZERO_GPU``), with a stand-in ``spaces`` package that records what ``spaces.GPU`` wrapped,
and with ``torch.cuda`` patched to record any call before the app is imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.core import gpu, settings
from explorer.core.settings import VARIABLES
from explorer.models import registry

ROOT = Path(__file__).resolve().parents[1]

LAB_HANDLERS = ["on_encode", "on_roundtrip", "on_generations", "on_compare", "on_interpolate"]
EXPECTED = {
    **dict.fromkeys([*LAB_HANDLERS, "on_edit"], gpu.LAB),
    **dict.fromkeys(["on_atlas_bundled", "on_atlas_upload", "on_atlas_hub"], gpu.ATLAS),
    "on_atlas_preset": gpu.ATLAS,
    "on_atlas_query_image": gpu.QUERY,
    "on_atlas_text": gpu.QUERY,
    "on_perturb": gpu.ATLAS,
    "_compute": 240,  # the UNet sweep's model work (ui.atlas.sweep.SWEEP_GPU_S)
    "on_atlas_sweep_open": gpu.ATLAS,
    **{f"lesson_{n}": gpu.LAB for n in range(1, 7)},
    "lesson_7": gpu.ATLAS,
}

STANDIN = '''
"""Stand-in for Hugging Face's `spaces` package: GPU records what it wraps."""
import functools, json, os


def GPU(fn=None, *, duration=60):
    def deco(f):
        with open(os.environ["SPACES_STANDIN_LOG"], "a") as out:
            out.write(json.dumps({"name": f.__name__, "module": f.__module__,
                                  "duration": getattr(duration, "__name__", duration)})
                      + "\\n")

        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            return f(*args, **kwargs)

        wrapper.gpu_duration = duration
        return wrapper

    return deco if fn is None else deco(fn)
'''

DRIVER = """
import json, sys
import torch

calls = []
for name in ("is_available", "init", "_lazy_init", "device_count", "current_device",
             "set_device", "get_device_properties", "synchronize", "empty_cache"):
    original = getattr(torch.cuda, name)

    def record(*args, _name=name, _original=original, **kwargs):
        calls.append(_name)
        return _original(*args, **kwargs)

    setattr(torch.cuda, name, record)

import explorer.analysis.projection
explorer.analysis.projection.warm_up_umap = lambda: None  # no background numba compile in a test

import app  # the Space's app_file: settings checked, demo built
from explorer.models import registry
from explorer.core import settings

handlers = {}
for block_fn in app.demo.fns.values():
    fn = getattr(block_fn, "fn", None)
    if fn is not None:
        handlers[fn.__name__] = getattr(fn, "gpu_duration", None)
report = {
    "public": settings.get().public,
    "space_id": settings.get().space_id,
    "default_vae": registry.default_vae(),
    "cuda_calls": calls,
    "cuda_initialized": torch.cuda.is_initialized(),
    "handlers": handlers,
}
with open(sys.argv[1], "w") as out:
    json.dump(report, out)
"""


def _fake_cached_model(hf_home: Path, repo_id: str) -> None:
    """Put a model's config in a Hugging Face cache as a download would (enough for is_cached)."""
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123456789abcdef")
    snapshot = repo / "snapshots" / "0123456789abcdef"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")


@pytest.mark.slow
def test_on_a_zerogpu_space_handlers_are_wrapped_and_cuda_is_untouched(tmp_path):
    (tmp_path / "spaces").mkdir()
    (tmp_path / "spaces" / "__init__.py").write_text(STANDIN)
    (tmp_path / "driver.py").write_text(DRIVER)
    hf_home = tmp_path / "hf"
    # the full SD VAE is cached (preload_from_hub), so choosing the default VAE asks about the GPU
    _fake_cached_model(hf_home, registry.REGISTRY["sd-vae-ft-mse"].repo_id)
    log, report_path = tmp_path / "wrapped.jsonl", tmp_path / "report.json"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {v.name for v in VARIABLES} and not k.startswith(("HF_", "SPACE"))
    }
    env.update(
        SPACE_ID="someone/explorer",
        SPACES_ZERO_GPU="true",
        SPACES_STANDIN_LOG=str(log),
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]),
        HF_HOME=str(hf_home),
        HF_HUB_OFFLINE="1",
        GRADIO_ANALYTICS_ENABLED="False",
    )
    done = subprocess.run(
        [sys.executable, str(tmp_path / "driver.py"), str(report_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(report_path.read_text())
    assert report["public"] is True and report["space_id"] == "someone/explorer"
    assert report["cuda_calls"] == [] and report["cuda_initialized"] is False
    assert report["default_vae"] == "sd-vae-ft-mse"  # decided from SPACES_ZERO_GPU, not CUDA
    wrapped = {}
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        wrapped[entry["name"]] = entry["duration"]
    assert wrapped == EXPECTED
    for name, duration in EXPECTED.items():  # what the demo runs is the wrapped function
        if name == "_compute":  # called by the sweep panel's handler, not wired to an event
            continue
        assert report["handlers"][name] == duration, name
    # CPU-side handlers are not wrapped (no GPU time asked for scanning or colouring)
    assert report["handlers"]["on_scan"] is None
    assert report["handlers"]["on_atlas_color"] is None


def test_gpu_returns_the_function_unchanged_without_spaces(monkeypatch):
    def handler(x):
        return x

    monkeypatch.delenv("SPACE_ID", raising=False)
    assert gpu.gpu(30)(handler) is handler and not gpu.enabled() and not gpu.zero_gpu()
    monkeypatch.setenv("SPACE_ID", "someone/explorer")
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setitem(sys.modules, "spaces", None)  # not installed: import raises ImportError
    assert gpu.gpu(lambda *a: 60)(handler) is handler and not gpu.zero_gpu()


def test_gpu_uses_spaces_on_a_space(monkeypatch, tmp_path):
    (tmp_path / "spaces").mkdir()
    (tmp_path / "spaces" / "__init__.py").write_text(STANDIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "spaces", None)
    del sys.modules["spaces"]
    monkeypatch.setenv("SPACES_STANDIN_LOG", str(tmp_path / "log.jsonl"))
    monkeypatch.setenv("SPACE_ID", "someone/explorer")

    def per_step(n):
        return 2 * n

    wrapped = gpu.gpu(per_step)(per_step)
    assert wrapped is not per_step and wrapped.gpu_duration is per_step and wrapped(3) == 6
    assert json.loads((tmp_path / "log.jsonl").read_text())["duration"] == "per_step"
    assert gpu.enabled() and not gpu.zero_gpu()  # a Space, but not on ZeroGPU hardware
    monkeypatch.setenv("SPACES_ZERO_GPU", "1")
    assert gpu.zero_gpu()


def test_persistent_storage_holds_the_caches(monkeypatch, tmp_path):
    data = tmp_path / "data"
    monkeypatch.setattr(settings, "DATA_DIR", data)
    for var in ("EXPLORER_CACHE_DIR", "HF_HOME"):
        monkeypatch.delenv(var, raising=False)
    # no /data: the usual places
    assert settings.persistent_dir() is None and settings.use_persistent_storage() is None
    assert settings.get().cache_dir == Path.home() / ".cache" / "latent-space-explorer"
    assert "HF_HOME" not in os.environ
    # /data mounted: both caches live there
    data.mkdir()
    assert settings.get().cache_dir == data / "latent-space-explorer"
    assert settings.use_persistent_storage() == data / ".huggingface"
    assert os.environ["HF_HOME"] == str(data / ".huggingface")
    # an explicit variable still wins
    monkeypatch.setenv("HF_HOME", str(tmp_path / "mine"))
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "embeddings"))
    assert settings.use_persistent_storage() is None
    assert os.environ["HF_HOME"] == str(tmp_path / "mine")
    assert settings.get().cache_dir == tmp_path / "embeddings"


def test_readme_front_matter_matches_the_app():
    """The YAML block Spaces reads: first thing in README.md, agreeing with the code."""
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n")
    block = text.split("---\n", 2)[1]
    meta = {}
    for line in block.splitlines():
        if line and not line.startswith((" ", "-")) and ":" in line:
            key, _, value = line.partition(":")
            meta[key.strip()] = value.strip().strip('"')
    from importlib.metadata import version

    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert meta["sdk_version"] == version("gradio")
    assert f"gradio=={meta['sdk_version']}" in (ROOT / "requirements.txt").read_text()
    assert len(meta["short_description"]) <= 60
    defaults = [
        *(registry.REGISTRY[n].repo_id for n in ("taesd", "sd-vae-ft-mse")),
        *(registry.EMBEDDERS[n].repo_id for n in registry.default_embedders()),
    ]
    from explorer.ui.atlas.handlers import PRESETS

    for repo_id in defaults + [d for d, _ in PRESETS.values()]:
        assert f"  - {repo_id}\n" in block, repo_id
    assert block.count("preload_from_hub:") == 1
