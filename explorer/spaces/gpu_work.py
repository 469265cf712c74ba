"""What runs under ``spaces.GPU``: jobs (images or arrays in, arrays out) and :func:`run`.

A job is a frozen dataclass that pickles (PIL images, numpy arrays, strings, numbers): ZeroGPU
sends it to a forked worker and the result back. ``compute()`` runs the model and returns arrays
(with a :class:`~explorer.models.vae.VAEInfo` for the VAE jobs); it writes no module state that
the main process would need to see (the main process keeps every cache, see
:mod:`explorer.spaces.gpu_calls`). ``seconds()`` estimates its GPU time; :func:`run`'s
``duration`` is that estimate through :func:`explorer.core.gpu.seconds` (floor, cap, whole
seconds). Jobs: :class:`EmbedRows` (a space's ``(n, D)`` rows), :class:`EmbedTexts` (CLIP text
rows), :class:`VAEPass` (encode, decode each, repeated round trips, or the model's info).

Models on a ZeroGPU Space. :func:`preload`, called by ``app.py`` at import, in the main thread,
after ``import spaces`` (as the ZeroGPU docs ask: "models must be placed on ``cuda`` at the root
module level"), loads the Space's own models (:func:`preloadable`) on ``"cuda"`` into
:data:`explorer.models.device.PRELOADED`. The package's CUDA emulation keeps their weights in
memory, writes them to its pack files at ``launch()`` and copies them to the GPU of every new
worker before its first call; a forked worker inherits the table, so no worker reads them from
disk and no call loads them. A **cold worker** (the first call on a GPU, a call after the GPU was
taken back or after a failed call) costs a fork of the main process, CUDA's initialisation and
that copy, all inside the call it serves: :data:`explorer.core.gpu.FLOOR_S` covers it. A model
the Space did not preload (another registry VAE or embedder, or a UNet that is not cached at
start) is downloaded by the main process first (outside GPU time) and loaded from disk in the
worker that needs it, into that worker's own copy of the model cache: once per worker, priced at
:data:`LOAD_S` in every call that uses it.

Off ZeroGPU nothing is preloaded and :func:`run` is a plain function: jobs run in this process,
on :func:`explorer.models.device.pick_device`, with the model cache as ever.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from explorer.core import gpu
from explorer.core.errors import ExplorerError
from explorer.models import device as devices
from explorer.models import embedders, hub, registry
from explorer.models.vae import VAEInfo, load_vae
from explorer.spaces import embed as embeddings

__all__ = [
    "LOAD_S",
    "PER_IMAGE_S",
    "VAE_PASS_S_PER_MPIX",
    "EmbedRows",
    "EmbedTexts",
    "Failure",
    "VAEPass",
    "VAEResult",
    "preload",
    "preloadable",
    "run",
]

_log = logging.getLogger(__name__)

# Estimates of GPU seconds (one ZeroGPU GPU, half precision), generous: a call that runs past its
# duration is the visitor's loss, a call that asks for too much only ranks lower in the queue.
# Against BENCHMARKS.md's H200 run: CLIP / DINOv2 end to end 352 / 334 img/s (0.003 s an image,
# bound by PIL preprocessing), the SD VAE 178 encodes and 76 decodes a second at 512² (0.02 and
# 0.05 s per megapixel): the figures below are 6-10x those.
PER_IMAGE_S = {"vae": 0.01, "clip": 0.02, "dino": 0.02, "vit": 0.02, "unet": 0.1}
"""Seconds per image embedded in a space of each family (preprocessing in the worker included;
a VAE space adds its encode pass at its resolution, see :data:`VAE_PASS_S_PER_MPIX`)."""
VAE_PASS_S_PER_MPIX = 0.5
"""Seconds per megapixel for one VAE encode or decode pass."""
LOAD_S = {"vae": 15.0, "embedder": 15.0, "unet": 45.0}
"""Seconds to load a model that is not preloaded, from disk, in a worker."""


def _cuda() -> torch.device:
    return torch.device("cuda")


# --------------------------------------------------------------------------- the models


def preloadable() -> list[tuple[str, str]]:
    """``(kind, name)`` of the models a ZeroGPU Space preloads: the default models (those
    ``preload_from_hub`` puts in its cache) and every model registered in code, VAEs
    (``"vae"``), embedders (``"embedder"``) and UNet spaces (``"unet"``), where loading them
    needs no download; and every cached UNet space."""
    registered_vaes = [n for n in registry.available_models() if registry.resolve(n).build]
    vaes = [s.name for s in registry.REGISTRY.values() if s.default] + registered_vaes
    embs = registry.default_embedders() + [
        n for n in registry.available_embedders() if registry.resolve_embedder(n).build
    ]
    out = [("vae", n) for n in dict.fromkeys(vaes) if hub.is_cached(registry.resolve(n))]
    out += [("embedder", n) for n in dict.fromkeys(embs)
            if hub.is_cached(registry.resolve_embedder(n))]  # fmt: skip
    out += [("unet", n) for n in registry.available_unets()
            if hub.is_cached(registry.resolve_unet(n))]  # fmt: skip
    return out


def _load(kind: str, name: str, device: torch.device) -> object:
    if kind == "vae":
        return load_vae(name, None, device)
    if kind == "embedder":
        return embedders.load_embedder(name, device)
    from explorer.spaces import unet

    return unet.load_unet(name, device)


def preload() -> list[str]:
    """On a ZeroGPU Space (main process, main thread, at import): load :func:`preloadable` on
    ``"cuda"`` into :data:`~explorer.models.device.PRELOADED` -> the names loaded. Elsewhere, or
    where CUDA is not emulated (``spaces`` without ZeroGPU), it does nothing and returns []."""
    if not gpu.offloaded() or not torch.cuda.is_available():
        return []
    loaded = []
    with devices.preloading():
        for kind, name in preloadable():
            try:
                _load(kind, name, _cuda())
            except ExplorerError as exc:  # not loadable here: a worker loads it if asked
                _log.warning("not preloaded: %s %s: %s", kind, name, exc)
                continue
            loaded.append(name)
    _log.info("preloaded for ZeroGPU: %s", ", ".join(loaded) or "nothing")
    return loaded


def _is_preloaded(kind: str, key: tuple) -> bool:
    return (kind, *key) in devices.PRELOADED


# --------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class Failure:
    """A job's :class:`ExplorerError`, returned instead of raised: ZeroGPU keeps only a
    ``gr.Error``'s message, and a worker whose call failed is not reused."""

    error: ExplorerError


