"""explorer.models.taesd and explorer.models.checkpoints: TAESD-family tiny autoencoders, from local checkpoint
pairs and from diffusers AutoencoderTiny folders (the Hub's taesd, taesdxl, taesd3, taef1).

The reference for the architecture is diffusers' ``AutoencoderTiny`` (same layout as TAESD, but
its decoder ``layers`` lack TAESD's index-0 soft clamp, so decoder indices are shifted by one),
and, for TAEF2's pool branch which diffusers lacks, a functional re-implementation of the layout
described in ../shared/weights/README.md written here independently of the module.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from explorer.core.errors import ExplorerError, ModelUnavailableError
from explorer.models import device as devices
from explorer.models import hub, registry
from explorer.models.checkpoints import (
    detect_variant,
    find_checkpoints,
    from_diffusers,
    load_diffusers_tiny,
    load_tiny_autoencoder,
    read_state_dict,
    resolve_checkpoint_path,
)
from explorer.models.taesd import TAEVariant, TinyAutoencoder
from explorer.models.vae import load_vae

TAEF2_DIR = Path(__file__).resolve().parents[2] / "shared" / "weights" / "taef2"

# TAESD layout from the weights README, written out independently of explorer.models.taesd.
ENC_BLOCKS = [1, 3, 4, 5, 7, 8, 9, 11, 12, 13]
ENC_STRIDED = [2, 6, 10]
DEC_BLOCKS = [3, 4, 5, 8, 9, 10, 13, 14, 15, 18]
DEC_UPCONV = [7, 12, 17]
ENC_POOL = [11, 12, 13]
DEC_POOL = [3, 4, 5]


# --------------------------------------------------------------------------- helpers


def _rand(gen: torch.Generator, *shape: int, fan_in: int | None = None) -> torch.Tensor:
    scale = 1.0 / (fan_in**0.5) if fan_in else 0.1
    return torch.randn(*shape, generator=gen) * scale


def _block_sd(gen, prefix: str, w: int, pool_width: int | None) -> dict[str, torch.Tensor]:
    sd = {}
    for j in (0, 2, 4):
        sd[f"{prefix}.conv.{j}.weight"] = _rand(gen, w, w, 3, 3, fan_in=9 * w) * 0.5
        sd[f"{prefix}.conv.{j}.bias"] = _rand(gen, w)
    if pool_width:
        sd[f"{prefix}.pool.0.weight"] = _rand(gen, pool_width, w, 1, 1, fan_in=w)
        sd[f"{prefix}.pool.1.weight"] = 1 + _rand(gen, pool_width)
        sd[f"{prefix}.pool.1.bias"] = _rand(gen, pool_width)
        sd[f"{prefix}.pool.3.weight"] = _rand(gen, w, pool_width, 1, 1, fan_in=pool_width)
    return sd


def synthetic_taesd(
    latent: int, width: int = 64, pool_width: int | None = None, seed: int = 0
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Random (encoder, decoder) state dicts with TAESD keys (and TAEF2's pool branch)."""
    gen = torch.Generator().manual_seed(seed)
    w = width
    enc = {"0.weight": _rand(gen, w, 3, 3, 3, fan_in=27), "0.bias": _rand(gen, w)}
    for i in ENC_BLOCKS:
        enc.update(_block_sd(gen, str(i), w, pool_width if i in ENC_POOL else None))
    for i in ENC_STRIDED:
        enc[f"{i}.weight"] = _rand(gen, w, w, 3, 3, fan_in=9 * w)
    enc["14.weight"] = _rand(gen, latent, w, 3, 3, fan_in=9 * w)
    enc["14.bias"] = _rand(gen, latent)
    dec = {"1.weight": _rand(gen, w, latent, 3, 3, fan_in=9 * latent), "1.bias": _rand(gen, w)}
    for i in DEC_BLOCKS:
        dec.update(_block_sd(gen, str(i), w, pool_width if i in DEC_POOL else None))
    for i in DEC_UPCONV:
        dec[f"{i}.weight"] = _rand(gen, w, w, 3, 3, fan_in=9 * w)
    dec["19.weight"] = _rand(gen, 3, w, 3, 3, fan_in=9 * w)
    dec["19.bias"] = 0.5 + _rand(gen, 3)
    return enc, dec


