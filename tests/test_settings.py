"""One parser for every EXPLORER_* variable: good values parse, bad ones stop with one sentence."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.core import settings
from explorer.core.settings import VARIABLES, SettingsError

ROOT = Path(__file__).resolve().parents[1]
BAD = {  # one bad value for each kind of variable, with the accepted form the message must name
    "EXPLORER_MAX_MODELS": ("four", "a whole number of at least 1"),
    "EXPLORER_QUEUE_SIZE": ("0", "a whole number of at least 1"),
    "EXPLORER_MAX_FILE_MB": ("-3", "a positive number"),
    "EXPLORER_TMP_MAX_AGE_S": ("x", "a positive number"),
    "EXPLORER_CACHE_MAX_MB": ("nan", "a positive number"),
    "EXPLORER_MAX_RESOLUTION": ("32", "a whole number of pixels of at least 64"),
    "EXPLORER_PUBLIC": ("maybe", "1 or 0"),
    "EXPLORER_DISPLAY_MAX_POINTS": ("0", "a whole number of at least 1"),
    "EXPLORER_PLUGINS": ("my-models", "comma-separated importable module names"),
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in VARIABLES:
        monkeypatch.delenv(var.name, raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)


def test_defaults_and_explicit_values(monkeypatch, tmp_path):
    s = settings.get()
    assert (s.public, s.max_models, s.max_pixels, s.max_resolution) == (False, 4, 40_000_000, 1024)
    assert s.cache_dir == Path.home() / ".cache" / "latent-space-explorer"
    assert s.models_dir is None and s.default_vae is None and s.plugins == ()
    monkeypatch.setenv("EXPLORER_MAX_MODELS", " 7 ")
    monkeypatch.setenv("EXPLORER_MAX_FILE_MB", "0.5")
    monkeypatch.setenv("EXPLORER_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("EXPLORER_DEFAULT_VAE", "taesd")
    monkeypatch.setenv("EXPLORER_PLUGINS", " my_models, tests.tiny_models ,")
    s = settings.get()
    assert s.plugins == ("my_models", "tests.tiny_models")
    assert (s.max_models, s.max_file_bytes, s.models_dir, s.default_vae) == (
        7,
        512 * 1024,
        tmp_path,
        "taesd",
    )


def test_every_variable_has_a_field_and_a_form():
    fields = set(settings.Settings.__dataclass_fields__)
    assert {v.field for v in VARIABLES} <= fields
    for var in VARIABLES:
        assert var.name.startswith("EXPLORER_") and var.form


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_value_is_one_sentence_naming_variable_value_and_form(monkeypatch, name):
    value, form = BAD[name]
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        settings.get()
    message = str(info.value)
    assert f"{name}={value!r}" in message and form in message
    assert "\n" not in message and "Traceback" not in message


def test_public_mode_from_space_id_and_flag(monkeypatch):
    monkeypatch.setenv("SPACE_ID", "someone/explorer")
    assert settings.get().public
    assert settings.get().max_pixels == 16_000_000 and settings.get().tmp_max_mb == 256
    monkeypatch.setenv("EXPLORER_PUBLIC", "off")
    assert not settings.get().public and settings.get().max_pixels == 40_000_000
    monkeypatch.delenv("SPACE_ID")
    monkeypatch.setenv("EXPLORER_PUBLIC", "yes")
    assert settings.get().public
    monkeypatch.setenv("EXPLORER_MAX_PIXELS", "20000000")  # the operator's explicit value wins
    assert settings.get().max_pixels == 20_000_000


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("EXPLORER_")}
    full.update(env)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_cli_stops_with_one_sentence():
    done = _run(["-m", "explorer", "models"], EXPLORER_MAX_MODELS="four")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "EXPLORER_MAX_MODELS='four'" in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""


@pytest.mark.slow
def test_app_stops_at_start_with_one_sentence():
    done = _run(["app.py"], EXPLORER_TMP_MAX_AGE_S="soon", GRADIO_SERVER_PORT="1")
    assert done.returncode == 2
    assert "EXPLORER_TMP_MAX_AGE_S='soon'" in done.stderr and "Traceback" not in done.stderr


def test_the_per_visitor_limits_and_where_a_proxy_is_assumed(monkeypatch):
    s = settings.get()
    assert (s.proxy_hops, s.visitor_requests, s.session_requests) == (0, 32, 4)
    assert s.visitor_cpu_s == 60.0 * (os.cpu_count() or 1) and s.known_addresses == ()
    monkeypatch.setenv("SPACE_ID", "someone/explorer")  # a Space: one proxy in front
    assert settings.get().proxy_hops == 1
    monkeypatch.setenv("EXPLORER_PROXY_HOPS", "0")
    assert settings.get().proxy_hops == 0
    monkeypatch.setenv("EXPLORER_KNOWN_ADDRESSES", "192.0.2.10=8, 198.51.100.0/24")
    known = settings.get().known_addresses
    assert [(k.network, k.factor) for k in known] == [("192.0.2.10", 8.0), ("198.51.100.0/24", 4.0)]


def test_a_bad_known_address_or_a_cap_that_fills_the_queue_stops_start_up(monkeypatch):
    monkeypatch.setenv("EXPLORER_KNOWN_ADDRESSES", "school.example")
    with pytest.raises(SettingsError, match=r"EXPLORER_KNOWN_ADDRESSES='school\.example'"):
        settings.get()
    monkeypatch.delenv("EXPLORER_KNOWN_ADDRESSES")
    monkeypatch.setenv("EXPLORER_PUBLIC", "1")
    monkeypatch.setenv("EXPLORER_VISITOR_REQUESTS", "64")
    with pytest.raises(SettingsError, match="fill the whole queue"):
        settings.check()
    monkeypatch.setenv("EXPLORER_VISITOR_REQUESTS", "16")
    assert settings.check().visitor_requests == 16
