"""VQ autoencoders: explorer.analysis.vq against brute force and diffusers' own quantizer, the wrapper's
VQ convention, loading (cache, .bin refused when it holds code), and the lab with ``test-vq``."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer import cli
from explorer.analysis import vq
from explorer.core.errors import ModelUnavailableError
from explorer.images import pictures
from explorer.lab import actions as lab
from explorer.models import registry
from explorer.models import vae as vae_module
from explorer.models.vae import load_vae
from explorer.ui.lab import views as lab_views
from tests import tiny_models

RES = 64


@pytest.fixture(scope="module")
def vqvae():
    return load_vae("test-vq")


def _brute_force(z: np.ndarray, book: np.ndarray) -> np.ndarray:
    """(N,C,h,w), (K,C) -> (N,h,w): argmin over codes of the squared distance, pixel by pixel."""
    d = ((z.transpose(0, 2, 3, 1)[..., None, :] - book) ** 2).sum(-1)  # (N,h,w,K)
    return d.argmin(-1)


def _diffusers_indices(model, h: torch.Tensor) -> np.ndarray:
    """diffusers' VectorQuantizer on raw latents h -> its indices as (N,h,w)."""
    with torch.no_grad():
        _, _, (_, _, idx) = model.quantize(h)
    return idx.reshape(h.shape[0], h.shape[2], h.shape[3]).numpy()


def _unambiguous(z: np.ndarray, book: np.ndarray, tol: float = 1e-5) -> np.ndarray:
    """(N,h,w) mask of pixels whose two nearest codes are more than ``tol`` apart in distance."""
    d = np.sort(np.sqrt(((z.transpose(0, 2, 3, 1)[..., None, :] - book) ** 2).sum(-1)), -1)
    return d[..., 1] - d[..., 0] > tol


# --------------------------------------------------------------------------- explorer.analysis.vq


def test_indices_match_brute_force_on_constructed_data():
    rng = np.random.default_rng(0)
    book = rng.normal(size=(16, 3))
    z = rng.normal(size=(2, 3, 5, 7))
    idx = vq.code_indices(z, book)
    assert idx.shape == (2, 5, 7) and idx.dtype == np.int64
    np.testing.assert_array_equal(idx, _brute_force(z, book))
    # a latent made of codebook rows maps back to exactly those rows
    want = rng.integers(0, 16, size=(1, 4, 4))
    np.testing.assert_array_equal(vq.code_indices(book[want].transpose(0, 3, 1, 2), book), want)


def test_quantize_gives_codebook_rows_and_usage_counts():
    rng = np.random.default_rng(1)
    book = rng.normal(size=(8, 4)).astype(np.float32)
    z = rng.normal(size=(3, 4, 6, 5))
    q, idx = vq.quantize(z, book)
    assert q.shape == z.shape and q.dtype == np.float32
    pixels = q.transpose(0, 2, 3, 1).reshape(-1, 4)
    # every quantised pixel equals a codebook row exactly, the one its index names
    np.testing.assert_array_equal(pixels, book[idx.ravel()])
    u = vq.code_usage(idx, 8)
    assert u.counts.sum() == u.pixels == 3 * 6 * 5
    assert u.used == len(np.unique(idx)) and 1 <= u.perplexity <= u.used
    # known answers: one code -> perplexity 1; K codes equally used -> perplexity K
    assert vq.code_usage(np.zeros((4, 4), int), 8).perplexity == pytest.approx(1.0)
    assert vq.code_usage(np.arange(8).repeat(3), 8).perplexity == pytest.approx(8.0)
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        vq.code_usage(np.array([8]), 8)
    with pytest.raises(ValueError, match="agree in C"):
        vq.code_indices(z, book[:, :3])


def test_palette_is_stable_and_distinct():
    small, big = pictures.code_palette(24), pictures.code_palette(8192)
    assert small.shape == (24, 3) and small.dtype == np.uint8
    np.testing.assert_array_equal(small, big[:24])  # a code's colour does not depend on K
    assert (np.abs(np.diff(small.astype(int), axis=0)).sum(1) > 30).all()  # neighbours differ
    img = pictures.code_map_image(np.array([[0, 1], [2, 3]]), 24, scale=3)
    assert img.size == (6, 6) and img.getpixel((4, 0)) == tuple(small[1])


# --------------------------------------------------------------------------- the wrapper