def _ref_block(sd, i: int, x: torch.Tensor) -> torch.Tensor:
    if f"{i}.pool.0.weight" in sd:
        p = F.conv2d(x, sd[f"{i}.pool.0.weight"])
        p = F.group_norm(p, 4, sd[f"{i}.pool.1.weight"], sd[f"{i}.pool.1.bias"])
        x = x + F.conv2d(F.relu(p), sd[f"{i}.pool.3.weight"])
    h = x
    for j in (0, 2, 4):
        h = F.conv2d(h, sd[f"{i}.conv.{j}.weight"], sd[f"{i}.conv.{j}.bias"], padding=1)
        if j != 4:
            h = F.relu(h)
    return F.relu(h + x)


def reference_encode(sd, x: torch.Tensor) -> torch.Tensor:
    """Functional TAESD/TAEF2 encoder straight from the README's description."""
    x = F.conv2d(x, sd["0.weight"], sd["0.bias"], padding=1)
    for i in range(1, 14):
        if i in ENC_STRIDED:
            x = F.conv2d(x, sd[f"{i}.weight"], stride=2, padding=1)
        else:
            x = _ref_block(sd, i, x)
    return F.conv2d(x, sd["14.weight"], sd["14.bias"], padding=1)


def reference_decode(sd, z: torch.Tensor) -> torch.Tensor:
    """Functional TAESD/TAEF2 decoder (soft clamp, no final clamp) from the README."""
    x = torch.tanh(z / 3) * 3
    x = F.relu(F.conv2d(x, sd["1.weight"], sd["1.bias"], padding=1))
    for i in range(3, 19):
        if i in DEC_BLOCKS:
            x = _ref_block(sd, i, x)
        elif i in DEC_UPCONV:
            x = F.conv2d(
                F.interpolate(x, scale_factor=2, mode="nearest"), sd[f"{i}.weight"], padding=1
            )
    return F.conv2d(x, sd["19.weight"], sd["19.bias"], padding=1)


def _save_pair(folder: Path, prefix: str, enc, dec, ext: str = "pth") -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / f"{prefix}_encoder.{ext}", folder / f"{prefix}_decoder.{ext}"
    for sd, path in zip((enc, dec), paths, strict=True):
        if ext == "safetensors":
            save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
        else:
            torch.save(sd, path)
    return paths


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / torch.mean((a.double() - b.double()) ** 2)))


# --------------------------------------------------------------------------- 1. diffusers


def autoencoder_tiny(latent_channels: int, **config) -> object:
    """A seeded diffusers AutoencoderTiny with 16-wide blocks (TAESD's layout unless ``config``
    says otherwise), in eval mode."""
    mod = pytest.importorskip("diffusers.models.autoencoders.autoencoder_tiny")
    torch.manual_seed(0)
    return mod.AutoencoderTiny(
        encoder_block_out_channels=(16, 16, 16, 16),
        decoder_block_out_channels=(16, 16, 16, 16),
        latent_channels=latent_channels,
        **config,
    ).eval()


@pytest.fixture(scope="module")
def diffusers_tiny():
    """Factory: :func:`autoencoder_tiny`, cached per channel count."""
    cache = {}

    def make(latent_channels: int):
        if latent_channels not in cache:
            cache[latent_channels] = autoencoder_tiny(latent_channels)
        return cache[latent_channels]

    return make


def export_taesd_keys(ae) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """diffusers AutoencoderTiny -> TAESD-format (encoder, decoder) state dicts.

    ``encoder.layers.N.x`` -> ``N.x``; ``decoder.layers.N.x`` -> ``(N+1).x`` because TAESD's
    decoder has its soft clamp at index 0 while diffusers applies it outside ``layers``.
    """
    enc, dec = {}, {}
    for key, value in ae.state_dict().items():
        m = re.match(r"^(encoder|decoder)\.layers\.(\d+)\.(.+)$", key)
        assert m, key
        half, idx, rest = m[1], int(m[2]), m[3]
        if half == "encoder":
            enc[f"{idx}.{rest}"] = value.clone()
        else:
            dec[f"{idx + 1}.{rest}"] = value.clone()
    return enc, dec


