"""Deployable as a Hugging Face Space: ZeroGPU's one GPU function, no CUDA at start, persistent
storage, the front matter.

The ZeroGPU test imports the real app.py as a Space would (``SPACE_ID``, ``SPACES_ZERO_GPU``) under
the real ``spaces`` package (tests/zerogpu.py: its CUDA emulation on this CPU-only torch, a
loopback device API), and reads what the package recorded: which functions it wraps, which
tensors were placed on "cuda". A stand-in ``spaces`` (below) only checks :func:`gpu.gpu`'s wiring.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from zerogpu import DeviceAPI, Driver

from explorer.core import gpu, settings
from explorer.models import registry

ROOT = Path(__file__).resolve().parents[1]

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
import os
import sys

sys.path.insert(0, {root!r})
os.chdir({root!r})
os.environ.update(SPACE_ID="someone/explorer", EXPLORER_PLUGINS="tests.tiny_models",
                  HF_HOME={hf_home!r}, HF_HUB_OFFLINE="1", EXPLORER_CACHE_DIR={cache!r})
for name in [n for n in os.environ if n.startswith("EXPLORER_") and n not in
             ("EXPLORER_PLUGINS", "EXPLORER_CACHE_DIR")]:
    del os.environ[name]

import explorer.analysis.projection

explorer.analysis.projection.warm_up_umap = lambda: None  # no background numba compile here

import app  # the Space's app_file, in this (main) thread: settings, spaces, demo, preload
import torch
from spaces.zero import decorator
from spaces.zero.torch import patching

from explorer.core import gpu, settings
from explorer.models import device, registry


def report():
    wrapped = [f"{{f.__module__}}.{{f.__name__}}" for f in decorator.decorated_cache]
    fns = [b.fn for b in app.demo.fns.values() if b.fn is not None]
    handlers = sorted({{f.__name__ for f in fns}})
    return {{
        "public": settings.get().public,
        "space_id": settings.get().space_id,
        "offloaded": gpu.offloaded(),
        "default_vae": registry.default_vae(),
        "wrapped": sorted(set(wrapped)),
        "handlers_wrapped": sorted({{f.__name__ for f in fns if hasattr(f, "zerogpu")}}),
        "handlers": handlers,
        "cuda_initialized": torch.cuda.is_initialized(),
        "on_cuda": len(patching.cuda_aliases),
        "preloaded": sorted(k[1] for k in device.PRELOADED),
        "in_model_cache": len(device.MODEL_CACHE),
    }}
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
def test_on_a_zerogpu_space_one_function_is_wrapped_and_the_models_wait_on_cuda(tmp_path):
    hf_home = tmp_path / "hf"
    # the full SD VAE looks cached (preload_from_hub), so choosing the default VAE asks about the
    # GPU; its weights are not there, so preloading it fails, and says so, without stopping
    _fake_cached_model(hf_home, registry.REGISTRY["sd-vae-ft-mse"].repo_id)
    module = tmp_path / "space_driver.py"
    module.write_text(
        DRIVER.format(root=str(ROOT), hf_home=str(hf_home), cache=str(tmp_path / "cache"))
    )
    with DeviceAPI(gpus=1) as api, Driver(module, api, tmp_path / "run") as driver:
        reply = driver.call("report")
    assert reply.ok, dict(reply)
    report = reply["value"]
    assert report["public"] is True and report["space_id"] == "someone/explorer"
    assert report["offloaded"] is True
    assert report["default_vae"] == "sd-vae-ft-mse"  # decided from SPACES_ZERO_GPU, not CUDA
    # the one GPU function; every handler runs in the main process
    assert report["wrapped"] == ["explorer.spaces.gpu_work._run"]
    assert report["handlers_wrapped"] == [] and "on_atlas_bundled" in report["handlers"]
    # the Space's models (here the plugin's tiny ones) wait on "cuda", not in the model cache
    assert report["cuda_initialized"] is False and report["on_cuda"] > 0
    assert {"test-tiny", "test-kl", "test-clip", "test-dino", "test-tiny-unet"} <= set(
        report["preloaded"]
    )
    assert "sd-vae-ft-mse" not in report["preloaded"] and report["in_model_cache"] == 0
    assert json.dumps(report)  # plain data


def test_gpu_returns_the_function_unchanged_without_spaces(monkeypatch):
    def handler(x):
        return x

    monkeypatch.delenv("SPACE_ID", raising=False)
    assert gpu.gpu(30)(handler) is handler and not gpu.enabled() and not gpu.zero_gpu()
    assert not gpu.offloaded()
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


ZEROGPU_PYTHONS = ("3.12.12", "3.10.13")
"""The Python versions ZeroGPU's documentation lists (hub-docs, docs/hub/spaces-zerogpu.md)."""


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, _, ver = line.partition("==")
            pins[name.strip().lower()] = ver.strip()
    return pins


def test_the_space_build_is_the_one_ci_tests():
    """Front matter and requirements that ZeroGPU and CPU Basic accept, by the installed packages'
    own metadata: the Python asked for is on ZeroGPU's list and inside ``spaces``' and Gradio's
    Requires-Python; the torch and ``spaces`` pinned are the ones installed here (CI runs them);
    the CPU requirements add PyTorch's CPU index to the same file, nothing else."""
    from importlib.metadata import metadata, version

    from packaging.specifiers import SpecifierSet

    block = (ROOT / "README.md").read_text().split("---\n", 2)[1]
    python = next(
        ln.partition(":")[2].strip().strip('"')
        for ln in block.splitlines()
        if ln.startswith("python_version:")
    )
    assert python in ZEROGPU_PYTHONS
    for package in ("spaces", "gradio"):
        assert python in SpecifierSet(metadata(package)["Requires-Python"]), package
    pins = _pins(ROOT / "requirements.txt")
    assert pins["torch"] == version("torch").split("+")[0]
    assert pins["spaces"] == version("spaces")
    assert _pins(ROOT / "requirements-dev.txt")["spaces"] == pins["spaces"]
    cpu = [
        ln
        for ln in (ROOT / "requirements-cpu.txt").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert cpu == ["--extra-index-url https://download.pytorch.org/whl/cpu", "-r requirements.txt"]
