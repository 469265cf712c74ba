"""Every UNet block at any timestep, averaged over noise draws, under a prompt
(explorer.spaces.unet_blocks) on the tiny random UNet of tests/tiny_models.py: the hooks against the
network run block by block, the noise draws and their mean, the three prompts' text states, refs
and cache keys, FLOP counts and the CPU budget."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from explorer import datasets
from explorer.core import public
from explorer.core.errors import ExplorerError
from explorer.images import io as imaging
from explorer.spaces import embed as embeddings
from explorer.spaces import unet, unet_blocks
from explorer.spaces.unet_blocks import UNetRef
from tests import tiny_models

NAME = tiny_models.UNET.name
BLOCKS = ("down0", "down1", "mid", "up0", "up1")


@pytest.fixture(scope="module")
def model():
    net, text, tok = tiny_models.build_unet()
    return net.eval(), text.eval(), tok


@pytest.fixture(scope="module")
def images():
    s = datasets.teaching_set(size=32)
    return [s.images[i] for i in (0, 9, 20)]


@torch.no_grad()
def _by_hand(net, x, t, states) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Each block's output, running the UNet's blocks one after another as its forward does, and
    the final output."""
    n = x.shape[0]
    emb = net.time_embedding(net.get_time_embed(sample=x, timestep=torch.full((n,), t)))
    cond = states.expand(n, -1, -1)
    h = net.conv_in(x)
    res, out = (h,), {}
    for i, block in enumerate(net.down_blocks):
        if getattr(block, "has_cross_attention", False):
            h, r = block(hidden_states=h, temb=emb, encoder_hidden_states=cond)
        else:
            h, r = block(hidden_states=h, temb=emb)
        res, out[f"down{i}"] = res + r, h
    h = out["mid"] = net.mid_block(h, emb, encoder_hidden_states=cond)
    for i, block in enumerate(net.up_blocks):
        skip, res = res[-len(block.resnets) :], res[: -len(block.resnets)]
        kw = {"encoder_hidden_states": cond} if getattr(block, "has_cross_attention", False) else {}
        h = out[f"up{i}"] = block(hidden_states=h, temb=emb, res_hidden_states_tuple=skip, **kw)
    return out, net.conv_out(net.conv_act(net.conv_norm_out(h)))


@torch.no_grad()
def test_hooks_give_each_block_of_one_pass_as_the_blocks_run_by_hand(model):
    net, text, tok = model
    states = unet.empty_prompt_states(text, tok, torch.device("cpu"))
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    want, final = _by_hand(net, x, 300, states)
    # the hand-run chain is the model's own forward pass
    full = net(x, torch.full((2,), 300), encoder_hidden_states=states.expand(2, -1, -1)).sample
    torch.testing.assert_close(final, full)
    got = unet_blocks.pooled_blocks(net, x, 300, states, BLOCKS)
    assert list(got) == list(BLOCKS)
    for b in BLOCKS:
        torch.testing.assert_close(got[b], want[b].mean(dim=(2, 3)))
    assert [got[b].shape[1] for b in BLOCKS] == unet_blocks.block_widths(NAME, BLOCKS)
    # one block alone: the same values from a pass that stops there
    for b in BLOCKS:
        torch.testing.assert_close(unet_blocks.pooled_blocks(net, x, 300, states, [b])[b], got[b])


@torch.no_grad()
def test_a_pass_stops_after_the_last_block_asked_for(model):
    net, text, tok = model
    states = unet.empty_prompt_states(text, tok, torch.device("cpu"))
    ran = []
    handles = [
        m.register_forward_hook(lambda *_a, name=name: ran.append(name))
        for name, m in (("mid", net.mid_block), ("up0", net.up_blocks[0]), ("out", net.conv_out))
    ]
    try:
        x = torch.randn(1, 4, 8, 8)
        unet_blocks.pooled_blocks(net, x, 10, states, ["down1"])
        assert ran == []
        unet_blocks.pooled_blocks(net, x, 10, states, ["down0", "mid"])
        assert ran == ["mid"]
        unet_blocks.pooled_blocks(net, x, 10, states, ["up1"])  # the last block: conv_out not run
        assert ran == ["mid", "mid", "up0"]
        net(x, torch.full((1,), 10), encoder_hidden_states=states)  # no stop hook left behind
        assert ran == ["mid", "mid", "up0", "mid", "up0", "out"]
    finally:
        for h in handles:
            h.remove()
    with pytest.raises(ExplorerError, match="no block up7"):
        unet_blocks.pooled_blocks(net, x, 10, states, ["up7"])