def test_encode_is_the_pre_quant_latent_and_decode_quantises(vqvae, image64):
    model = vqvae.module
    assert vqvae.quantized and not vqvae.stochastic
    assert (vqvae.latent_channels, vqvae.downscale, vqvae.scaling_factor) == (3, 4, 1.0)
    post = vqvae.encode(image64)
    assert post.std is None and post.mean.shape == (1, 3, 16, 16)
    with torch.no_grad():
        h = model.encode(image64 * 2 - 1).latents
        quant, _, _ = model.quantize(h)
        expected = (model.decoder(model.post_quant_conv(quant)) + 1) / 2
    torch.testing.assert_close(post.mean, h, rtol=0, atol=0)
    torch.testing.assert_close(vqvae.codebook, model.quantize.embedding.weight, rtol=0, atol=0)
    # every pixel of our quantised latent is exactly a codebook row; diffusers' equals it up to
    # the round-off of its straight-through estimator z + (e - z)
    book = model.quantize.embedding.weight
    ours, idx = vq.quantize(post.mean.numpy(), vqvae.codebook.numpy())
    rows = torch.from_numpy(ours).permute(0, 2, 3, 1).reshape(-1, 3)
    assert ((rows[:, None, :] == book[None]).all(-1).sum(-1) >= 1).all()
    torch.testing.assert_close(rows, book[torch.from_numpy(idx).ravel()], rtol=0, atol=0)
    torch.testing.assert_close(torch.from_numpy(ours), quant, rtol=0, atol=1e-6)
    # decode = quantise, then the decoder
    torch.testing.assert_close(vqvae.decode(post.mean), expected.clamp(0, 1), rtol=0, atol=1e-6)


def test_index_map_equals_diffusers_quantizer_indices(vqvae, image64):
    rng = torch.Generator().manual_seed(3)
    x = torch.cat([image64, torch.rand((2, 3, RES, RES), generator=rng)])
    with torch.no_grad():
        h = vqvae.module.encode(x * 2 - 1).latents
    book = vqvae.module.quantize.embedding.weight.numpy()
    ours = vq.code_indices(h.numpy(), book)
    theirs = _diffusers_indices(vqvae.module, h)
    sure = _unambiguous(h.numpy(), book)
    assert sure.mean() > 0.99  # near-ties, where float rounding may pick either, are rare
    np.testing.assert_array_equal(ours[sure], theirs[sure])
    np.testing.assert_array_equal(ours, _brute_force(h.numpy().astype(np.float64), book))
    assert len(np.unique(ours)) > 5  # the map has structure, not one code everywhere


def test_roundtrip_shapes_and_range(vqvae):
    x = torch.rand((2, 3, 48, 64), generator=torch.Generator().manual_seed(0))
    post = vqvae.encode(x)
    assert post.mean.shape == (2, 3, 12, 16)
    y = vqvae.decode(post.mean)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert y.min() >= 0 and y.max() <= 1 and torch.isfinite(y).all()


def test_a_registered_vq_build_must_be_a_vqmodel():
    import dataclasses

    spec = registry.resolve("test-kl")
    with pytest.raises(TypeError, match="kind 'vq' needs a diffusers VQModel"):
        vae_module._load(dataclasses.replace(spec, name="wrong", kind="vq"), torch.device("cpu"))


# --------------------------------------------------------------------------- loading