@pytest.mark.parametrize("ext", ["pth", "safetensors"])
@pytest.mark.parametrize("latent_channels", [4, 16])
def test_matches_diffusers_autoencoder_tiny(tmp_path, diffusers_tiny, latent_channels, ext):
    ae = diffusers_tiny(latent_channels)
    enc_sd, dec_sd = export_taesd_keys(ae)
    enc_path, dec_path = _save_pair(tmp_path, "mini", enc_sd, dec_sd, ext)

    model = load_tiny_autoencoder(enc_path, dec_path)
    assert isinstance(model, TinyAutoencoder) and model.downscale == 8
    assert model.variant == TAEVariant(latent_channels, pool=False, width=16)
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())

    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 32, 48, generator=gen)
    z = torch.randn(2, latent_channels, 4, 6, generator=gen) * 2
    with torch.no_grad():
        ref_latents = ae.encoder(x * 2 - 1)
        ref_raw = (ae.decoder(z) + 1) / 2
        ours_latents = model.encode(x)
        ours_raw = model.decoder(z)
        ours_img = model.decode(z)

    assert ours_latents.shape == (2, latent_channels, 4, 6)
    torch.testing.assert_close(ours_latents, ref_latents, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours_raw, ref_raw, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours_img, ref_raw.clamp(0, 1), atol=1e-5, rtol=1e-5)
    assert ours_img.shape == (2, 3, 32, 48)
    assert ours_img.min() >= 0 and ours_img.max() <= 1
    # The comparison is meaningful: outputs vary with the input and the latents are not constant.
    assert ours_latents.std() > 1e-3 and ours_raw.std() > 1e-3


def test_diffusers_format_state_dict_is_rejected_with_hint(diffusers_tiny):
    sd = diffusers_tiny(4).state_dict()
    enc = {k: v for k, v in sd.items() if k.startswith("encoder.")}
    dec = {k: v for k, v in sd.items() if k.startswith("decoder.")}
    with pytest.raises(ModelUnavailableError, match="not a TAESD-family encoder") as info:
        detect_variant(enc, dec)
    assert "diffusers" in str(info.value)


def test_diffusers_keys_are_remapped_to_taesd_keys(diffusers_tiny):
    ae = diffusers_tiny(16)
    enc, dec = from_diffusers(ae.state_dict())
    ref_enc, ref_dec = export_taesd_keys(ae)
    assert enc.keys() == ref_enc.keys() and dec.keys() == ref_dec.keys()
    assert all(torch.equal(enc[k], ref_enc[k]) for k in enc)
    assert all(torch.equal(dec[k], ref_dec[k]) for k in dec)
    with pytest.raises(ModelUnavailableError, match="not a diffusers AutoencoderTiny"):
        from_diffusers({**ae.state_dict(), "quant_conv.weight": torch.zeros(1)})


def _tiny_folder(folder: Path, latent_channels: int, **config) -> object:
    """:func:`autoencoder_tiny` saved as a diffusers folder (config.json + safetensors), as the
    Hub holds taesd & co.; returns the model."""
    ae = autoencoder_tiny(latent_channels, **config)
    ae.save_pretrained(folder)
    return ae


@torch.no_grad()
def _assert_same_as_diffusers(vae, ae, scale: float, shift: float) -> None:
    """Our VAE (scaled latents, images in [0, 1]) computes what diffusers' AutoencoderTiny does."""
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 32, 48, generator=gen)
    expected = (ae.encode(x * 2 - 1).latents - shift) * scale
    post = vae.encode(x)
    assert post.std is None and post.mean.shape == expected.shape
    torch.testing.assert_close(post.mean, expected, atol=1e-5, rtol=1e-5)
    z = torch.randn(expected.shape, generator=gen)
    expected_image = ((ae.decode(z / scale + shift).sample + 1) / 2).clamp(0, 1)
    torch.testing.assert_close(vae.decode(z), expected_image, atol=1e-5, rtol=1e-5)
    assert post.mean.std() > 1e-3 and expected_image.std() > 1e-3  # not a trivial comparison


@pytest.mark.parametrize(
    ("latent_channels", "scale", "shift"), [(4, 1.0, 0.0), (16, 1.5305, 0.0609)]
)
def test_a_diffusers_tiny_folder_runs_on_our_module(tmp_path, latent_channels, scale, shift):
    """A diffusers AutoencoderTiny folder loads into TinyAutoencoder (no diffusers at run time)
    and gives diffusers' numbers, with the scaling and shift of its config."""
    folder = tmp_path / f"tiny{latent_channels}"
    ae = _tiny_folder(folder, latent_channels, scaling_factor=scale, shift_factor=shift)
    model, config = load_diffusers_tiny(folder / "config.json", next(folder.glob("*.safetensors")))
    assert model.variant == TAEVariant(latent_channels, pool=False, width=16)
    assert (config["scaling_factor"], config["shift_factor"]) == (scale, shift)
    spec = registry.resolve(str(folder))
    assert spec.kind == "tiny" and not spec.stochastic
    vae = load_vae(str(folder))
    assert isinstance(vae.module, TinyAutoencoder) and not vae.stochastic
    assert (vae.scaling_factor, vae.shift_factor, vae.latent_channels) == (
        scale,
        shift,
        latent_channels,
    )
    _assert_same_as_diffusers(vae, ae, scale, shift)
    tiled = vae.encode(torch.rand(1, 3, 64, 64), tiled=True, tile=4)  # tiling works on it too
    assert tiled.mean.shape == (1, latent_channels, 8, 8)


