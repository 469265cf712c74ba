"""The UNet space (explorer.spaces.unet) on the tiny random UNet of tests/tiny_models.py: the hooked
mid block against the blocks run by hand, the noise, timestep and seed, pooling, cache keys, the
atlas and the CLI."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from explorer import atlas, cli, datasets
from explorer.atlas import Verdict, unet_position
from explorer.core import public
from explorer.core.errors import ExplorerError
from explorer.models import hub, registry
from explorer.spaces import embed as embeddings
from explorer.spaces import unet
from explorer.ui.atlas.views import verdict_markdown
from tests import tiny_models

NAME = tiny_models.UNET.name


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(1)
    net, text, tok = tiny_models.build_unet()
    return net.eval(), unet.empty_prompt_states(text.eval(), tok, torch.device("cpu"))


@pytest.fixture(scope="module")
def small_set():
    """4 photos of the teaching set in their 7 palettes (28 images, 32 px)."""
    s = datasets.teaching_set(size=32)
    keep = list(dict.fromkeys(s.labeling("source")))[:4]
    return s.subset([i for i, g in enumerate(s.labeling("source")) if g in keep])


@pytest.mark.slow
@torch.no_grad()
def test_hooked_mid_block_equals_the_blocks_run_by_hand(model):
    net, states = model
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    got = unet.hooked_outputs(net, x, 200, states, downs=True)
    t = torch.full((2,), 200)
    emb = net.time_embedding(net.get_time_embed(sample=x, timestep=t))
    cond = states.expand(2, -1, -1)
    h = net.conv_in(x)
    for i, block in enumerate(net.down_blocks):
        if getattr(block, "has_cross_attention", False):
            h, _ = block(hidden_states=h, temb=emb, encoder_hidden_states=cond)
        else:
            h, _ = block(hidden_states=h, temb=emb)
        torch.testing.assert_close(got[f"down{i}"], h)
    mid = net.mid_block(h, emb, encoder_hidden_states=cond)
    assert got["mid"].shape == (2, 64, 4, 4)
    torch.testing.assert_close(got["mid"], mid)
    # pooling: the spatial mean of the mid block, then of each down block
    torch.testing.assert_close(unet.bottleneck_features(net, x, 200, states), mid.mean(dim=(2, 3)))
    both = unet.bottleneck_features(net, x, 200, states, "mean+down")
    want = torch.cat([mid.mean((2, 3)), got["down0"].mean((2, 3)), got["down1"].mean((2, 3))], 1)
    assert both.shape == (2, 64 + 32 + 64)
    torch.testing.assert_close(both, want)
    # the hook leaves the model as it was: a full forward pass runs to the end
    assert net(x, t, encoder_hidden_states=cond).sample.shape == x.shape


def test_noise_is_the_ddpm_forward_process_and_repeats_per_seed():
    z = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    noise = unet.seeded_noise((4, 8, 8), [1, 2, 1])
    torch.testing.assert_close(noise[0], noise[2])
    assert not torch.equal(noise[0], noise[1])
    a = unet.sd_scheduler().alphas_cumprod[500]
    torch.testing.assert_close(unet.noised(z, noise, 500), a.sqrt() * z + (1 - a).sqrt() * noise)
    assert unet.seed_from_hash("f" * 64) == 2**60 - 1


@pytest.mark.slow
def test_timestep_and_seed_change_the_features(small_set):
    ims = small_set.images[:4]
    space = unet.load_unet(NAME, "cpu")
    hashes = [embeddings.image_hash(im) for im in ims]
    a = space.features(ims, 200, hashes=hashes)
    assert a.shape == (4, 64) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, space.features(ims, 200, hashes=hashes))  # same seed
    assert not np.allclose(a, space.features(ims, 50, hashes=hashes))  # another timestep
    other = ["0" * 63 + str(i) for i in range(4)]  # other seeds, same pixels
    assert not np.allclose(a, space.features(ims, 200, hashes=other))
    # embed(): the same rows, the timestep from the ref, the default seed = the image's hash
    np.testing.assert_array_equal(embeddings.embed(f"unet:{NAME}@t200", ims), a)
    np.testing.assert_array_equal(embeddings.embed(NAME, ims), a)  # t=200 is the default
    assert embeddings.embed(f"unet:{NAME}@t50", ims, pooling="mean+down").shape == (4, 160)


def test_refs_registry_and_cache_keys():
    assert embeddings.parse_space("unet") == ("unet", NAME)  # the usable one (SD 1.5 not cached)
    assert embeddings.parse_space(f"{NAME}@t50") == ("unet", f"{NAME}@t50")
    assert unet.split_model(f"{NAME}@t50") == (NAME, 50) and unet.split_model(NAME)[1] == 200
    with pytest.raises(ExplorerError, match="0 to 999"):
        unet.split_model(f"{NAME}@t1000")
    assert registry.is_usable(NAME) and not registry.is_usable("sd15-unet")
    assert registry.available_unets() == ["sd15-unet", NAME]
    key = unet.unet_cache_key(NAME, 200, "mean", "cpu")
    assert key[0] == "unet" and "t=200" in key[3] and "pooling=mean;" in key[3]
    assert unet.unet_cache_key(NAME, 50, "mean", "cpu") != key
    assert unet.unet_cache_key(NAME, 200, "mean+down", "cpu") != key
    files = hub.unet_files("fp16")
    assert "unet/*.fp16.safetensors" in files and "text_encoder/*.fp16.safetensors" in files
    assert "sd15-unet" not in registry.default_models()  # ~2 GB: fetched only when named


def test_cpu_estimate_and_the_public_cap(monkeypatch):
    note = unet.cpu_estimate_note(NAME, 300, "cpu")
    per = tiny_models.UNET.cpu_seconds_per_image
    assert f"about {300 * per:,.0f} s for 300 images" in note
    assert unet.cpu_estimate_note(NAME, 300, "cuda") == ""
    too_many = int(unet.CPU_BUDGET_S / per) + 10
    unet.check_cpu_budget(NAME, too_many, "cpu")  # private: allowed
    monkeypatch.setenv("EXPLORER_PUBLIC", "1")
    with pytest.raises(public.PublicModeError, match="at most"):
        unet.check_cpu_budget(NAME, too_many, "cpu")
    unet.check_cpu_budget(NAME, 3, "cpu")
    unet.check_cpu_budget(NAME, too_many, "cuda")


@pytest.mark.slow
def test_atlas_with_the_unet_beside_the_vae(small_set):
    a = atlas.build(small_set, ["vae:test-tiny", f"unet:{NAME}@t50"], "pca")
    assert [s.key for s in a.spaces] == ["vae", "unet"] and not a.failures
    assert a.embeddings["unet"].shape == (len(small_set), 64)
    assert a.space("unet").title == f"UNet bottleneck · {NAME}@t50"
    table = atlas.metrics_table(a, "pca")
    rows = table[table.space == "unet"]
    assert set(rows.labels) >= {"meaning", "appearance"}
    assert rows.knn5.between(0, 1).all()


def _verdict(**knn5: float) -> Verdict:
    return Verdict(knn5=knn5, chance=0.1, leaders=[max(knn5, key=knn5.get)], above_chance=True)


@pytest.mark.parametrize(
    "scores, position",
    [
        ({"vae": 0.2, "unet": 0.5, "clip": 0.9}, "between"),
        ({"vae": 0.2, "unet": 0.21, "clip": 0.9}, "like-vae"),
        ({"vae": 0.4, "unet": 0.2, "dino": 0.9}, "below-vae"),
        ({"vae": 0.2, "unet": 0.9, "clip": 0.5, "dino": 0.91}, "like-semantic"),
    ],
)
def test_unet_position_is_read_from_the_scores(scores, position):
    v = _verdict(**scores)
    got = unet_position(v)
    assert got is not None and got[0] == position
    text = verdict_markdown(v, {"unet": "UNet bottleneck", "clip": "CLIP", "dino": "DINOv2"})
    assert f"right for {scores['unet']:.0%} of images" in text
    assert ("more than the VAE latent and less than" in text) == (position == "between")


def test_no_unet_reading_without_a_comparison():
    assert unet_position(_verdict(vae=0.2, unet=0.5)) is None  # no meaning-trained space
    assert unet_position(_verdict(vae=0.2, clip=0.9)) is None  # no UNet
    assert "Where the semantics are" not in verdict_markdown(_verdict(vae=0.2, unet=0.5))


@pytest.mark.slow
def test_atlas_cli_with_the_unet(tmp_path, monkeypatch, capsys, small_set):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "photos"
    for i, (im, label) in enumerate(zip(small_set.images, small_set.labels, strict=True)):
        (src / label).mkdir(parents=True, exist_ok=True)
        im.save(src / label / f"{i}.png")
    out = tmp_path / "atlas"
    argv = ["atlas", str(src), "--out", str(out), "--vae", "test-tiny", "--method", "pca"]
    assert cli.main([*argv, "--unet", NAME, "--timestep", "50"]) == 0
    with open(out / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["space"] for r in rows] == ["vae", "unet"]
    err = capsys.readouterr().err
    assert f"about {len(small_set) * tiny_models.UNET.cpu_seconds_per_image:,.0f} s" in err
    reopened, _ = atlas.load_saved(out)
    assert reopened.space("unet").model == f"{NAME}@t50"
    assert cli.main([*argv, "--timestep", "50"]) == 2
    assert "give --unet MODEL too" in capsys.readouterr().err


def test_public_mode_allows_listed_unets_only(monkeypatch):
    from explorer.ui.components import check_space_refs

    monkeypatch.setenv("EXPLORER_PUBLIC", "1")
    check_space_refs([f"unet:{NAME}@t50", "vae:test-tiny"], None)
    with pytest.raises(public.PublicModeError, match="only runs the models in its list"):
        check_space_refs(["unet:someone/else@t50"], None)


def test_an_uncached_unet_offline_names_its_download(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ExplorerError, match="explorer download sd15-unet sd-vae-ft-mse"):
        unet.load_unet("sd15-unet@t50", "cpu")
