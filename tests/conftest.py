"""Shared fixtures. Tests run with the tiny, seeded, randomly initialised models registered
(tests/tiny_models.py) and an empty Hugging Face cache of their own, so that what the app selects
by default is what a first run offline selects: the tiny models."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# Before huggingface_hub is imported (it reads these once): never the developer's cache.
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="explorer-tests-hf-")
atexit.register(shutil.rmtree, os.environ["HF_HOME"], True)
for _var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_DATASETS_CACHE", "TRANSFORMERS_CACHE"):
    os.environ.pop(_var, None)

from tests import tiny_models  # noqa: E402  (after the environment above)
from tests.helpers import ROOT, free_port  # noqa: E402

tiny_models.register()

TAEF2_DIR = ROOT.parent / "shared" / "weights" / "taef2"
TAEF2_REASON = (
    "real TAEF2 weights not found at ../shared/weights/taef2 (only present in the team's checkouts)"
)


@pytest.fixture(scope="session")
def taef2_dir() -> Path:
    if not (TAEF2_DIR / "taef2_encoder.pth").exists():
        pytest.skip(TAEF2_REASON)
    return TAEF2_DIR


@pytest.fixture(scope="session")
def examples() -> dict[str, Path]:
    from explorer.images import io as imaging

    return imaging.example_images()


@pytest.fixture(scope="session")
def astronaut(examples) -> Path:
    return examples["astronaut"]


@pytest.fixture
def no_models(monkeypatch):
    """A first run: nothing registered in code, an empty Hugging Face cache, no models folder."""
    from explorer.models import registry

    monkeypatch.setattr(registry, "_REGISTERED_VAES", {})
    monkeypatch.setattr(registry, "_REGISTERED_EMBEDDERS", {})
    monkeypatch.delenv("EXPLORER_MODELS_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def image64(astronaut):
    """The astronaut example prepared at 64x64: a (1, 3, 64, 64) float tensor in [0, 1]."""
    from explorer.images import io as imaging

    return imaging.to_tensor(imaging.prepare(imaging.load_image(astronaut), 64))


@pytest.fixture(scope="session")
def tiny_kl_folder(tmp_path_factory) -> Path:
    """A diffusers AutoencoderKL folder (config.json + safetensors) saved from the seeded test model."""
    folder = tmp_path_factory.mktemp("tiny-kl")
    tiny_models.build_vae(tiny_models.VAES["test-kl16"]).save_pretrained(folder)
    return folder


APP_FIXTURES = frozenset({"app_url", "client", "public_client", "public_url"})

HEAVY_FIRST = (
    "test_zerogpu_app.py",
    "test_browser.py",
    "test_ray.py",
    "test_classpack.py",
    "test_public_server.py",
    "test_projection.py",
    "test_browser_sweep.py",
    "test_bad_inputs.py",
    "test_cli.py",
    "test_public_fairshare.py",
    "test_registry.py",
    "test_space.py",
    "test_zerogpu_work.py",
    "test_browser_teacher.py",
    "test_gradio_cache_cap.py",
    "test_load.py",
)
"""The files that take longest (each 60-180 s of a 2-core run; the durations pytest prints), run
first: the workers take whole files in collection order (``--dist loadfile
--no-loadscope-reorder``) and a worker with two tests left already takes the next file, so a long
file left to the end makes one worker finish minutes after the other. A file not named here
keeps its place after them; the order changes no test's outcome."""


def pytest_collection_modifyitems(config, items):
    """A test that uses a launched app is an ``app`` test, whatever its module says, so
    ``-m "not app"`` never starts a server. The :data:`HEAVY_FIRST` files go first (stable: the
    tests inside a file keep their order)."""
    for item in items:
        if APP_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.app)
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """A Hugging Face cache of this test's own: ``add(repo_id, {path: bytes})`` puts files in it as
    ``hf_hub_download`` would have (a snapshot behind ``refs/main``); returns the snapshot folder."""
    import huggingface_hub

    root = tmp_path / "hf-cache"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(root))

    def add(repo_id: str, files: dict[str, bytes], commit: str = "0123456789abcdef") -> Path:
        repo = root / f"models--{repo_id.replace('/', '--')}"
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(commit)
        snapshot = repo / "snapshots" / commit
        for name, data in files.items():
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            (snapshot / name).write_bytes(data)
        return snapshot

    return add


@pytest.fixture(scope="session")
def app_url():
    """The real app, launched in this process with the tiny test models, on a free local port."""
    from explorer.ui.app import build_demo

    demo = build_demo()
    demo.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True
    )
    yield demo.local_url
    demo.close()


@pytest.fixture(scope="session")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)
