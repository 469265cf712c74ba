"""explorer.models.registry: names -> specs, models registered in code (plugins), and which model is
selected by default: the first one usable now, on this machine, offline.

What is "in the Hugging Face cache" is decided by a cache folder of the test's own (the
``hf_cache`` fixture), never by mocking the functions under test.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch

from explorer.core.errors import ExplorerError, UnknownModelError
from explorer.models import registry
from explorer.models.registry import (
    REGISTRY,
    VAESpec,
    available_embedders,
    available_models,
    default_embedder,
    default_vae,
    is_usable,
    register_vae,
    resolve,
)
from tests import tiny_models
from tests.helpers import run_python

CONFIG = json.dumps({"_class_name": "AutoencoderKL"}).encode()


@pytest.fixture
def no_settings(monkeypatch):
    for var in ("EXPLORER_DEFAULT_VAE", "EXPLORER_MODELS_DIR", "EXPLORER_PLUGINS"):
        monkeypatch.delenv(var, raising=False)


# --------------------------------------------------------------------------- names


def test_available_models_lists_the_registry_then_registered_models():
    names = available_models()
    assert names[: len(REGISTRY)] == list(REGISTRY)
    assert names[len(REGISTRY) :] == list(tiny_models.VAES)  # conftest registers them
    assert len(names) == len(set(names))
    for n in REGISTRY:
        assert resolve(n) is REGISTRY[n]
    for n, spec in tiny_models.VAES.items():
        assert resolve(n) == spec and resolve(n).source == "registered by tests.tiny_models"


def test_unknown_model_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "nope" must not be a path that exists
    with pytest.raises(UnknownModelError) as err:
        resolve("nope")
    msg = str(err.value)
    assert isinstance(err.value, ExplorerError)
    assert "'nope'" in msg
    for name in available_models():
        assert name in msg
    assert "Hub id" in msg and "local checkpoint" in msg
    with pytest.raises(UnknownModelError):
        resolve("")


def test_registry_imports_no_torch_and_lists_nothing_unregistered():
    """Without a plugin: the registry alone, no torch, no test model anywhere, and the defaults
    are the registry's own (nothing is cached)."""
    run = run_python(
        """
        import sys
        from explorer.models import registry
        from explorer.core.errors import UnknownModelError

        assert registry.available_models() == list(registry.REGISTRY)
        assert registry.available_embedders() == list(registry.EMBEDDERS)
        for name in ("test-kl", "test-kl16", "test-tiny", "test-clip"):
            try:
                registry.resolve(name)
            except UnknownModelError as exc:
                assert name not in str(exc).split("Choose one of:", 1)[1]
            else:
                raise AssertionError(name)
        for name in ("test-clip", "test-dino", "test-vit"):
            try:
                registry.resolve_embedder(name)
            except UnknownModelError:
                pass
            else:
                raise AssertionError(name)
        assert registry.default_vae() == "taesd" and not registry.is_usable("taesd")
        assert [registry.default_embedder(f) for f in ("clip", "dino", "vit")] == [
            "clip-vit-b32", "dinov2-small", "vit-b16"]
        assert "torch" not in sys.modules, "the registry imported torch"
        print("ok")
        """
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]


@pytest.mark.slow
def test_a_plugin_in_explorer_plugins_registers_its_models():
    run = run_python(
        """
        from explorer.models import registry
        from tests import tiny_models

        assert registry.resolve("test-kl") == tiny_models.VAES["test-kl"]
        assert registry.resolve("test-kl").build is not None
        assert registry.available_models()[len(registry.REGISTRY):] == list(tiny_models.VAES)
        assert registry.available_embedders("dino") == ["dinov2-small", "dinov2-base", "test-dino"]
        assert registry.default_vae() == "test-tiny" and registry.default_embedder("vit") == "test-vit"
        print("ok")
        """,
        EXPLORER_PLUGINS="tests.tiny_models",
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]


@pytest.mark.slow
def test_your_own_plugin_through_the_command_line(tmp_path, astronaut):
    """The documented way to add a model: a module on the path, named in EXPLORER_PLUGINS."""
    (tmp_path / "my_vaes.py").write_text(
        textwrap.dedent(
            """
            import torch

            from explorer.models.registry import VAESpec, register_vae
            from explorer.models.taesd import TAEVariant, TinyAutoencoder


            def build():
                torch.manual_seed(1)
                return TinyAutoencoder(TAEVariant(latent_channels=4, pool=False, width=8))


            def register():
                register_vae(VAESpec("my-tiny", "tiny", description="My own TAESD."), build)
            """
        )
    )
    env = {"EXPLORER_PLUGINS": "my_vaes", "PYTHONPATH": str(tmp_path)}
    listing = run_python("from explorer.cli import main; raise SystemExit(main(['models']))", **env)
    assert listing.returncode == 0, listing.stderr[-3000:]
    line = next(ln for ln in listing.stdout.splitlines() if ln.split()[:1] == ["my-tiny"])
    assert "registered by my_vaes" in line and "My own TAESD." in line
    out = tmp_path / "r.png"
    roundtrip = run_python(  # no --model: the default is the one model usable offline
        f"from explorer.cli import main; raise SystemExit(main(['roundtrip', {str(astronaut)!r},"
        f" '--resolution', '64', '--out', {str(out)!r}]))",
        **env,
    )
    assert roundtrip.returncode == 0, roundtrip.stderr[-3000:]
    assert "model my-tiny" in roundtrip.stderr and out.is_file()
    broken = run_python(
        "from explorer.cli import main; raise SystemExit(main(['models']))",
        EXPLORER_PLUGINS="no_such_module_here",
    )
    assert broken.returncode == 2
    err = broken.stderr.strip()
    assert err.startswith("error: EXPLORER_PLUGINS names 'no_such_module_here'") and "\n" not in err