def test_hub_tiny_autoencoders_load_offline_from_the_cache(tmp_path, hf_cache, monkeypatch):
    """taesd as `python -m explorer download` leaves it in the Hugging Face cache: usable, the
    default on a CPU, loaded offline through the key remap, identified by its snapshot."""
    for var in ("EXPLORER_DEFAULT_VAE", "EXPLORER_MODELS_DIR"):
        monkeypatch.delenv(var, raising=False)
    ae = _tiny_folder(tmp_path / "saved", 4)
    files = {p.name: p.read_bytes() for p in (tmp_path / "saved").iterdir()}
    hf_cache("madebyollin/taesd", files, commit="feedc0de")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert registry.is_usable("taesd") and registry.default_vae() == "taesd"
    spec = registry.REGISTRY["taesd"]
    assert hub.model_revision(spec) == "feedc0de"
    try:
        vae = load_vae("taesd")
        assert isinstance(vae.module, TinyAutoencoder)
        _assert_same_as_diffusers(vae, ae, 1.0, 0.0)
    finally:  # the model cache must not keep a fake taesd for later tests
        devices.MODEL_CACHE.pop(("vae", "taesd", None, devices.pick_device().type))


def test_other_autoencoder_tiny_layouts_are_refused(tmp_path):
    folder = tmp_path / "silu"
    _tiny_folder(folder, 4, act_fn="silu")
    with pytest.raises(ModelUnavailableError, match="only the TAESD layout") as err:
        load_vae(str(folder))
    assert "act_fn" in str(err.value)
    folder = tmp_path / "blocks"
    _tiny_folder(folder, 4, num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1))
    with pytest.raises(ModelUnavailableError, match="not a TAESD-family encoder"):
        load_vae(str(folder))
    folder = tmp_path / "pickled"
    _tiny_folder(folder, 4).save_pretrained(folder, safe_serialization=False)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(ModelUnavailableError, match="safetensors weights only"):
        load_vae(str(folder))


# --------------------------------------------------------------------------- 2. TAEF2 shape


