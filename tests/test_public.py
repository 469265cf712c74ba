"""Public mode (a Hugging Face Space, a classroom): one test per rule, against a launched app."""

from __future__ import annotations

import io
import os
import pickle
import shutil
import zipfile

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from explorer import datasets
from explorer.core import public
from explorer.core.errors import ModelUnavailableError
from explorer.images import io as imaging
from explorer.models import checkpoints
from tests.helpers import ROOT, free_port

pytestmark = pytest.mark.app
SPACES = ["VAE", "CLIP", "DINOv2"]
# Gradio's own check of a closed dropdown answers first; the handlers check again (see below)
REFUSED = r"only runs the models in its list|is not in the list of choices"


@pytest.fixture(scope="module")
def public_client(request):
    """A second app, built and launched with EXPLORER_PUBLIC=1 (the rules are read per request)."""
    from explorer.ui.app import build_demo, launch_kwargs

    old = {k: os.environ.get(k) for k in ("EXPLORER_PUBLIC", "EXPLORER_MAX_FILE_MB")}
    os.environ["EXPLORER_PUBLIC"] = "1"
    os.environ["EXPLORER_MAX_FILE_MB"] = "1"
    demo = build_demo()
    demo.launch(
        server_name="127.0.0.1",
        server_port=free_port(),
        prevent_thread_lock=True,
        quiet=True,
        **launch_kwargs(),
    )
    yield Client(demo.local_url, verbose=False)
    demo.close()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_on_where_space_id_is_set_and_off_by_flag(monkeypatch):
    monkeypatch.delenv("EXPLORER_PUBLIC", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert not public.public_mode()
    monkeypatch.setenv("SPACE_ID", "someone/latent-explorer")
    assert public.public_mode()
    monkeypatch.setenv("EXPLORER_PUBLIC", "0")
    assert not public.public_mode()


def test_limits_are_smaller_in_public_mode(monkeypatch):
    for var in (
        "EXPLORER_MAX_PIXELS",
        "EXPLORER_MAX_FILE_MB",
        "EXPLORER_MAX_SET_IMAGES",
        "EXPLORER_MAX_ZIP_MB",
        "EXPLORER_MAX_RESOLUTION",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("EXPLORER_PUBLIC", "0")
    private = (
        imaging.max_pixels(),
        imaging.max_file_bytes(),
        datasets.max_set_images(),
        datasets.max_zip_bytes(),
        public.max_resolution(),
    )
    monkeypatch.setenv("EXPLORER_PUBLIC", "1")
    smaller = (
        imaging.max_pixels(),
        imaging.max_file_bytes(),
        datasets.max_set_images(),
        datasets.max_zip_bytes(),
        public.max_resolution(),
    )
    assert smaller == (16_000_000, 20 * 1024**2, 1_000, 500 * 1024**2, 512)
    assert all(p < q for p, q in zip(smaller, private, strict=True))
    monkeypatch.setenv("EXPLORER_MAX_SET_IMAGES", "5000")  # an operator's explicit choice wins
    assert datasets.max_set_images() == 5000


def test_hub_ids_and_paths_are_refused_as_models(public_client, astronaut):
    for ref in ("someone/some-vae", str(ROOT.parent / "shared" / "weights" / "taef2")):
        with pytest.raises(AppError, match=REFUSED):
            public_client.predict(
                handle_file(astronaut), ref, 256, "square", "", "shared", api_name="/encode"
            )
    summary, *_ = public_client.predict(
        handle_file(astronaut), "test-tiny", 64, "square", "", "shared", api_name="/encode"
    )
    assert "4×8×8" in summary  # registry models still work


def test_embedders_outside_the_registry_are_refused(public_client):
    with pytest.raises(AppError, match=REFUSED):
        public_client.predict(
            SPACES,
            "test-tiny",
            "someone/clip-clone",
            "test-dino",
            "test-vit",
            "pca",
            "",
            api_name="/atlas_bundled",
        )


def test_handlers_enforce_the_rules_themselves(monkeypatch, astronaut):
    """Defence in depth: the handlers refuse even where no dropdown stands in front of them."""
    import gradio as gr

    from explorer.ui.atlas import handlers as atlas_tab
    from explorer.ui.lab import handlers as lab

    monkeypatch.setenv("EXPLORER_PUBLIC", "1")
    with pytest.raises(gr.Error, match="only runs the models in its list"):
        lab.on_encode(str(astronaut), "someone/some-vae", 256, "square", "", "shared")
    with pytest.raises(gr.Error, match="512 px at most"):
        lab.on_roundtrip(str(astronaut), "test-tiny", 1024, "square", "", "mean", 0)
    with pytest.raises(gr.Error, match="only runs the models in its list"):
        lab.on_compare(str(astronaut), "test-tiny", "/tmp/some/vae", 64, "square", "")
    with pytest.raises(gr.Error, match="only runs the models in its list"):
        atlas_tab.on_atlas_bundled(
            SPACES, "test-tiny", "someone/clip", "test-dino", "test-vit", "pca", ""
        )
    monkeypatch.setenv("EXPLORER_PUBLIC", "0")
    summary, *_ = lab.on_encode(str(astronaut), "test-tiny", 64, "square", "", "shared")
    assert "4×8×8" in summary


def test_server_folders_are_never_read(public_client, astronaut, tmp_path):
    with pytest.raises(AppError, match="does not read folders"):
        public_client.predict(
            handle_file(astronaut),
            "test-tiny",
            64,
            "square",
            str(tmp_path),
            "shared",
            api_name="/encode",
        )
    with pytest.raises(AppError, match="does not read folders"):
        public_client.predict(str(tmp_path), "test-tiny", api_name="/scan_models")
    with pytest.raises(AppError, match="does not read folders"):
        public_client.predict(str(tmp_path), "pca", api_name="/atlas_saved")


def test_resolution_is_capped(public_client, astronaut):
    with pytest.raises(
        AppError, match=r"512 px at most|not in the list of choices: \[64, 128, 256, 384, 512\]"
    ):
        public_client.predict(
            handle_file(astronaut), "test-tiny", 768, "square", "", "shared", api_name="/encode"
        )


def test_upload_size_is_capped(public_client, tmp_path):
    big = tmp_path / "big.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (800, 800, 3), dtype=np.uint8)).save(big)  # ~1.9 MB
    assert big.stat().st_size > 1024**2
    with pytest.raises(Exception, match=r"(?i)(too large|exceeds|maximum|file size)"):
        public_client.predict(
            handle_file(big), "test-tiny", 64, "square", "", "shared", api_name="/encode"
        )


def test_image_count_is_capped(public_client, tmp_path):
    buf = io.BytesIO()
    png = io.BytesIO()
    Image.new("RGB", (2, 2)).save(png, "PNG")
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(1001):
            z.writestr(f"{'ab'[i % 2]}/{i}.png", png.getvalue())
    path = tmp_path / "many.zip"
    path.write_bytes(buf.getvalue())
    with pytest.raises(AppError, match=r"1,000|1000"):
        public_client.predict(
            [handle_file(path)],
            SPACES,
            "test-tiny",
            "test-clip",
            "test-dino",
            "test-vit",
            "pca",
            "",
            api_name="/atlas_upload",
        )


def test_the_public_ui_hides_server_paths(public_client):
    cfg = public_client.config
    labels = {c.get("props", {}).get("label") for c in cfg["components"]}
    hidden = {
        c["props"]["label"]
        for c in cfg["components"]
        if c.get("props", {}).get("visible") is False and c["props"].get("label")
    }
    assert "Models folder" in labels  # present in the layout, inside a hidden accordion
    assert {"Local checkpoints (TAESD family)", "A saved atlas folder"} <= hidden
    dropdowns = [c["props"] for c in cfg["components"] if c.get("type") == "dropdown"]
    assert dropdowns and not any(d.get("allow_custom_value") for d in dropdowns)


def test_model_folders_never_run_their_own_code(tmp_path, tiny_kl_folder):
    """A model folder that asks for its own Python code (``auto_map``) is loaded with the
    library's classes: its code is never imported, and no loader is asked to trust remote code."""
    import json

    import diffusers
    import transformers as tf

    from explorer.models import embedders
    from explorer.models.vae import load_vae

    marker = tmp_path / "remote-code-ran"
    clip = embedders.load_embedder("test-clip")
    folder = tmp_path / "clip-with-code"
    clip.model.save_pretrained(folder)
    clip.processor.save_pretrained(folder)
    clip.tokenizer.save_pretrained(folder)
    (folder / "evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel\n"
        "class EvilConfig(CLIPConfig): pass\n"
        "class EvilModel(CLIPModel): pass\n"
        "class EvilProcessor(CLIPImageProcessor): pass\n"
    )
    for name, auto_map in (
        ("config.json", {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}),
        ("preprocessor_config.json", {"AutoImageProcessor": "evil.EvilProcessor"}),
    ):
        cfg = json.loads((folder / name).read_text())
        (folder / name).write_text(json.dumps({**cfg, "auto_map": auto_map}))
    vae_folder = tmp_path / "vae-with-code"
    shutil.copytree(tiny_kl_folder, vae_folder)
    cfg = json.loads((vae_folder / "config.json").read_text())
    (vae_folder / "config.json").write_text(
        json.dumps({**cfg, "auto_map": {"AutoModel": "evil.E"}})
    )
    shutil.copy(folder / "evil.py", vae_folder / "evil.py")

    calls: list[tuple[str, dict]] = []
    loaders = [
        tf.AutoImageProcessor,
        tf.CLIPModel,
        tf.CLIPTokenizer,
        diffusers.AutoencoderKL,
    ]

    def spy(cls):
        real = cls.from_pretrained

        def from_pretrained(*args, **kwargs):
            calls.append((cls.__name__, kwargs))
            return real(*args, **kwargs)

        return from_pretrained

    with pytest.MonkeyPatch.context() as mp:
        for cls in loaders:
            mp.setattr(cls, "from_pretrained", spy(cls))
        embedder = embedders.load_embedder(str(folder))
        vae = load_vae(str(vae_folder))

    assert type(embedder.model) is tf.CLIPModel
    assert type(embedder.processor).__name__.startswith("CLIPImageProcessor")
    assert type(vae.module) is diffusers.AutoencoderKL
    assert not marker.exists(), "a model folder's own code was run"
    assert {name for name, _ in calls} == {cls.__name__ for cls in loaders}
    asked = [(name, kw) for name, kw in calls if kw.get("trust_remote_code")]
    assert asked == []


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoints_are_loaded_weights_only(tmp_path):
    """A pickle that runs code on load is refused, and its code never runs."""
    marker = tmp_path / "pwned"
    evil = _Evil()
    evil.marker = marker
    path = tmp_path / "evil_encoder.pth"
    with open(path, "wb") as fh:
        pickle.dump({"0.weight": evil}, fh)
    with pytest.raises(ModelUnavailableError):
        checkpoints.read_state_dict(path)
    assert not marker.exists()


def test_diffusers_folders_need_safetensors(tmp_path):
    """A VAE folder with only pickled (.bin) weights is refused with a clear message."""
    from explorer.models.vae import load_vae
    from tests import tiny_models

    module = tiny_models.build_vae(tiny_models.VAES["test-kl"])
    module.save_pretrained(tmp_path / "binvae", safe_serialization=False)
    assert not list((tmp_path / "binvae").glob("*.safetensors"))
    with pytest.raises(ModelUnavailableError, match=r"(?i)safetensors"):
        load_vae(str(tmp_path / "binvae"))


def test_empty_folder_and_no_spaces_are_refused(public_client):
    with pytest.raises(AppError, match="folder"):
        public_client.predict("", "pca", api_name="/atlas_saved")
    with pytest.raises(AppError, match="Tick at least one space"):
        public_client.predict(
            [],
            "test-tiny",
            "test-clip",
            "test-dino",
            "test-vit",
            "pca",
            "",
            api_name="/atlas_bundled",
        )
