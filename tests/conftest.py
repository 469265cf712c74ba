"""Shared fixtures. Tests run with the tiny, seeded, randomly initialised models enabled."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("EXPLORER_TEST_MODELS", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parents[1]
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
    from explorer import imaging

    return imaging.example_images()


@pytest.fixture(scope="session")
def astronaut(examples) -> Path:
    return examples["astronaut"]


@pytest.fixture(scope="session")
def tiny_kl_folder(tmp_path_factory) -> Path:
    """A diffusers AutoencoderKL folder (config.json + safetensors) saved from the seeded test model."""
    from explorer.models import TEST_MODELS, _build_test_module

    folder = tmp_path_factory.mktemp("tiny-kl")
    _build_test_module(TEST_MODELS["test-kl16"]).save_pretrained(folder)
    return folder


APP_FIXTURES = frozenset({"app_url", "client", "public_client", "public_url"})


def pytest_collection_modifyitems(config, items):
    """A test that uses a launched app is an ``app`` test, whatever its module says, so
    ``-m "not app"`` never starts a server."""
    for item in items:
        if APP_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.app)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_url():
    """The real app, launched in this process with the tiny test models, on a free local port."""
    from explorer.ui import build_demo

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