def test_synthetic_taef2_detected_and_matches_reference(tmp_path):
    enc_sd, dec_sd = synthetic_taesd(latent=32, width=64, pool_width=256)
    variant = detect_variant(enc_sd, dec_sd)
    assert variant == TAEVariant(latent_channels=32, pool=True, width=64, pool_width=256)
    assert variant.latent_channels == 32 and variant.pool
    assert "32 latent channels" in variant.describe()
    assert "pool" in variant.describe() and "TAEF2" in variant.describe()

    # fp16 on disk like the released files; loads strictly into fp32.
    enc_path, dec_path = _save_pair(
        tmp_path,
        "taef2",
        {k: v.half() for k, v in enc_sd.items()},
        {k: v.half() for k, v in dec_sd.items()},
    )
    model = load_tiny_autoencoder(enc_path, dec_path)
    assert next(model.parameters()).dtype == torch.float32
    state = model.encoder.state_dict()
    assert set(state) == set(enc_sd)
    assert set(model.decoder.state_dict()) == set(dec_sd)
    torch.testing.assert_close(state["11.pool.0.weight"], enc_sd["11.pool.0.weight"].half().float())

    enc_sd = {k: v.half().float() for k, v in enc_sd.items()}
    dec_sd = {k: v.half().float() for k, v in dec_sd.items()}
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(1, 3, 32, 32, generator=gen)
    z = torch.randn(1, 32, 4, 4, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(
            model.encode(x), reference_encode(enc_sd, x), atol=1e-4, rtol=1e-4
        )
        torch.testing.assert_close(
            model.decode(z), reference_decode(dec_sd, z).clamp(0, 1), atol=1e-4, rtol=1e-4
        )
        # The pool branch is really used: dropping it changes the decoder's output.
        no_pool = {k: v for k, v in dec_sd.items() if ".pool." not in k}
        assert not torch.allclose(model.decoder(z), reference_decode(no_pool, z), atol=1e-3)


def test_describe_hints_by_channel_count():
    assert "TAESD/TAESDXL" in TAEVariant(4, pool=False).describe()
    assert "TAESD3/TAEF1" in TAEVariant(16, pool=False).describe()
    assert TAEVariant(32, pool=True).describe() == (
        "TAESD-family, 32 latent channels, with pool branch (TAEF2-like)"
    )
    assert "(" not in TAEVariant(8, pool=False).describe()


def test_dtype_and_shape_checks(tmp_path):
    enc_sd, dec_sd = synthetic_taesd(latent=4, width=8)
    model = load_tiny_autoencoder(*_save_pair(tmp_path, "t", enc_sd, dec_sd), dtype=torch.float64)
    assert model.variant.width == 8
    z = model.encode(torch.rand(1, 3, 16, 24))
    assert z.dtype == torch.float64 and z.shape == (1, 4, 2, 3)
    assert model.decode(z).shape == (1, 3, 16, 24)
    with pytest.raises(ValueError, match="multiples of 8"):
        model.encode(torch.rand(1, 3, 20, 16))
    with pytest.raises(ValueError, match="N, 3, H, W"):
        model.encode(torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match="N, 4, h, w"):
        model.decode(torch.rand(1, 16, 2, 2))


# --------------------------------------------------------------------------- 3. errors


def test_mismatched_latent_channels(tmp_path):
    enc4, _ = synthetic_taesd(latent=4, width=8)
    _, dec16 = synthetic_taesd(latent=16, width=8)
    enc_path, dec_path = _save_pair(tmp_path, "mixed", enc4, dec16)
    with pytest.raises(ModelUnavailableError) as info:
        load_tiny_autoencoder(enc_path, dec_path)
    msg = str(info.value)
    assert "4-channel" in msg and "16 channels" in msg and "different models" in msg


def test_mismatched_pool_branch():
    enc, _ = synthetic_taesd(latent=32, width=8, pool_width=16)
    _, dec = synthetic_taesd(latent=32, width=8)
    with pytest.raises(ModelUnavailableError, match="encoder has TAEF2's pool branch"):
        detect_variant(enc, dec)


def test_random_state_dict_is_not_taesd(tmp_path):
    junk = {"fc.weight": torch.randn(10, 10), "fc.bias": torch.randn(10)}
    enc_path, dec_path = _save_pair(tmp_path, "junk", junk, junk)
    with pytest.raises(ModelUnavailableError) as info:
        load_tiny_autoencoder(enc_path, dec_path)
    msg = str(info.value)
    assert "not a TAESD-family encoder" in msg and "fc.bias" in msg and "taef2" in msg


def test_extra_or_misshapen_keys_are_reported():
    enc, dec = synthetic_taesd(latent=4, width=8)
    with pytest.raises(ModelUnavailableError, match=r"unexpected 99\.weight"):
        detect_variant({**enc, "99.weight": torch.zeros(1)}, dec)
    bad = dict(dec)
    bad["7.weight"] = torch.zeros(8, 8, 1, 1)
    with pytest.raises(ModelUnavailableError, match=r"decoder.*7\.weight is \(8, 8, 1, 1\)"):
        detect_variant(enc, bad)
    missing = {k: v for k, v in enc.items() if not k.startswith("5.")}
    with pytest.raises(ModelUnavailableError, match=r"missing 5\.conv\.0\.bias"):
        detect_variant(missing, dec)


@pytest.mark.parametrize("ext", ["pth", "safetensors"])
def test_corrupt_file(tmp_path, ext):
    path = tmp_path / f"broken_encoder.{ext}"
    path.write_bytes(b"\x00garbage, not a checkpoint\xff" * 10)
    with pytest.raises(ModelUnavailableError) as info:
        read_state_dict(path)
    assert str(path) in str(info.value) and "download it again" in str(info.value)
    assert isinstance(info.value, ExplorerError)


def test_read_state_dict_missing_and_unsupported(tmp_path):
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        read_state_dict(tmp_path / "nope_encoder.pth")
    odd = tmp_path / "x_encoder.onnx"
    odd.write_bytes(b"1234")
    with pytest.raises(ModelUnavailableError, match="unsupported file type"):
        read_state_dict(odd)
    not_sd = tmp_path / "list_encoder.pth"
    torch.save([torch.zeros(1)], not_sd)
    with pytest.raises(ModelUnavailableError, match="plain state dict"):
        read_state_dict(not_sd)


def test_resolve_folder_with_two_pairs(tmp_path):
    for prefix in ("taesd", "taef1"):
        for half in ("encoder", "decoder"):
            (tmp_path / f"{prefix}_{half}.pth").write_bytes(b"")
    with pytest.raises(ModelUnavailableError) as info:
        resolve_checkpoint_path(tmp_path)
    msg = str(info.value)
    assert "several" in msg and "taesd" in msg and "taef1" in msg
    # ... but one of the files resolves to its own pair.
    assert resolve_checkpoint_path(tmp_path / "taef1_decoder.pth") == (
        tmp_path / "taef1_encoder.pth",
        tmp_path / "taef1_decoder.pth",
    )


def test_resolve_checkpoint_path_cases(tmp_path):
    enc, dec = tmp_path / "taef2_encoder.pth", tmp_path / "taef2_decoder.pth"
    enc.write_bytes(b"")
    with pytest.raises(ModelUnavailableError, match=r"no matching taef2_decoder\.pth"):
        resolve_checkpoint_path(enc)
    dec.write_bytes(b"")
    assert resolve_checkpoint_path(enc) == (enc, dec)
    assert resolve_checkpoint_path(dec) == (enc, dec)
    assert resolve_checkpoint_path(tmp_path) == (enc, dec)
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        resolve_checkpoint_path(tmp_path / "missing_encoder.pth")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelUnavailableError, match="No TAESD-family checkpoint pair"):
        resolve_checkpoint_path(empty)
    other = tmp_path / "weights.pth"
    other.write_bytes(b"")
    with pytest.raises(ModelUnavailableError, match="<name>_encoder"):
        resolve_checkpoint_path(other)