def test_registering_refuses_taken_names_and_is_idempotent():
    before = available_models()
    tiny_models.register()  # the same specs and builds again: nothing changes
    assert available_models() == before
    build = tiny_models.VAES["test-kl"]  # any callable
    with pytest.raises(ValueError, match="taken"):
        register_vae(VAESpec("taesd", "tiny"), lambda: build)
    with pytest.raises(ValueError, match="taken"):
        register_vae(tiny_models.VAES["test-kl"], lambda: build)  # another build, same name
    with pytest.raises(ValueError, match="taken"):
        register_vae(VAESpec("local:mine", "tiny"), lambda: build)
    with pytest.raises(ValueError, match="kind"):
        register_vae(VAESpec("mine", "taesd-local"), lambda: build)
    assert available_models() == before


# --------------------------------------------------------------------------- defaults


def _pair(folder: Path, prefix: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for half in ("encoder", "decoder"):
        (folder / f"{prefix}_{half}.pth").write_bytes(b"")
    return folder


def test_default_vae_is_the_first_usable_now(tmp_path, hf_cache, monkeypatch, no_settings):
    folder = _pair(tmp_path / "vae_approx", "taef2")
    # nothing cached, no models folder: the first registered model (tests: the tiny ones)
    assert default_vae() == "test-tiny"
    # a local checkpoint beats a registered model
    assert default_vae(folder) == "local:taef2"
    monkeypatch.setenv("EXPLORER_MODELS_DIR", str(folder))
    assert default_vae() == "local:taef2"
    # taesd in the cache beats a local checkpoint; sd-vae-ft-mse only counts on CUDA
    hf_cache("stabilityai/sd-vae-ft-mse", {"config.json": CONFIG})
    assert default_vae() == "local:taef2"  # on a CPU
    hf_cache("madebyollin/taesd", {"config.json": CONFIG})
    assert default_vae() == "taesd"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_vae() == "sd-vae-ft-mse"
    # the operator's choice wins, usable or not
    monkeypatch.setenv("EXPLORER_DEFAULT_VAE", "flux1-vae")
    assert default_vae() == "flux1-vae"


def test_sd_vae_on_cuda_needs_to_be_cached(hf_cache, monkeypatch, no_settings):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_vae() == "test-tiny"  # not sd-vae-ft-mse: it would need a download
    hf_cache("madebyollin/taesd", {"config.json": CONFIG})
    assert default_vae() == "taesd"


def test_default_embedder_is_the_cached_default_else_a_registered_one(hf_cache, no_settings):
    assert [default_embedder(f) for f in ("clip", "dino", "vit")] == [
        "test-clip",
        "test-dino",
        "test-vit",
    ]
    hf_cache("facebook/dinov2-small", {"config.json": b"{}"})
    hf_cache("facebook/dinov2-base", {"config.json": b"{}"})  # not the default: no effect
    assert default_embedder("dino") == "dinov2-small"
    assert default_embedder("clip") == "test-clip"
    with pytest.raises(UnknownModelError, match="family"):
        default_embedder("siglip")


def test_is_usable(tmp_path, hf_cache, tiny_kl_folder, no_settings):
    folder = _pair(tmp_path / "vae_approx", "taesd")
    assert is_usable("test-kl") and is_usable(" test-dino ")
    assert is_usable("local:taesd", folder) and not is_usable("local:taesd")
    assert is_usable(str(tiny_kl_folder)) and is_usable(str(folder / "taesd_encoder.pth"))
    for name in ("taesd", "clip-vit-b32", "someone/some-vae", "nope", ""):
        assert not is_usable(name), name
    hf_cache("madebyollin/taesd", {"config.json": CONFIG})
    hf_cache("openai/clip-vit-base-patch32", {"config.json": b"{}"})
    hf_cache("someone/some-vae", {"config.json": CONFIG})
    assert is_usable("taesd") and is_usable("clip-vit-b32") and is_usable("someone/some-vae")
    assert not is_usable("taesdxl")
    assert registry.DOWNLOAD_HINT.startswith("Run `python -m explorer download`")
    assert available_embedders("clip")[-1] == "test-clip"
