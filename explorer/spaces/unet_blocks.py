"""Any UNet block at any timesteps, averaged over noise draws, under any prompt: images ->
(N, T*W) float32 rows of the extended ``unet`` space.

The model part of a UNet space ref (:func:`parse_ref`)::

    <name>@t<T>[,<T>...][/<block>[+<block>...]][/s<S>][/p:<caption>]

* ``t200`` or ``t0,50,100``: the timesteps (0-999); rows are timestep-major, then block;
* ``up1`` or ``down0+mid+up1``: blocks of the UNet, named in forward order ``down0, down1, ...,
  mid, up0, up1, ...`` (default ``mid``);
* ``s4``: the mean over 4 noise draws; draw ``d`` of an image is seeded with the image's content
  hash's seed (:func:`explorer.spaces.unet.seed_from_hash`) plus ``d``, so draw 0 is the noise of
  the plain UNet space and a result repeats (default 1);
* ``p:a photo``: the prompt, verbatim to the end of the ref (default: the empty prompt).

``name@t200`` is the original space (mid block, one draw, empty prompt): it keeps its cache key
(:func:`explorer.spaces.unet.unet_cache_key`) and its ``mean+down`` pooling. Every other ref is
pooled by the spatial mean of each block's output, inside the forward hook (an up block's
64x64 output of an SD UNet is never kept), and the pass stops after the last block asked for:
one forward pass per (image batch, timestep, noise draw) whatever the number of blocks
(:func:`pooled_blocks`).

Costs: :func:`pass_flops` counts each block's FLOPs on the model's architecture (meta tensors, no
weights); a pass through block ``b`` costs the spec's ``cpu_seconds_per_image`` (measured to the
mid block) scaled by the FLOPs to ``b`` over the FLOPs to the mid block (:func:`estimate`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from PIL import Image

from explorer.core import public
from explorer.core.errors import ExplorerError
from explorer.core.progress import Progress
from explorer.images import io as imaging
from explorer.models import hub, registry
from explorer.models.device import MODEL_CACHE, default_batch_size, pick_device, run_batched
from explorer.spaces import unet

__all__ = [
    "LABEL_TEMPLATE",
    "MAX_CAPTION_CHARS",
    "MAX_SEEDS",
    "MAX_TIMESTEPS",
    "NEUTRAL_CAPTION",
    "PROMPTS",
    "Cost",
    "UNetRef",
    "block_cache_key",
    "block_names",
    "block_rows",
    "block_widths",
    "caption",
    "check_budget",
    "draw_seeds",
    "estimate",
    "parse_blocks",
    "parse_ref",
    "pass_flops",
    "pooled_blocks",
    "prompt_states",
    "ref_cost",
    "sort_blocks",
    "unet_config",
]

PROMPTS = ("empty", "neutral", "label")
NEUTRAL_CAPTION = "a photo"
LABEL_TEMPLATE = "a photo of a {label}"
MAX_CAPTION_CHARS = 200  # CLIP reads 77 tokens; a longer caption only costs the parse
MAX_SEEDS = 16
MAX_TIMESTEPS = 16
_KIND_RANK = {"down": 0, "mid": 1, "up": 2}


# --------------------------------------------------------------------------- refs


def _block_key(block: str) -> tuple[int, int]:
    """``"up1"`` -> (2, 1): the forward order of a block name; ExplorerError for a bad name."""
    b = block.strip().lower()
    if b == "mid":
        return (1, 0)
    for kind in ("down", "up"):
        if b.startswith(kind) and b[len(kind) :].isdigit():
            return (_KIND_RANK[kind], int(b[len(kind) :]))
    raise ExplorerError(
        f"Unknown UNet block {block!r}: name blocks down0, down1, ..., mid, up0, up1, ... "
        "(ranges such as down0..3 are accepted)."
    )


def sort_blocks(blocks: Sequence[str]) -> tuple[str, ...]:
    """Block names -> distinct, lower-case, in forward order (down*, mid, up*)."""
    return tuple(sorted({b.strip().lower() for b in blocks}, key=_block_key))


def parse_blocks(text: str) -> tuple[str, ...]:
    """``"down0..3,mid,up1"`` (commas or ``+``) -> ``("down0", ..., "down3", "mid", "up1")``."""
    out: list[str] = []
    for part in (text or "").replace("+", ",").split(","):
        part = part.strip().lower()
        if not part:
            continue
        if ".." in part:
            head, _, last = part.partition("..")
            kind = head.rstrip("0123456789")
            first = head[len(kind) :]
            if kind not in ("down", "up") or not first.isdigit() or not last.isdigit():
                raise ExplorerError(f"Cannot read the block range {part!r}; write e.g. down0..3.")
            out += [f"{kind}{i}" for i in range(int(first), int(last) + 1)]
        else:
            _block_key(part)
            out.append(part)
    if not out:
        raise ExplorerError("Name at least one UNet block (e.g. mid, or down0..3,mid,up0..3).")
    return sort_blocks(out)


@dataclass(frozen=True)
class UNetRef:
    """A parsed UNet space ref: the model, its timesteps, blocks, noise draws and caption."""

    name: str
    timesteps: tuple[int, ...] = (unet.DEFAULT_TIMESTEP,)
    blocks: tuple[str, ...] = ("mid",)
    seeds: int = 1
    caption: str = ""

    @property
    def plain(self) -> bool:
        """The original space: one timestep, the mid block, one draw, the empty prompt."""
        return (
            len(self.timesteps) == 1 and self.blocks == ("mid",) and self.seeds == 1
        ) and not self.caption

    @property
    def ref(self) -> str:
        """The canonical model part of the space ref (``name@t200`` for a plain one)."""
        text = f"{self.name}@t{','.join(map(str, self.timesteps))}"
        if self.plain:
            return text
        text += f"/{'+'.join(self.blocks)}"
        if self.seeds != 1:
            text += f"/s{self.seeds}"
        return text + (f"/p:{self.caption}" if self.caption else "")

    def with_(self, **changes) -> UNetRef:
        fields = {k: getattr(self, k) for k in ("name", "timesteps", "blocks", "seeds", "caption")}
        fields.update(changes)
        return _checked(UNetRef(**fields))


def _timesteps(text: str, model: str) -> tuple[int, ...]:
    out = []
    for part in text.split(","):
        t = part.strip().lower().removeprefix("t").removeprefix("=")
        if not t.isdigit() or not 0 <= int(t) < 1000:
            raise ExplorerError(
                f"Timestep {part.strip()!r} in {model!r} is not a whole number from 0 to 999; "
                "write e.g. 'sd15-unet@t200' or 'sd15-unet@t0,100,200/up1'."
            )
        out.append(int(t))
    return tuple(sorted(set(out)))


def _checked(r: UNetRef) -> UNetRef:
    if not r.timesteps or len(r.timesteps) > MAX_TIMESTEPS:
        raise ExplorerError(f"Give 1 to {MAX_TIMESTEPS} timesteps for a UNet space.")
    if not 1 <= int(r.seeds) <= MAX_SEEDS:
        raise ExplorerError(f"The number of noise draws must be 1 to {MAX_SEEDS}, not {r.seeds}.")
    if len(r.caption) > MAX_CAPTION_CHARS:
        raise ExplorerError(
            f"The prompt is {len(r.caption):,} characters long; a UNet space takes up to "
            f"{MAX_CAPTION_CHARS} (CLIP's text encoder reads 77 tokens)."
        )
    return UNetRef(r.name, r.timesteps, sort_blocks(r.blocks), int(r.seeds), r.caption)


def parse_ref(model: str) -> UNetRef:
    """The model part of a UNet space ref (grammar in the module docstring) -> :class:`UNetRef`.
    ExplorerError with the expected form for anything else."""
    text = (model or "").strip()
    head, sep, rest = text.partition("/p:")
    caption = rest.strip() if sep else ""
    name, at, spec = head.partition("@")
    name = name.strip()
    if not at:
        if "/" in name:
            raise ExplorerError(
                f"Give the timestep before the block in {model!r}, e.g. '{name.split('/')[0]}"
                f"@t200/{name.split('/', 1)[1]}'."
            )
        return _checked(UNetRef(name, caption=caption))
    parts = spec.split("/")
    timesteps = _timesteps(parts[0], text)
    blocks: tuple[str, ...] = ("mid",)
    seeds = 1
    for part in parts[1:]:
        p = part.strip().lower()
        if p.startswith("s") and p[1:].isdigit():
            seeds = int(p[1:])
        elif p:
            blocks = parse_blocks(p)
    return _checked(UNetRef(name, timesteps, blocks, seeds, caption))


def caption(prompt: str, label: str | None = None) -> str:
    """A prompt condition of :data:`PROMPTS` (and the image's label for ``"label"``) -> its text."""
    if prompt == "empty":
        return ""
    if prompt == "neutral":
        return NEUTRAL_CAPTION
    if prompt == "label":
        if not label:
            raise ExplorerError("The label prompt needs each image's label.")
        return LABEL_TEMPLATE.format(label=str(label).replace("_", " ").strip())
    raise ExplorerError(f"Unknown prompt {prompt!r}; choose one of {', '.join(PROMPTS)}.")


def draw_seeds(image_hash: str, draws: int) -> list[int]:
    """A content hash and a number of draws -> the noise seed of each draw (draw 0 is the plain
    UNet space's seed, draw d adds d)."""
    base = unet.seed_from_hash(image_hash)
    return [(base + d) % 2**60 for d in range(int(draws))]


# --------------------------------------------------------------------------- the architecture


@lru_cache(maxsize=16)
def _config(name: str) -> str:
    spec = registry.resolve_unet(name)
    for kind in ("cuda", "mps", "cpu"):  # a loaded space: its own config
        space = MODEL_CACHE.get(("unet", spec.name, kind))
        if space is not None:
            return json.dumps(dict(space.unet.config))
    if spec.build is not None:
        net = spec.build()[0]
        return json.dumps(dict(net.config))
    path = hub.model_file(spec.repo_id, "config.json", f"UNet space {spec.name!r}", "unet")
    return path.read_text()


def unet_config(name: str) -> dict:
    """The UNet's diffusers config (``unet/config.json``; a registered model's own), no weights."""
    return json.loads(_config(registry.resolve_unet(name).name))


def block_names(config: dict) -> list[str]:
    """A UNet2DConditionModel config -> its block names in forward order."""
    downs = len(config["down_block_types"])
    mid = [] if config.get("mid_block_type", "UNetMidBlock2DCrossAttn") is None else ["mid"]
    return [f"down{i}" for i in range(downs)] + mid + [f"up{i}" for i in range(downs)]


def block_widths(name: str, blocks: Sequence[str]) -> list[int]:
    """The channels of each block's output (the width of its pooled rows), from the config:
    down i -> block_out_channels[i], mid -> the last, up i -> the reversed list's i-th."""
    config = unet_config(name)
    _check_blocks(name, blocks, config)
    channels = list(config["block_out_channels"])
    out = []
    for b in blocks:
        kind, i = _block_key(b)
        out.append(channels[i] if kind == 0 else channels[-1] if kind == 1 else channels[::-1][i])
    return out


def _check_blocks(name: str, blocks: Sequence[str], config: dict) -> None:
    have = block_names(config)
    missing = [b for b in blocks if b not in have]
    if missing:
        raise ExplorerError(
            f"The UNet {name!r} has no block {', '.join(missing)}; its blocks are "
            f"{', '.join(have)}."
        )


@lru_cache(maxsize=16)
def _flops(name: str) -> tuple[tuple[str, float], ...]:
    from diffusers import UNet2DConditionModel  # heavy
    from torch.utils.flop_counter import FlopCounterMode

    spec = registry.resolve_unet(name)
    config = unet_config(name)
    side = max(1, int(spec.resolution) // 8)  # SD VAEs downsample 8x
    with torch.device("meta"):
        net = UNet2DConditionModel.from_config(config).eval()
    counter = FlopCounterMode(display=False)
    done: list[tuple[str, float]] = []
    blocks = dict(_modules(net))
    for b, module in blocks.items():
        module.register_forward_hook(
            lambda _m, _i, _o, b=b: done.append((b, float(counter.get_total_flops())))
        )
    dim = config.get("cross_attention_dim") or 768
    dim = dim[0] if isinstance(dim, list | tuple) else dim
    x = torch.empty((1, config.get("in_channels", 4), side, side), device="meta")
    states = torch.empty((1, 77, int(dim)), device="meta")
    with counter, torch.no_grad():
        net(x, torch.full((1,), 500, device="meta"), encoder_hidden_states=states)
    done.append(("out", float(counter.get_total_flops())))
    return tuple(done)


def pass_flops(name: str) -> dict[str, float]:
    """``{block: FLOPs of one image's pass up to the end of that block}`` (and ``"out"``: the whole
    pass), counted by ``torch.utils.flop_counter`` on the architecture at the spec's resolution
    (meta tensors: no weights, no compute)."""
    return dict(_flops(registry.resolve_unet(name).name))


def _modules(net: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    out = [(f"down{i}", b) for i, b in enumerate(net.down_blocks)]
    if getattr(net, "mid_block", None) is not None:
        out.append(("mid", net.mid_block))
    return out + [(f"up{i}", b) for i, b in enumerate(net.up_blocks)]


# --------------------------------------------------------------------------- pure tensors


class _Stop(Exception):
    """Raised by the last hooked block: the rest of the UNet is not needed."""


def pooled_blocks(
    net: torch.nn.Module,
    sample: torch.Tensor,
    timestep: int,
    text_states: torch.Tensor,
    blocks: Sequence[str],
) -> dict[str, torch.Tensor]:
    """(N,C,h,w) noisy latents, a timestep, (N or 1,L,D) text states -> ``{block: (N,C_b)}``
    float32, each block's output averaged over space inside its forward hook; one pass, stopped
    after the last block asked for (in forward order)."""
    modules = dict(_modules(net))
    wanted = sort_blocks(blocks)
    missing = [b for b in wanted if b not in modules]
    if missing:
        raise ExplorerError(
            f"This UNet has no block {', '.join(missing)}; its blocks are {', '.join(modules)}."
        )
    captured: dict[str, torch.Tensor] = {}
    last = wanted[-1]

    def hook(b: str):
        def on_output(_module, _inputs, output):
            h = output[0] if isinstance(output, tuple) else output  # down: (hidden, residuals)
            captured[b] = h.float().mean(dim=(2, 3))
            if b == last:
                raise _Stop

        return on_output

    handles = [modules[b].register_forward_hook(hook(b)) for b in wanted]
    if text_states.shape[0] == 1 and sample.shape[0] > 1:
        text_states = text_states.expand(sample.shape[0], -1, -1)
    t = torch.full((sample.shape[0],), int(timestep), dtype=torch.long, device=sample.device)
    try:
        net(sample, t, encoder_hidden_states=text_states, return_dict=False)
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    return {b: captured[b] for b in wanted}


@torch.no_grad()
def prompt_states(
    text_encoder: torch.nn.Module, tokenizer, captions: Sequence[str], device: torch.device
) -> torch.Tensor:
    """P captions, each padded to the tokenizer's maximum length -> (P,L,D) last hidden states
    (the empty caption gives :func:`explorer.spaces.unet.empty_prompt_states`)."""
    ids = tokenizer(
        list(captions), padding="max_length", max_length=tokenizer.model_max_length,
        truncation=True, return_tensors="pt",
    ).input_ids  # fmt: skip
    return text_encoder(ids.to(device))[0]


# --------------------------------------------------------------------------- the loaded space

_states_lock = threading.Lock()


def _caption_states(space: unet.UNetSpace, text: str) -> torch.Tensor:
    """(1,L,D) text states of ``text`` on ``space``'s encoder (the empty prompt: its own)."""
    if not text:
        return space.text_states
    with _states_lock:
        found = space.caption_states.get(text)
    if found is None:
        if space.text_encoder is None or space.tokenizer is None:
            raise ExplorerError(f"The UNet space {space.spec.name!r} has no text encoder loaded.")
        with space.lock:
            found = prompt_states(space.text_encoder, space.tokenizer, [text], space.device)
        with _states_lock:
            if len(space.caption_states) >= 256:  # bounded: one entry per distinct caption
                space.caption_states.clear()
            space.caption_states[text] = found
    return found


@torch.no_grad()
def block_rows(
    space: unet.UNetSpace,
    images: Sequence[Image.Image],
    ref: UNetRef,
    *,
    hashes: Sequence[str] | None = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """PIL images -> (N, T*W) float32: for each timestep of ``ref`` (in order), each block's
    pooled output (in forward order) averaged over ``ref.seeds`` noise draws. The VAE encodes a
    batch once; then one UNet pass per (timestep, draw) with hooks on every block."""
    from explorer.spaces.keys import image_hash

    images = list(images)
    widths = block_widths(ref.name, ref.blocks)
    if not images:
        return np.zeros((0, len(ref.timesteps) * sum(widths)), np.float32)
    hashes = list(hashes or [image_hash(im) for im in images])
    seeds = [draw_seeds(h, ref.seeds) for h in hashes]  # (N, S)
    prepared = [imaging.prepare(im, int(space.spec.resolution), "square") for im in images]
    states = _caption_states(space, ref.caption)

    def run(a: int, b: int) -> np.ndarray:
        z = space.vae.encode(imaging.to_tensor(prepared[a:b]), tiled=False).mean
        cols = []
        for t in ref.timesteps:
            sums: dict[str, torch.Tensor] = {}
            for d in range(ref.seeds):
                noise = unet.seeded_noise(z.shape[1:], [s[d] for s in seeds[a:b]])
                x = unet.noised(z, noise, t, space.scheduler).to(space.device, space.dtype)
                with space.lock:
                    got = pooled_blocks(space.unet, x, t, states, ref.blocks)
                for blk, v in got.items():
                    sums[blk] = v if blk not in sums else sums[blk] + v
            cols += [(sums[blk] / ref.seeds).cpu() for blk in ref.blocks]
        return torch.cat(cols, dim=1).numpy().astype(np.float32, copy=False)

    parts = run_batched(
        run,
        len(prepared),
        batch_size or default_batch_size(space.device) // 4,
        progress,
        f"UNet {'+'.join(ref.blocks)} of {space.spec.name} at t={','.join(map(str, ref.timesteps))}",
    )
    return np.concatenate(parts, axis=0)


def block_cache_key(
    ref: UNetRef, pooling: str | None = None, device: torch.device | str | None = None
) -> tuple[str, str, str, str]:
    """(family, model id, revision, preprocessing) of a UNet space ref; a plain ref keeps the
    original space's key, every other names its timesteps, blocks, draws and caption."""
    pooling = unet.check_pooling(pooling)
    if ref.plain:
        return unet.unet_cache_key(ref.name, ref.timesteps[0], pooling, device)
    if pooling != "mean":
        raise ExplorerError(
            f"The {pooling!r} pooling is for the mid block alone; {ref.ref!r} is pooled by the "
            "spatial mean of each block."
        )
    family, model_id, revision, prep = unet.unet_cache_key(
        ref.name, ref.timesteps[0], "mean", device
    )
    head = prep.split(";t=", 1)[0]
    dtype = prep.rsplit(";", 1)[1]
    prompt = f"caption:{ref.caption}" if ref.caption else "empty"
    prep = (
        f"{head};t={','.join(map(str, ref.timesteps))};noise=seed(sha256[:15])+draw,"
        f"mean-of-{ref.seeds};prompt={prompt};blocks={'+'.join(ref.blocks)};"
        f"pooling=spatial-mean-in-hook;{dtype}"
    )
    return (family, model_id, revision, prep)


# --------------------------------------------------------------------------- cost


@dataclass(frozen=True)
class Cost:
    """What a run costs: UNet passes, their FLOPs, and seconds on this CPU (None on a GPU)."""

    passes: int
    flops: float
    per_pass_flops: float
    deepest: str
    seconds: float | None


def estimate(
    name: str,
    n: int,
    *,
    timesteps: int,
    blocks: Sequence[str],
    seeds: int,
    prompts: int = 1,
    device: torch.device | str | None = None,
) -> Cost:
    """``n`` images x ``timesteps`` x ``seeds`` x ``prompts`` passes, each to the deepest of
    ``blocks`` -> :class:`Cost` (seconds from the spec's CPU figure, scaled by FLOPs)."""
    spec = registry.resolve_unet(name)
    flops = pass_flops(spec.name)
    wanted = sort_blocks(blocks)
    _check_blocks(spec.name, wanted, unet_config(spec.name))
    deepest = wanted[-1]
    passes = int(n) * int(timesteps) * int(seeds) * int(prompts)
    device = torch.device(device) if device is not None else pick_device()
    seconds = None
    if device.type == "cpu":
        seconds = (
            passes * spec.cpu_seconds_per_image * flops[deepest] / flops.get("mid", flops[deepest])
        )
    return Cost(passes, passes * flops[deepest], flops[deepest], deepest, seconds)


def check_budget(cost: Cost, what: str) -> None:
    """Public mode on a CPU: refuse a run estimated past :data:`explorer.spaces.unet.CPU_BUDGET_S`."""
    if cost.seconds is None or not public.public_mode() or cost.seconds <= unet.CPU_BUDGET_S:
        return
    raise public.PublicModeError(
        f"{what} would take about {cost.seconds:,.0f} s on this CPU ({cost.passes:,} UNet passes); "
        f"this public app runs at most {unet.CPU_BUDGET_S:.0f} s of UNet work per request: use "
        "fewer images, timesteps, noise draws or prompts, or run the explorer on a machine with "
        "a GPU."
    )


def ref_cost(ref: UNetRef, n: int, device: torch.device | str | None = None) -> Cost:
    """The :class:`Cost` of ``n`` images in the space ``ref``."""
    return estimate(
        ref.name, n, timesteps=len(ref.timesteps), blocks=ref.blocks, seeds=ref.seeds, device=device
    )