# --------------------------------------------------------------------------- 4. find


def test_find_checkpoints(tmp_path):
    for name in (
        "taesd_encoder.pth",
        "taesd_decoder.pth",
        "lonely_encoder.pth",
        "notes.txt",
        "sub/taef1_encoder.safetensors",
        "sub/taef1_decoder.safetensors",
        "sub/taesd_encoder.pt",
        "sub/taesd_decoder.pt",
        "sub/deeper/taef2_encoder.pth",
        "sub/deeper/taef2_decoder.pth",
        "mixed_encoder.pth",
        "mixed_decoder.safetensors",
    ):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    found = find_checkpoints(tmp_path)
    assert list(found) == ["mixed", "sub/taesd", "taef1", "taesd"]
    assert found["taesd"] == (tmp_path / "taesd_encoder.pth", tmp_path / "taesd_decoder.pth")
    assert found["taef1"] == (
        tmp_path / "sub" / "taef1_encoder.safetensors",
        tmp_path / "sub" / "taef1_decoder.safetensors",
    )
    assert found["sub/taesd"][0] == tmp_path / "sub" / "taesd_encoder.pt"
    assert found["mixed"][1] == tmp_path / "mixed_decoder.safetensors"
    assert find_checkpoints(tmp_path / "does-not-exist") == {}


# --------------------------------------------------------------------------- 5. real TAEF2


@pytest.fixture(scope="module")
def taef2():
    if not TAEF2_DIR.is_dir():
        pytest.skip(
            "real TAEF2 weights not found at ../shared/weights/taef2 "
            "(only present in the team's checkouts)"
        )
    enc, dec = resolve_checkpoint_path(TAEF2_DIR)
    return load_tiny_autoencoder(enc, dec)


@pytest.fixture(scope="module")
def astronaut512() -> torch.Tensor:
    """scikit-image's astronaut at 512x512: a (1, 3, 512, 512) float tensor in [0, 1]."""
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    img = Image.fromarray(data.astronaut()).convert("RGB").resize((512, 512), Image.LANCZOS)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0)


@pytest.mark.weights
@pytest.mark.slow
def test_real_taef2_round_trip(taef2, astronaut512):
    assert taef2.variant.latent_channels == 32 and taef2.variant.pool
    assert "TAEF2" in taef2.variant.describe()
    with torch.inference_mode():
        z = taef2.encode(astronaut512)
        assert z.shape == (1, 32, 64, 64)
        recon = taef2.decode(z)
        assert recon.shape == astronaut512.shape
        psnr = _psnr(recon, astronaut512)
        assert psnr >= 30.0, f"round-trip PSNR {psnr:.2f} dB, README measured about 31 dB"
        noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(0))
        noise_psnr = _psnr(taef2.decode(noise), astronaut512)
    assert noise_psnr < 15.0, f"random latent decodes to {noise_psnr:.2f} dB, too close"
