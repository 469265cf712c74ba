"""Every endpoint of the launched app, called through gradio_client as a user's script would."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from corpus import build_corpus
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from tests.helpers import image_of, rows_of

pytestmark = pytest.mark.app

COMMON = {"model": "test-kl", "resolution": 256, "mode": "square", "folder": ""}


def test_api_lists_every_endpoint(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    for name in [
        "/encode",
        "/roundtrip",
        "/generations",
        "/compare",
        "/interpolate",
        "/edit",
        "/scan_models",
    ]:
        assert name in names


def test_encode(client, astronaut):
    summary, grid, preview, _std, _hist, stats, usage = client.predict(
        handle_file(astronaut), *COMMON.values(), "shared", api_name="/encode"
    )
    assert "4×32×32" in summary and "48.0×" in summary
    assert image_of(preview).size == (256, 256)
    assert len(stats["data"]) == 4  # one row per channel
    assert usage["visible"] is False  # the codebook-usage plot is for VQ models only
    assert grid["type"] == "plotly"
    figure = json.loads(grid["plot"])
    assert [t["type"] for t in figure["data"]] == ["heatmap"] * 4  # one map per channel
    assert [a["text"] for a in figure["layout"]["annotations"]] == [f"ch {i}" for i in range(4)]
    assert figure["layout"]["title"]["text"] == "4 latent channels (32×32), shared scale"
    bounds = {(t["zmin"], t["zmax"]) for t in figure["data"]}
    assert len(bounds) == 1 and next(iter(bounds))[0] == -next(iter(bounds))[1] < 0  # shared


def test_encode_per_channel_16(client, astronaut):
    summary, grid, *_, stats, _usage = client.predict(
        handle_file(astronaut), "test-kl16", 128, "fit", "", "per-channel", api_name="/encode"
    )
    assert "16×16×16" in summary
    assert len(stats["data"]) == 16  # one row per channel
    figure = json.loads(grid["plot"])
    assert [t["type"] for t in figure["data"]] == ["heatmap"] * 16  # one map per channel
    assert figure["layout"]["title"]["text"] == "16 latent channels (16×16), per-channel scale"


def test_roundtrip(client, astronaut):
    orig, recon, err, md, table = client.predict(
        handle_file(astronaut), *COMMON.values(), "sample", 3, api_name="/roundtrip"
    )
    assert image_of(orig).size == image_of(recon).size == (256, 256)
    w, h = image_of(err).size  # the error map, with its colour bar (8-bit levels) under it
    assert w == 256 and h > 256
    assert "PSNR" in md and "sample" in md
    row = rows_of(table)[0]
    assert row["model"] == "test-kl" and 0 < row["PSNR (dB)"] < 60


def test_generations(client, astronaut):
    _fig, last, table = client.predict(
        handle_file(astronaut), *COMMON.values(), 3, api_name="/generations"
    )
    assert [r[0] for r in table["data"]] == [1, 2, 3]
    assert image_of(last).size == (256, 256)


def test_compare(client, astronaut):
    a, b, _ea, _eb, table, note = client.predict(
        handle_file(astronaut), "test-kl", "test-tiny", 256, "square", "", api_name="/compare"
    )
    assert [r[0] for r in table["data"]] == ["test-kl", "test-tiny"]
    assert image_of(a).size == image_of(b).size
    assert "**test-kl**: PSNR" in note and "Both sides" not in note
    *_, note = client.predict(
        handle_file(astronaut), "test-tiny", "test-tiny", 64, "square", "", api_name="/compare"
    )
    assert "**Both sides are test-tiny**" in note  # never a silent comparison with itself


def test_interpolate(client, examples):
    strip, gif, _gif_file, _fade, _fade_gif, note = client.predict(
        handle_file(examples["astronaut"]),
        handle_file(examples["coffee"]),
        "test-tiny",
        5,
        "slerp",
        128,
        "",
        api_name="/interpolate",
    )
    g = image_of(gif)
    assert g.format == "GIF" and g.n_frames >= 5
    assert image_of(strip).height == 128 and image_of(strip).width > 5 * 128
    assert "5 frames" in note


def test_edit(client, astronaut):
    base, new, _diff, _fig, note = client.predict(
        handle_file(astronaut), *COMMON.values(), 2, "zero", 1.0, 0, api_name="/edit"
    )
    assert image_of(base).size == image_of(new).size == (256, 256)
    assert "PSNR" in note


def test_edit_bad_channel_is_a_clear_message(client, astronaut):
    with pytest.raises(AppError, match="Pick a channel between 0 and 3"):
        client.predict(
            handle_file(astronaut), *COMMON.values(), 9, "zero", 1.0, 0, api_name="/edit"
        )


def test_unknown_model_lists_valid_ones(client, astronaut):
    with pytest.raises(AppError, match="Choose one of: sd-vae-ft-mse"):
        client.predict(
            handle_file(astronaut), "no-such-vae", 256, "square", "", "shared", api_name="/encode"
        )


def test_scan_models_empty_and_missing(client, tmp_path):
    _, _, msg = client.predict(str(tmp_path), "test-kl", api_name="/scan_models")
    assert "No `*_encoder`" in msg
    with pytest.raises(AppError, match="No folder at"):
        client.predict(str(tmp_path / "nope"), "test-kl", api_name="/scan_models")


@pytest.mark.weights
@pytest.mark.slow
def test_taef2_folder_from_the_ui(client, taef2_dir, astronaut):
    model, _, msg = client.predict(str(taef2_dir), "test-kl", api_name="/scan_models")
    assert model["value"] == "local:taef2" and "taef2_encoder.pth" in msg
    _orig, _recon, _err, _md, table = client.predict(
        handle_file(astronaut),
        "local:taef2",
        512,
        "square",
        str(taef2_dir),
        "mean",
        0,
        api_name="/roundtrip",
    )
    row = rows_of(table)[0]
    assert row["PSNR (dB)"] >= 30


CORPUS = build_corpus(Path(tempfile.mkdtemp(prefix="explorer-corpus-")))


@pytest.mark.parametrize("case", sorted(CORPUS), ids=str)
def test_bad_input_through_the_app(client, case, astronaut):
    c = CORPUS[case]
    args = (handle_file(c.path), "test-tiny", 64, "square", "", "shared")
    if c.expect == "ok":
        summary, *_ = client.predict(*args, api_name="/encode")
        assert "4×8×8" in summary
    else:
        with pytest.raises(AppError) as err:
            client.predict(*args, api_name="/encode")
        msg = str(err.value)
        assert msg.rstrip().endswith((".", ".)")) and "Traceback" not in msg, msg
    # and the app still answers the next, normal request
    summary, *_ = client.predict(
        handle_file(astronaut), "test-tiny", 64, "square", "", "shared", api_name="/encode"
    )
    assert "4×8×8" in summary