@dataclass(frozen=True)
class EmbedRows:
    """``images`` -> ``(n, D)`` float32 rows in ``space`` (``"family:model"``), as
    :func:`explorer.spaces.embed.embed` computes the rows that are not cached."""

    space: str
    images: tuple[Image.Image, ...]
    folder: str | None = None
    pooling: str | None = None
    resolution: int = 64
    batch_size: int | None = None
    device: str = "cuda"

    def _plan(self) -> embeddings.Plan:
        family, ref = self.space.split(":", 1)
        o = embeddings.Options(
            self.folder, self.pooling, self.resolution, self.batch_size, torch.device(self.device)
        )
        return embeddings.PLANS[family](family, ref, o)

    def per_image_s(self) -> float:
        family, ref = self.space.split(":", 1)
        s = PER_IMAGE_S[family]
        if family == "vae":
            s += VAE_PASS_S_PER_MPIX * int(self.resolution) ** 2 / 1e6
        if family == "unet":  # one UNet pass per timestep and noise draw
            from explorer.spaces import unet_blocks

            parsed = unet_blocks.parse_ref(ref)
            s *= len(parsed.timesteps) * parsed.seeds
        return s

    def load_s(self) -> float:
        """0 when every model of the space is preloaded, else :data:`LOAD_S` of its kind."""
        family, ref = self.space.split(":", 1)
        if family == "vae":
            spec = registry.resolve(ref, self.folder)
            return (
                0.0
                if _is_preloaded("vae", (spec.name, spec.encoder_path, self.device))
                else LOAD_S["vae"]
            )
        if family == "unet":
            from explorer.spaces import unet_blocks

            name = registry.resolve_unet(unet_blocks.parse_ref(ref).name).name
            return 0.0 if _is_preloaded("unet", (name, self.device)) else LOAD_S["unet"]
        name = registry.resolve_embedder(ref).name
        return 0.0 if _is_preloaded("embedder", (name, self.device)) else LOAD_S["embedder"]

    def seconds(self) -> float:
        return gpu.FLOOR_S + self.load_s() + len(self.images) * self.per_image_s()

    def compute(self) -> np.ndarray:
        if not self.images:
            return np.zeros((0, 0), np.float32)
        return self._plan().compute(list(self.images), None)


