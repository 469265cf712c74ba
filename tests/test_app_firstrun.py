"""The first run without the Hub: the notice that says what runs offline (and how to get the
rest), its one click to *Local checkpoints*, failures shown in place of the result (once, with the
old result cleared), and Compare's second VAE. The notice is computed from the registry's
``is_usable``; "no models" is the registry without the tiny test models and an empty cache."""

from __future__ import annotations

import gradio as gr
import pytest
from PIL import Image

from explorer import atlas
from explorer.core.errors import ExplorerError
from explorer.datasets import ImageSet
from explorer.models import registry
from explorer.ui import availability
from explorer.ui.app import build_demo
from explorer.ui.availability import DOWNLOAD_CMD
from tests.helpers import by_elem_id

DOWNLOAD_BLOCK = f"```\n{DOWNLOAD_CMD}\n```"


@pytest.fixture(scope="module")
def demo():
    """The app as built for the tests (tiny models registered, empty cache), not launched."""
    return build_demo()


def _by_label(demo: gr.Blocks, label: str):
    return next(b for b in demo.blocks.values() if getattr(b, "label", None) == label)


def test_notice_with_no_models_says_nothing_runs_and_gives_the_command(no_models):
    text = availability.notice_markdown("lab")
    assert availability.usable_vaes() == []
    assert text.startswith("**No VAE can run yet:**")
    assert DOWNLOAD_BLOCK in text  # rendered as a code block, not backticks in a toast
    for name in ("taesd", "sd-vae-ft-mse"):
        assert f"`{name}`" in text
    assert text.count(DOWNLOAD_CMD) == 1


def test_notice_names_what_is_usable_now(taef2_dir, no_models):
    text = availability.notice_markdown("atlas", str(taef2_dir))
    assert availability.usable_vaes(str(taef2_dir)) == ["local:taef2"]
    assert "**Usable now, without the internet:** `local:taef2` (local checkpoint)." in text
    for name in ("taesd", "clip-vit-b32", "dinov2-small"):  # what the atlas still lacks
        assert f"`{name}`" in text.split("**Not downloaded yet:**")[1]


def test_notice_lists_the_registered_models_as_usable():
    text = availability.notice_markdown("lab")
    usable = availability.usable_vaes()
    assert usable and all(registry.is_usable(n) for n in usable)
    assert all(f"`{n}`" in text.split("**Not downloaded yet:**")[0] for n in usable)


def test_notice_is_hidden_once_the_defaults_are_cached(hf_cache):
    for spec in registry.REGISTRY.values():
        if spec.default:
            config = f"{spec.subfolder}/config.json" if spec.subfolder else "config.json"
            hf_cache(spec.repo_id, {config: b"{}"})
    assert availability.notice_markdown("lab") == ""
    assert availability.notice_markdown("atlas") != ""  # CLIP and DINOv2 are still missing


def test_notice_in_the_built_app_and_its_button_opens_local_checkpoints(demo):
    notice = by_elem_id(demo, "offline-notice-lab-text")  # the tiny models run: one line
    assert DOWNLOAD_CMD in notice.value and "\n" not in notice.value
    assert by_elem_id(demo, "offline-notice-atlas-text").visible
    local = by_elem_id(demo, availability.LOCAL_ID)
    assert isinstance(local, gr.Accordion) and not local.open  # closed at start (no folder)
    for need in ("lab", "atlas"):
        button = by_elem_id(demo, f"offline-notice-{need}-open")
        dep = next(d for d in demo.fns.values() if button._id in [t[0] for t in d.targets])
        assert [o._id for o in dep.outputs][-1] == local._id
        tabs_update, local_update = dep.fn()
        assert local_update.open is True and tabs_update.selected == "lab"


def _encode_handlers(demo):
    """The encode button's two listeners: the UI's (failure in place) and the API's (raises)."""
    summary = by_elem_id(demo, "summary")
    deps = [
        d for d in demo.fns.values() if d.outputs and d.outputs[0]._id == summary._id
        and any(t[1] == "click" for t in d.targets)
    ]  # fmt: skip
    ui = next(d for d in deps if d.api_visibility == "private")
    api = next(d for d in deps if d.api_name == "encode")
    return ui.fn, api.fn


def test_failing_encode_shows_one_message_in_place_and_clears_the_rest(demo, tmp_path, astronaut):
    ui, api = _encode_handlers(demo)
    args = ("test-tiny", 64, "square", "", "shared")
    ok = ui(str(astronaut), *args)
    assert "numbers in image" in ok[0] and all(v is not None for v in ok[1:])
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    out = ui(str(bad), *args)  # returns (no toast, no "Error" badges): the sentence in the slot
    assert len(out) == 7
    assert out[0].startswith("> **⚠ Not done.**") and "image" in out[0]
    assert all(v is None for v in out[1:])  # the earlier grid, preview, plots, table: gone
    sentence = out[0].removeprefix("> **⚠ Not done.** ")
    assert sum(sentence in str(v) for v in out) == 1  # said once
    with pytest.raises(gr.Error, match="image"):  # an API client still gets an error
        api(str(bad), *args)


def test_unavailable_model_in_place_names_the_command_once(demo, no_models, astronaut):
    ui, _ = _encode_handlers(demo)
    out = ui(str(astronaut), "taesd", 64, "square", "", "shared")
    assert out[0].count(DOWNLOAD_CMD) == 1 and all(v is None for v in out[1:])


def test_compare_defaults_to_a_second_usable_model(demo):
    first, second = _by_label(demo, "VAE").value, _by_label(demo, "Second VAE").value
    assert first != second
    assert registry.is_usable(first) and registry.is_usable(second)


def test_second_vae_is_the_first_one_when_nothing_else_is_usable(taef2_dir, no_models):
    folder = str(taef2_dir)
    names = registry.available_models(folder)
    assert availability.second_vae(names, "local:taef2", folder) == "local:taef2"
    assert availability.second_vae(["a", "test-tiny"], "a") == "a"  # unknown / unregistered


def test_atlas_offline_gives_the_download_advice_once(no_models):
    images = [Image.new("RGB", (32, 32), c) for c in ("red", "green", "blue")]
    image_set = ImageSet("three", images, ["r", "g", "b"], ["r", "g", "b"])
    spaces = ["vae:taesd", "clip:clip-vit-b32", "dino:dinov2-small"]
    with pytest.raises(ExplorerError) as err:
        atlas.build(image_set, spaces, "pca", None, None)
    message = str(err.value)
    assert all(ref in message for ref in spaces)  # each space's reason ...
    assert message.count(DOWNLOAD_CMD) == 1  # ... and the advice once


def test_a_file_that_is_no_image_is_taken_out_of_the_input(demo, tmp_path, no_models, astronaut):
    image = by_elem_id(demo, "image-a")
    arrival = next(
        d for d in demo.fns.values() if any(t == (image._id, "change") for t in d.targets)
    )
    assert arrival.outputs[-1] is image
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    out = arrival.fn(str(bad), "taesd", 64, "square", "", "shared")
    assert "not an image" in out[0] and all(v is None for v in out[1:])  # no broken preview
    out = arrival.fn(str(astronaut), "taesd", 64, "square", "", "shared")  # model missing
    assert DOWNLOAD_CMD in out[0] and out[-1] is not None  # the picture stays for the next try