def _vq_folder_files(model) -> dict[str, bytes]:
    """A VQModel saved as diffusers does with .bin weights (as the CompVis repos publish)."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    config = model.config.copy() if hasattr(model.config, "copy") else dict(model.config)
    import json

    cfg = {k: v for k, v in config.items() if not k.startswith("_")}
    cfg["_class_name"] = "VQModel"
    cfg["scaling_factor"] = 0.18215  # what diffusers writes by default; the spec overrides it
    return {
        "vqvae/config.json": json.dumps(cfg).encode(),
        "vqvae/diffusion_pytorch_model.bin": buf.getvalue(),
    }


def test_registry_vq_model_loads_from_the_cache_with_bin_weights(hf_cache, image64):
    spec = registry.REGISTRY["ldm-vq-f4-celebahq"]
    model = tiny_models.build_vae(tiny_models.VAES["test-vq"])
    hf_cache(spec.repo_id, _vq_folder_files(model), commit="ab" * 20)  # diffusers wants 40 hex
    assert registry.is_usable(spec.name)
    loaded = vae_module._load(
        spec, torch.device("cpu")
    )  # not load_vae: keep the shared cache clean
    assert loaded.quantized and loaded.scaling_factor == 1.0  # the spec's, not the config's
    torch.testing.assert_close(loaded.codebook, model.quantize.embedding.weight)
    torch.testing.assert_close(
        loaded.encode(image64).mean, load_vae("test-vq").encode(image64).mean
    )


def test_a_bin_holding_code_is_refused(tmp_path):
    model = tiny_models.build_vae(tiny_models.VAES["test-vq"])
    model.save_pretrained(tmp_path, safe_serialization=False)
    state = dict(model.state_dict())
    state["evil"] = os.getcwd  # a pickled callable: weights_only loading must refuse it
    torch.save(state, tmp_path / "diffusion_pytorch_model.bin")
    spec = registry.resolve(str(tmp_path))
    assert spec.kind == "vq"
    with pytest.raises(ModelUnavailableError, match="Unable to load weights"):
        vae_module._load(spec, torch.device("cpu"))


def test_download_fetches_the_vq_bin_weights_only_for_vq_models(monkeypatch):
    from explorer.models import download

    asked = {}

    def snapshot(name, repo, patterns, *_):
        asked[name] = patterns
        return Path("snapshots") / "0123abcd"  # where snapshot_download would have put it

    monkeypatch.setattr(download, "_snapshot", snapshot)
    download.download(["ldm-vq-f4-celebahq", "sd-vae-ft-mse"], log=lambda _: None)
    assert "vqvae/diffusion_pytorch_model.bin" in asked["ldm-vq-f4-celebahq"]
    assert "vqvae/*.safetensors" in asked["ldm-vq-f4-celebahq"]
    assert not any(p.endswith(".bin") for p in asked["sd-vae-ft-mse"])


def test_cli_models_lists_vq_models(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    vq_lines = [line for line in out.splitlines() if line.split()[:1] and "VQ" in line]
    names = {line.split()[0] for line in vq_lines}
    assert {"ldm-vq-f4-celebahq", "ldm-vq-f4-openimages", "test-vq"} <= names
    assert "CompVis/ldm-celebahq-256 (vqvae)" in out


# --------------------------------------------------------------------------- the lab


def test_lab_encode_codes_and_view(astronaut):
    enc = lab.encode(astronaut, "test-vq", RES)
    cb = lab.codes(enc)
    assert cb is not None and lab.codes(lab.encode(astronaut, "test-kl", RES)) is None
    h = w = RES // 4
    assert cb.indices.shape == (h, w) and cb.usage.pixels == h * w
    np.testing.assert_array_equal(
        cb.indices, _brute_force(enc.posterior.mean.numpy(), enc.vae.codebook.numpy())[0]
    )
    assert cb.usage.used == len(np.unique(cb.indices)) <= 24
    assert cb.bits == pytest.approx(h * w * math.log2(24))
    assert 0 < cb.rms_distance < cb.rms_norm
    view = lab_views.encode_view(enc)
    assert "no N(0,1) prior" in view["hist_label"] and "Code-index map" in view["std_label"]
    assert f"{cb.usage.used:,} of 24 codes" in view["summary"]
    assert "KL(" not in view["summary"]  # no N(0,1) verdict for a VQ latent
    assert [t.name for t in view["histogram"].data] == ["latent values"]
    assert view["usage"].data[0].y.sum() == h * w
    kl = lab_views.encode_view(lab.encode(astronaut, "test-kl", RES))
    assert kl["usage"] is None and "KL(" in kl["summary"]


def test_lab_roundtrip_interpolate_edit(examples):
    a, b = examples["astronaut"], examples["coffee"]
    rt = lab.roundtrip(a, "test-vq", RES, source="sample")
    assert rt.source == "codes" and rt.reconstruction.size == (RES, RES)
    assert math.isfinite(rt.psnr) and "its codes" in lab_views.roundtrip_summary(rt)
    it = lab.interpolate(a, b, "test-vq", 4, "lerp", RES)
    assert it.quantized and len(it.frames) == 4 and it.codes_changed[0] == 0.0
    assert it.codes_changed[-1] > 0 and "re-quantised" in lab_views.interpolation_note(it)
    # a zero-amount shift changes no code, so the decode is identical; a big one changes codes
    none = lab.edit(a, "test-vq", 0, "shift", 0.0, resolution=RES)
    assert none.codes_changed == 0.0 and none.psnr_vs_baseline == math.inf
    big = lab.edit(a, "test-vq", 0, "shift", 3.0, resolution=RES)
    assert big.codes_changed > 0 and big.mean_abs_change > 0
    assert f"{big.codes_changed:.1%}" in lab_views.edit_note(big)
    assert lab.edit(a, "test-kl", 0, "shift", 1.0, resolution=RES).codes_changed is None


def test_app_encode_shows_the_code_map_and_usage(client, astronaut):
    import json

    from gradio_client import handle_file

    summary, _grid, _preview, code_map, hist, _stats, usage = client.predict(
        handle_file(astronaut), "test-vq", 64, "square", "", "shared", api_name="/encode"
    )
    assert "VQ autoencoder" in summary and "of 24 codes" in summary
    # the plots come as updates (their labels change with the model): {"label", "value"}
    assert "Code-index map" in code_map["label"] and "no N(0,1)" in hist["label"]
    assert usage["visible"] is True
    code_map, hist, usage = code_map["value"], hist["value"], usage["value"]
    figure = json.loads(code_map["plot"])
    assert [t["type"] for t in figure["data"]] == ["image", "heatmap"]
    assert figure["data"][1]["z"]["shape"] == "16, 16"  # (h,w) code indices at 64 / 4
    assert [t.get("name") for t in json.loads(hist["plot"])["data"]] == ["latent values"]
    bars = json.loads(usage["plot"])["data"][0]
    assert bars["type"] == "bar" and sum(_decoded(bars["y"])) == 16 * 16


def _decoded(values) -> list:
    """Plotly JSON arrays may come as {"dtype", "bdata"} (base64): -> a list of numbers."""
    if isinstance(values, dict):
        import base64

        return np.frombuffer(base64.b64decode(values["bdata"]), values["dtype"]).tolist()
    return list(values)