@dataclass(frozen=True)
class EmbedTexts:
    """Strings -> ``(n, D)`` float32 L2-normalised CLIP text rows of ``model``."""

    model: str
    texts: tuple[str, ...]
    device: str = "cuda"

    def seconds(self) -> float:
        name = registry.resolve_embedder(self.model).name
        load = 0.0 if _is_preloaded("embedder", (name, self.device)) else LOAD_S["embedder"]
        return gpu.FLOOR_S + load + 0.01 * len(self.texts)

    def compute(self) -> np.ndarray:
        embedder = embedders.load_embedder(self.model, torch.device(self.device))
        return embedder.embed_texts(list(self.texts))


@dataclass(frozen=True)
class VAEResult:
    """A :class:`VAEPass`'s arrays, the seconds each pass took, and the model's info."""

    arrays: tuple[np.ndarray, ...]
    seconds: tuple[float, ...]
    info: VAEInfo


@dataclass(frozen=True)
class VAEPass:
    """One model's passes over float32 arrays, as :class:`~explorer.models.vae.VAE` runs them:

    * ``"encode"``: ``arrays`` = one (N,3,H,W) batch in [0, 1] -> (N,C,h,w) posterior mean and,
      for a KL VAE, std (scaled units);
    * ``"decode"``: ``arrays`` = (1,C,h,w) latents, each decoded on its own -> (1,3,8h,8w) images;
    * ``"roundtrips"``: ``arrays`` = one (1,3,H,W) image, ``n`` repeated round trips -> the ``n``
      images after each;
    * ``"info"``: nothing computed, only the model's :class:`~explorer.models.vae.VAEInfo`.
    """

    ref: str
    op: str
    arrays: tuple[np.ndarray, ...] = ()
    n: int = 0
    folder: str | None = None
    device: str = "cuda"

    def seconds(self) -> float:
        pixels = sum(a.shape[0] * a.shape[-2] * a.shape[-1] for a in self.arrays)
        if self.op == "decode":  # latents: each latent pixel is 8x8 image pixels (or 4x4)
            pixels *= 64
        passes = {"encode": 1, "decode": 1, "roundtrips": 2 * max(1, self.n)}.get(self.op, 0)
        spec = registry.resolve(self.ref, self.folder)
        key = (spec.name, spec.encoder_path, self.device)
        load = 0.0 if _is_preloaded("vae", key) else LOAD_S["vae"]
        return gpu.FLOOR_S + load + passes * VAE_PASS_S_PER_MPIX * pixels / 1e6

    def compute(self) -> VAEResult:
        vae = load_vae(self.ref, self.folder, torch.device(self.device))
        out: list[np.ndarray] = []
        took: list[float] = []
        if self.op == "encode":
            posterior, s = vae.timed_encode(torch.from_numpy(self.arrays[0]))
            out.append(posterior.mean.numpy())
            if posterior.std is not None:
                out.append(posterior.std.numpy())
            took.append(s)
        elif self.op == "decode":
            for z in self.arrays:
                x, s = vae.timed_decode(torch.from_numpy(z))
                out.append(x.numpy())
                took.append(s)
        elif self.op == "roundtrips":
            start = time.perf_counter()
            out = [x.numpy() for x in vae.roundtrips(torch.from_numpy(self.arrays[0]), self.n)]
            took.append(time.perf_counter() - start)
        elif self.op != "info":
            raise ValueError(f"unknown VAE pass {self.op!r}")
        return VAEResult(tuple(out), tuple(took), vae.info())


Job = EmbedRows | EmbedTexts | VAEPass


def _duration(job: Job) -> int:
    """:func:`run`'s ``duration``: called by ``spaces.GPU`` with ``run``'s arguments."""
    return gpu.seconds(job.seconds())


def _run(job: Job) -> Any:
    """A job -> its result, or a :class:`Failure` holding its :class:`ExplorerError`."""
    try:
        return job.compute()
    except ExplorerError as exc:
        return Failure(exc)


run = gpu.gpu(_duration)(_run)
"""The one GPU function (``spaces.GPU`` on a Space): ``run(job)`` -> ``job.compute()`` or a
:class:`Failure`. One function, so one pool of workers whatever the job."""