@torch.no_grad()
def test_the_stored_value_is_the_mean_over_seeded_noise_draws(images):
    space = unet.load_unet(NAME, "cpu")
    hashes = [embeddings.image_hash(im) for im in images]
    draws = [unet_blocks.draw_seeds(h, 3) for h in hashes]
    assert [d[0] for d in draws] == [unet.seed_from_hash(h) for h in hashes]  # draw 0: plain
    assert all(d[1] == d[0] + 1 and d[2] == d[0] + 2 for d in draws)
    ref = UNetRef(NAME, (200, 600), ("down1", "up0"), 3)
    got = unet_blocks.block_rows(space, images, ref, hashes=hashes)
    z = space.vae.encode(
        imaging.to_tensor([imaging.prepare(im, 64, "square") for im in images]), tiled=False
    ).mean
    cols, singles = [], []
    for t in (200, 600):
        per_draw = []
        for d in range(3):
            noise = unet.seeded_noise(z.shape[1:], [s[d] for s in draws])
            x = unet.noised(z, noise, t, space.scheduler)
            f = unet_blocks.pooled_blocks(space.unet, x, t, space.text_states, ref.blocks)
            per_draw.append(torch.cat([f["down1"], f["up0"]], dim=1))
        cols.append(torch.stack(per_draw).mean(dim=0))
        singles.append(per_draw)
    np.testing.assert_allclose(got, torch.cat(cols, dim=1).numpy(), rtol=1e-5, atol=1e-6)
    assert got.shape == (3, 2 * (64 + 64))
    assert not torch.allclose(singles[0][0], singles[0][1])  # the draws are different noise
    # one draw of the mid block is the plain UNet space, value for value
    plain = unet_blocks.block_rows(space, images, UNetRef(NAME, (200,)), hashes=hashes)
    np.testing.assert_allclose(plain, space.features(images, 200, hashes=hashes), atol=1e-6)


@torch.no_grad()
def test_three_prompts_give_three_text_embeddings_and_the_label_caption_names_the_label(model):
    _net, text, tok = model
    captions = [unet_blocks.caption(p, "red_panda") for p in unet_blocks.PROMPTS]
    assert captions[0] == "" and captions[1] == unet_blocks.NEUTRAL_CAPTION
    assert "red panda" in captions[2] and captions[2] == "a photo of a red panda"
    states = unet_blocks.prompt_states(text, tok, captions, torch.device("cpu"))
    assert states.shape == (3, 77, 32)
    for i in range(3):
        for j in range(i + 1, 3):
            assert not torch.allclose(states[i], states[j]), (captions[i], captions[j])
    torch.testing.assert_close(states[:1], unet.empty_prompt_states(text, tok, torch.device("cpu")))
    with pytest.raises(ExplorerError, match="needs each image's label"):
        unet_blocks.caption("label", "")


def test_a_caption_changes_the_rows(images):
    plain = embeddings.embed(f"unet:{NAME}@t200/up0", images)
    captioned = embeddings.embed(f"unet:{NAME}@t200/up0/p:a photo of a person", images)
    assert plain.shape == captioned.shape == (3, 64)
    assert not np.allclose(plain, captioned)


