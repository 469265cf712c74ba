"""Class packs: the manifest's checks (explorer.core.pack), the read-only layers under the
embedding and playground caches, the model choice, the stand-in Hub against huggingface_hub's
own download code, and the round trip: a pack built with the Hub reachable through a loopback
stand-in serving the tiny test models under the real repos' names, then opened by the app with
the Hub unreachable (HF_HUB_OFFLINE=1 and HF_ENDPOINT at a closed port)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.core import pack
from explorer.spaces.cache import EmbeddingCache
from tests import tiny_models
from tests.conftest import ROOT, free_port
from tests.helpers import atlas_of
from tests.hub_standin import StandInHub


def _pack_folder(root: Path) -> Path:
    (root / "hub" / "models--a--b" / "snapshots" / "c0ffee").mkdir(parents=True)
    (root / "hub" / "models--a--b" / "snapshots" / "c0ffee" / "config.json").write_text("{}")
    (root / "embeddings").mkdir()
    (root / "embeddings" / "rows.vec").write_bytes(bytes(range(256)))
    pack.write_manifest(root, {"sets": [{"name": "bundled", "source": "bundled", "path": None}]})
    return root


# --------------------------------------------------------------------------- the manifest


def test_a_pack_verifies_and_lists_every_file_with_its_hash(tmp_path):
    root = _pack_folder(tmp_path / "p")
    found = pack.verify(root)
    files = found.manifest["files"]
    assert set(files) == {"hub/models--a--b/snapshots/c0ffee/config.json", "embeddings/rows.vec"}
    import hashlib

    assert files["embeddings/rows.vec"] == hashlib.sha256(bytes(range(256))).hexdigest()
    assert found.manifest["app_version"] == pack.app_version()
    assert found.manifest["size_bytes"] == 2 + 256
    (root / ".DS_Store").write_bytes(b"litter")  # what a copy to a Mac adds is not a change
    pack.verify(root)


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda r: (r / "embeddings" / "rows.vec").write_bytes(b"x" * 256), "changed since"),
        (lambda r: (r / "embeddings" / "rows.vec").unlink(), "missing: embeddings/rows.vec"),
        (lambda r: (r / "hub" / "extra.bin").write_bytes(b"1"), "not written by its maker"),
        (lambda r: (r / "link").symlink_to(r / "embeddings" / "rows.vec"), "link"),
    ],
    ids=["changed", "missing", "added", "link"],
)
def test_a_pack_with_a_file_changed_is_refused_with_a_sentence(tmp_path, change, words):
    root = _pack_folder(tmp_path / "p")
    change(root)
    with pytest.raises(pack.PackError, match=words) as info:
        pack.verify(root)
    assert "Copy the pack again" in str(info.value) and "classpack" in str(info.value)


def test_a_pack_from_another_version_or_with_an_edited_manifest_is_refused(tmp_path, monkeypatch):
    root = tmp_path / "p"
    with monkeypatch.context() as m:
        m.setattr(pack, "app_version", lambda: "0.0.1-elsewhere")
        _pack_folder(root)
    with pytest.raises(pack.PackError) as info:
        pack.verify(root)
    assert "made by Latent Space Explorer 0.0.1-elsewhere" in str(info.value)
    assert f"this is version {pack.app_version()}" in str(info.value)

    other = _pack_folder(tmp_path / "q")
    manifest = json.loads((other / pack.MANIFEST).read_text())
    manifest["sets"][0]["name"] = "renamed"
    (other / pack.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(pack.PackError, match="was changed after the pack was made"):
        pack.verify(other)


def test_a_folder_that_is_not_a_pack_is_refused(tmp_path):
    with pytest.raises(pack.PackError, match=r"no manifest\.json"):
        pack.verify(tmp_path)
    with pytest.raises(pack.PackError, match="is not a folder"):
        pack.verify(tmp_path / "nowhere")


def test_activate_points_huggingface_hub_at_the_pack_offline(tmp_path, monkeypatch):
    import huggingface_hub

    root = _pack_folder(tmp_path / "p")
    for var in ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        # recorded first, so that what activate() sets is undone after the test even for a
        # variable that was not set (delenv alone records nothing then)
        monkeypatch.setenv(var, os.environ.get(var, ""))
        monkeypatch.delenv(var)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", "/elsewhere")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    found = pack.activate(root)
    assert os.environ["HF_HUB_CACHE"] == str(found.hub) == huggingface_hub.constants.HF_HUB_CACHE
    assert os.environ["HF_HUB_OFFLINE"] == "1" and huggingface_hub.constants.HF_HUB_OFFLINE
    monkeypatch.setenv("HF_HUB_OFFLINE", "")
    with pack.hub_cache(tmp_path / "build"):  # building: the pack's cache, the Hub on
        assert str(tmp_path / "build") == huggingface_hub.constants.HF_HUB_CACHE
        assert not huggingface_hub.constants.HF_HUB_OFFLINE
    assert str(found.hub) == huggingface_hub.constants.HF_HUB_CACHE  # as it was before


# --------------------------------------------------------------------------- read-only layers


def test_a_read_only_cache_under_a_writable_one(tmp_path):
    key = ("clip", "m", "rev", "prep")
    base = EmbeddingCache(tmp_path / "pack")
    base.put_many(key, ["a", "b"], np.eye(2, 3, dtype=np.float32))
    files = {p: p.stat().st_mtime_ns for p in (tmp_path / "pack").rglob("*")}
    under = EmbeddingCache(tmp_path / "pack", read_only=True)
    top = EmbeddingCache(tmp_path / "user", under=under)
    found, missing = top.get_many(key, ["a", "c", "b"])
    assert missing == [1] and sorted(found) == [0, 2]
    np.testing.assert_array_equal(found[2], [0, 1, 0])
    assert (top.hits, top.misses) == (2, 1)
    top.put_many(key, ["c"], np.ones((1, 3), np.float32))  # new rows go to the top cache
    under.put_many(key, ["d"], np.ones((1, 3), np.float32))  # and never into the pack
    under.clear()
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "pack").rglob("*")} == files
    assert top.get_many(key, ["c"])[1] == [] and under.get_many(key, ["c", "d"])[1] == [0, 1]
    seg = next((tmp_path / "pack").rglob("*.vec"))
    seg.write_bytes(seg.read_bytes()[:-4])  # damaged: ignored, not deleted
    assert EmbeddingCache(tmp_path / "pack", read_only=True).get_many(key, ["a"])[1] == [0]
    assert seg.exists()


def test_the_playground_reads_trained_models_from_under_without_touching_them(tmp_path):
    from explorer.playground import digits as pg
    from explorer.playground.cache import ModelCache

    cfg = pg.TrainConfig("ae", epochs=2)
    made = ModelCache(tmp_path / "pack").get(cfg)
    stored = next((tmp_path / "pack").glob("*.pt"))
    before = stored.stat().st_mtime_ns
    cache = ModelCache(tmp_path / "user", under=tmp_path / "pack")
    got = cache.get(cfg)
    assert got.from_disk and cache.trainings == 0
    np.testing.assert_array_equal(pg.encode(got), pg.encode(made))
    assert stored.stat().st_mtime_ns == before and not list((tmp_path / "user").glob("*.pt"))


# --------------------------------------------------------------------------- what goes in


def test_model_names_and_spaces():
    from explorer.classpack import build as cp
    from explorer.models import registry

    assert cp.model_names("default") == registry.default_models()
    everything = cp.model_names("all")
    assert "sd3-vae" not in everything and "taesd" in everything and "vit-b16" in everything
    assert cp.model_names("taesd, clip-vit-b16,taesd") == ["taesd", "clip-vit-b16"]
    with pytest.raises(Exception, match="unknown model 'no-such'"):
        cp.model_names("taesd,no-such")
    spaces = cp.pack_spaces(["taesd", "dinov2-base", "test-tiny-unet"])
    assert spaces[:3] == ["vae:taesd", "dino:dinov2-base", "unet:test-tiny-unet@t200"]
    assert spaces[3:] == cp.baseline_spaces()
    assert cp.set_name("bundled") == "bundled" and cp.set_name("/x/My Photos.zip") == "My-Photos"


def test_the_stand_in_hub_serves_what_snapshot_download_asks(tmp_path, monkeypatch):
    """huggingface_hub's own snapshot_download (through download.fetch) against the stand-in:
    the patterns' files only, in a snapshot named by the stand-in's commit."""
    import huggingface_hub

    from explorer.models import download

    repo = tmp_path / "repo"
    tiny_models.build_vae(tiny_models.VAES["test-kl"]).save_pretrained(repo)
    (repo / "diffusion_pytorch_model.bin").write_bytes(b"never fetched: not in the patterns")
    with StandInHub({"stabilityai/sd-vae-ft-mse": repo}) as hub:
        # what HF_ENDPOINT sets when huggingface_hub is imported (it is, in this process)
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)
        template = hub.url + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        [got] = download.fetch(["sd-vae-ft-mse"], lambda _: None, cache_dir=tmp_path / "hub")
    assert got.revision == hub.commits["stabilityai/sd-vae-ft-mse"] == got.folder.name
    assert sorted(p.name for p in got.folder.iterdir()) == [
        "config.json",
        "diffusion_pytorch_model.safetensors",
    ]
    assert (got.folder / "config.json").read_bytes() == (repo / "config.json").read_bytes()
    asked = {(m, p.rsplit("/", 1)[-1]) for m, p in hub.requests}
    assert ("GET", "diffusion_pytorch_model.safetensors") in asked
    assert not any(p.endswith(".bin") for _, p in hub.requests)


# --------------------------------------------------------------------------- the round trip


def tiny_repos(root: Path) -> dict[str, Path]:
    """The default models' Hub repos, holding the tiny test models (saved the way the Hub holds
    the real ones), plus files the download patterns leave out."""
    from diffusers import AutoencoderTiny

    repos = {}
    folder = root / "sd-vae-ft-mse"
    tiny_models.build_vae(tiny_models.VAES["test-kl"]).save_pretrained(folder)
    (folder / "diffusion_pytorch_model.bin").write_bytes(b"pickled: never fetched")
    repos["stabilityai/sd-vae-ft-mse"] = folder
    folder = root / "taesd"
    torch.manual_seed(0)
    AutoencoderTiny(
        encoder_block_out_channels=(16,) * 4, decoder_block_out_channels=(16,) * 4
    ).save_pretrained(folder)
    repos["madebyollin/taesd"] = folder
    for name, repo in (("test-clip", "openai/clip-vit-base-patch32"), ("test-dino", "facebook/dinov2-small")):  # fmt: skip
        model, processor, tokenizer = tiny_models.build_embedder(tiny_models.EMBEDDERS[name])
        folder = root / name
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
        if tokenizer is not None:
            tokenizer.save_pretrained(folder)
        (folder / "README.md").write_text("a model card: never fetched")
        repos[repo] = folder
    return repos


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXPLORER_", "HF_"))}
    env.update(
        HF_HOME=str(tmp / "hf-home"),
        EXPLORER_CACHE_DIR=str(tmp / "user-cache"),
        HF_HUB_DISABLE_TELEMETRY="1",
        GRADIO_ANALYTICS_ENABLED="False",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A class pack of the default models and the teaching set, built by the CLI in a fresh
    process whose only Hub is the stand-in; -> (pack folder, stand-in, CLI output, workdir)."""
    work = tmp_path_factory.mktemp("classpack")
    hub = StandInHub(tiny_repos(work / "repos")).start()
    out = work / "pack"
    proc = subprocess.run(
        [sys.executable, "-m", "explorer", "classpack", "--out", str(out)],
        cwd=ROOT,
        env=_env(work / "build", HF_ENDPOINT=hub.url),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    yield out, hub, proc, work
    hub.close()


@pytest.mark.slow
def test_the_pack_holds_the_models_their_revisions_and_the_embeddings(built):
    out, hub, proc, _ = built
    manifest = pack.verify(out).manifest
    repos = {m["name"]: m for m in manifest["models"]}
    assert set(repos) == {"sd-vae-ft-mse", "taesd", "clip-vit-b32", "dinov2-small"}
    for m in repos.values():
        assert m["revision"] == hub.commits[m["repo_id"]]
        snapshot = out / "hub" / f"models--{m['repo_id'].replace('/', '--')}" / "snapshots"
        assert [p.name for p in snapshot.iterdir()] == [m["revision"]]
    assert not [p for p in out.rglob("*") if p.is_symlink()]  # plain files: any copy keeps them
    assert not list(out.rglob("*.bin")) and not list(out.rglob("README.md"))
    [bundled] = manifest["sets"]
    assert bundled["images"] == 112 and bundled["spaces"] == manifest["spaces"]
    assert manifest["spaces"][:4] == [
        "vae:sd-vae-ft-mse",
        "vae:taesd",
        "clip:clip-vit-b32",
        "dino:dinov2-small",
    ]
    assert manifest["left_out"] == {} and len(manifest["lesson"]["playground"]) == 3
    assert manifest["lesson"]["perturbations"]["astronaut"] == manifest["spaces"][:4]
    total = sum(
        p.stat().st_size for p in out.rglob("*") if p.is_file() and p.name != "manifest.json"
    )
    assert manifest["size_bytes"] == total
    assert f"({total:,} bytes;" in proc.stdout  # the size is printed


def _wait_for(url: str, app: subprocess.Popen, deadline_s: float = 600) -> None:
    import urllib.request

    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if app.poll() is not None:
            raise AssertionError(f"the app stopped: {app.stderr.read()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise AssertionError("the app did not start")


@pytest.mark.slow
def test_the_app_opens_the_pack_offline_and_runs_from_it(built, examples):
    """EXPLORER_PACK=DIR python app.py with the Hub unreachable: the atlas opens the pack's set
    in every packed space and CLIP text search works, the Perturbations tab and the playground
    read their results from the pack (no row is embedded, no model trained: the user's caches
    stay empty), the stand-in Hub gets no request, and the pack is unchanged afterwards."""
    from gradio_client import Client, handle_file

    out, hub, _, work = built
    asked_before = len(hub.requests)
    port = free_port()
    closed = free_port()  # nothing listens there
    tmp = work / "classroom"
    env = _env(
        tmp,
        EXPLORER_PACK=str(out),
        HF_HUB_OFFLINE="1",
        HF_ENDPOINT=f"http://127.0.0.1:{closed}",
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
    )
    app = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_for(url, app)
        client = Client(url, verbose=False)
        packed = pack.verify(out).manifest["sets"][0]["spaces"]
        res = client.predict("bundled", [], "pca", api_name="/atlas_pack")
        panels = json.loads(res[0])["panels"]
        from explorer.atlas import MAX_SPACES

        shown = packed[:MAX_SPACES]
        from explorer.spaces.embed import parse_space

        models = [parse_space(s)[1] for s in shown]  # a control's one model: pixels -> 16x16-rgb
        assert [p["title"].split(" · ")[1] for p in panels] == models
        for rest in packed[MAX_SPACES:]:
            assert rest in res[1]  # the status names the packed spaces not shown
        gallery, note, _ = client.predict("a photo of a cat", api_name="/atlas_text")
        assert len(gallery) == 8 and note.startswith("CLIP similarity")
        *_, table = client.predict(
            handle_file(str(examples["astronaut"])),
            ["VAE", "CLIP", "DINOv2"],
            "taesd",
            "clip-vit-b32",
            "dinov2-small",
            "",
            "flip",
            api_name="/perturb",
        )
        assert {r[2] for r in table["data"]} == {
            "vae:taesd",
            "clip:clip-vit-b32",
            "dino:dinov2-small",
        }
        pg_out = client.predict(1.0, 32, 150, 0, False, 0, 1, api_name="/playground")
        assert pg_out[-2]["headers"][0] == "model" and len(pg_out[-2]["data"]) == 3
    finally:
        app.terminate()
        stderr = app.communicate(timeout=60)[1]
    assert "class pack" in stderr and "the Hugging Face Hub is off" in stderr
    assert len(hub.requests) == asked_before  # nothing asked of the Hub
    user = tmp / "user-cache"
    assert not list(user.rglob("*.vec")), "an embedding was computed instead of read"
    assert not list(user.rglob("*.pt")), "a playground model was trained instead of read"
    pack.verify(out)  # nothing was written into the pack


@pytest.mark.slow
def test_a_changed_pack_stops_the_app_and_the_cli_with_a_sentence(built):
    out, _, _, work = built
    copy = work / "changed"
    shutil.copytree(out, copy)
    weights = next(copy.rglob("model.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    env = _env(work / "changed-run", HF_HUB_OFFLINE="1", EXPLORER_PACK=str(copy))
    app = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert app.returncode == 2
    assert "changed since it was made" in app.stderr and weights.name in app.stderr
    env.pop("EXPLORER_PACK")
    cli = subprocess.run(
        [sys.executable, "-m", "explorer", "--pack", str(copy), "models"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert cli.returncode == 2 and cli.stderr.startswith("error: The class pack")


@pytest.mark.slow
def test_a_zip_and_a_folder_go_into_the_pack_and_open_from_it(tmp_path, monkeypatch):
    """Sets of the teacher's own: copied into the pack, embedded there with models registered in
    code (no download), and opened by the atlas's pack opener from the pack's rows alone."""
    import huggingface_hub

    from explorer import classpack
    from explorer.spaces import cache as cache_module
    from explorer.ui.atlas import handlers
    from tests.image_files import make_tree, make_zip, noise_png

    members = {
        f"{c}/{c}_{i}.png": noise_png(10 * k + i) for k, c in enumerate("ab") for i in range(3)
    }
    zipped = make_zip(tmp_path / "class photos.zip", members)
    folder = make_tree(tmp_path / "mine", {k.replace("a/", "c/"): v for k, v in members.items()})
    out = tmp_path / "pack"
    manifest = classpack.build_pack(
        out, sets=[str(zipped), str(folder)], models=["test-tiny", "test-clip"], log=lambda _: None
    )
    by_name = {s["name"]: s for s in manifest["sets"]}
    assert by_name["class-photos"]["path"] == "sets/class-photos.zip"
    assert (out / "sets" / "class-photos.zip").read_bytes() == zipped.read_bytes()
    assert by_name["mine"]["source"] == "folder" and (out / "sets" / "mine" / "c").is_dir()
    assert by_name["mine"]["spaces"][:2] == ["vae:test-tiny", "clip:test-clip"]
    assert [m["repo_id"] for m in manifest["models"]] == [None, None]  # built in code

    for var in ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):  # restored afterwards
        monkeypatch.setenv(var, os.environ.get(var, ""))
    for name in ("HF_HUB_CACHE", "HF_HUB_OFFLINE"):
        monkeypatch.setattr(
            huggingface_hub.constants, name, getattr(huggingface_hub.constants, name)
        )
    monkeypatch.setenv("EXPLORER_PACK", str(out))
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "user"))
    assert classpack.pack_set_names() == ["class-photos", "mine"]
    assert cache_module.shared().under is not None
    res = handlers.on_atlas_pack("class-photos", [], "pca")
    panels = json.loads(res[2])["panels"]
    assert [p["key"] for p in panels][:2] == ["vae", "clip"] and len(
        atlas_of(res[2])["labels"]
    ) == 6
    assert not list((tmp_path / "user").rglob("*.vec"))  # every row came from the pack
    with pytest.raises(Exception, match="did not embed"):
        handlers.on_atlas_pack("mine", ["vae:taesd"], "pca")
    with pytest.raises(Exception, match="no set called “nope”; it holds: class-photos, mine"):
        handlers.on_atlas_pack("nope", [], "pca")
    assert handlers.pack_space_choices() == by_name["mine"]["spaces"]
    from explorer.ui import availability

    notice = availability.notice_markdown("atlas")  # the default models are not in this pack
    assert "Not in the class pack" in notice and "`clip-vit-b32`" in notice
    assert "classpack --out DIR --models test-tiny,test-clip,sd-vae-ft-mse" in notice
    assert "explorer download" not in notice
    pack.verify(out)