def test_refs_round_trip_and_old_refs_keep_their_cache_key():
    r = unet_blocks.parse_ref(f"{NAME}@t50,0/up1+down0..1/s3/p:a photo / of x")
    assert r == UNetRef(NAME, (0, 50), ("down0", "down1", "up1"), 3, "a photo / of x")
    assert unet_blocks.parse_ref(r.ref) == r
    plain = unet_blocks.parse_ref(f"{NAME}@t200")
    assert plain.plain and plain.ref == f"{NAME}@t200" and unet_blocks.parse_ref(NAME) == plain
    assert unet_blocks.block_cache_key(plain, None, "cpu") == unet.unet_cache_key(
        NAME, 200, "mean", "cpu"
    )
    keys = {
        unet_blocks.block_cache_key(unet_blocks.parse_ref(f"{NAME}@t200{tail}"), None, "cpu")
        for tail in ("", "/mid/s2", "/up1", "/up1/s2", "/up1/p:a photo", ",400/up1")
    }
    assert len(keys) == 6
    assert unet_blocks.parse_blocks("down0..2,mid,up1") == ("down0", "down1", "down2", "mid", "up1")
    with pytest.raises(ExplorerError, match="mid block alone"):
        embeddings.embed(f"unet:{NAME}@t200/up0", [], pooling="mean+down")
    for bad, match in [
        (f"{NAME}@t1000/up0", "0 to 999"),
        (f"{NAME}@t200/side3", "Unknown UNet block"),
        (f"{NAME}@t200/up0/s99", "1 to 16"),
        (f"{NAME}/up0", "timestep before the block"),
        (f"{NAME}@t200/p:" + "x" * 300, "up to 200"),
    ]:
        with pytest.raises(ExplorerError, match=match):
            unet_blocks.parse_ref(bad)
    assert unet.model_ref(f"{NAME}@t100/up1/s4", 200) == f"{NAME}@t100/up1/s4"


def test_flops_grow_along_the_pass_and_sum_to_the_whole_forward():
    from diffusers import UNet2DConditionModel
    from torch.utils.flop_counter import FlopCounterMode

    flops = unet_blocks.pass_flops(NAME)
    assert list(flops) == [*BLOCKS, "out"]
    values = list(flops.values())
    assert all(a < b for a, b in itertools.pairwise(values))
    with torch.device("meta"):
        net = UNet2DConditionModel.from_config(unet_blocks.unet_config(NAME))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(
            torch.empty(1, 4, 8, 8, device="meta"),
            torch.full((1,), 500, device="meta"),
            encoder_hidden_states=torch.empty(1, 77, 32, device="meta"),
        )
    assert flops["out"] == counter.get_total_flops()


def test_cost_and_the_public_cpu_budget(monkeypatch, images):
    flops = unet_blocks.pass_flops(NAME)
    per = tiny_models.UNET.cpu_seconds_per_image
    cost = unet_blocks.estimate(
        NAME, 10, timesteps=3, blocks=["down0", "up0"], seeds=2, prompts=2, device="cpu"
    )
    assert cost.passes == 10 * 3 * 2 * 2 and cost.deepest == "up0"
    assert cost.flops == cost.passes * flops["up0"]
    assert cost.seconds == pytest.approx(cost.passes * per * flops["up0"] / flops["mid"])
    assert unet_blocks.estimate(NAME, 10, timesteps=1, blocks=["mid"], seeds=1).seconds == (
        pytest.approx(10 * per)  # one pass to the mid block: the spec's own figure
    )
    gpu = unet_blocks.estimate(NAME, 10, timesteps=3, blocks=["up0"], seeds=2, device="cuda")
    assert gpu.seconds is None
    unet_blocks.check_budget(cost, "This")  # private: allowed
    monkeypatch.setenv("EXPLORER_PUBLIC", "1")
    big = unet_blocks.estimate(NAME, 200, timesteps=7, blocks=["up1"], seeds=4, device="cpu")
    with pytest.raises(public.PublicModeError, match="at most 120 s"):
        unet_blocks.check_budget(big, "This sweep")
    unet_blocks.check_budget(gpu, "This")  # a GPU is not priced in CPU seconds
    many = images * 40
    with pytest.raises(public.PublicModeError, match="120 s"):
        embeddings.embed(f"unet:{NAME}@t0,50,100/up1/s4", many, device="cpu")
