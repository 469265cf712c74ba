"""The main process's side of the GPU work: what the features call instead of running a model.

Each entry point runs the model here, as ever, except in the main process of a ZeroGPU Space
(:func:`explorer.core.gpu.offloaded`), where it sends jobs to :func:`explorer.spaces.gpu_work.run`
and keeps every cache itself:

* :func:`embed_runner` -- the :data:`explorer.spaces.embed.Runner` that
  :func:`~explorer.spaces.embed.embed` uses there: it gets only the images that are not in the
  embedding cache (so cached work never asks for GPU time) and sends them in chunks that fit
  under :data:`explorer.core.gpu.CAP_S`, reporting progress between chunks;
* :func:`fetch` -- a model's files into the Hugging Face cache, here, before a GPU call needs
  them (a download is not GPU time);
* :func:`open_vae` -- the lab's VAE: a :class:`~explorer.models.vae.VAE`, or a
  :class:`RemoteVAE` with the same methods, each one GPU call;
* :func:`text_rows` -- CLIP text rows.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from explorer.core import gpu
from explorer.core.errors import ExplorerError
from explorer.core.lru import LRU
from explorer.core.progress import Progress, no_progress
from explorer.models import device as devices
from explorer.models import embedders, hub, registry
from explorer.models.specs import VAESpec
from explorer.models.vae import VAE, Posterior, VAEInfo, describe_vae, load_vae
from explorer.spaces import gpu_work

__all__ = [
    "MAX_CHUNK_IMAGES",
    "RemoteVAE",
    "call",
    "chunk_sizes",
    "embed_runner",
    "fetch",
    "open_vae",
    "text_rows",
]

MAX_CHUNK_IMAGES = 256
"""At most this many images per GPU call (what one call pickles stays bounded)."""


ABORTED = ("ZeroGPU worker error", "GPU task aborted")
"""The title and message of the error ``spaces`` raises when the worker it handed a job to died
(taken back, or killed, between two calls: the package can still take it for alive)."""


def _aborted(exc: BaseException) -> bool:
    return (getattr(exc, "title", None), getattr(exc, "message", None)) == ABORTED


def call(job: gpu_work.Job) -> object:
    """``gpu_work.run(job)``; a job's :class:`ExplorerError` is raised here, with its sentence.

    A job whose worker died under it (:data:`ABORTED`) is sent once more: the package forks a
    new worker for it. A job is arrays in, arrays out, so running it again changes nothing else.
    """
    try:
        out = gpu_work.run(job)
    except Exception as exc:
        if not _aborted(exc):
            raise
        out = gpu_work.run(job)
    if isinstance(out, gpu_work.Failure):
        raise out.error
    return out


# --------------------------------------------------------------------------- embeddings


def chunk_sizes(n: int, per_image_s: float, fixed_s: float, cap_s: float = gpu.CAP_S) -> list[int]:
    """``n`` images at ``per_image_s`` each plus ``fixed_s`` per call -> sizes of as few calls as
    fit under ``cap_s`` (and :data:`MAX_CHUNK_IMAGES`), as even as possible; at least one image
    per call."""
    if n <= 0:
        return []
    fit = int((cap_s - fixed_s) // per_image_s) if per_image_s > 0 else n
    per_call = max(1, min(MAX_CHUNK_IMAGES, fit))
    calls = math.ceil(n / per_call)
    base, extra = divmod(n, calls)
    return [base + (1 if i < extra else 0) for i in range(calls)]


def embed_runner(
    space: str, images: list[Image.Image], progress: Progress | None, asked: dict
) -> np.ndarray:
    """The ZeroGPU :data:`~explorer.spaces.embed.Runner`: ``images`` (the ones not cached) ->
    ``(n, D)`` rows, from one GPU call per chunk."""
    device = asked.get("device")
    job = gpu_work.EmbedRows(
        space,
        (),
        asked.get("folder"),
        asked.get("pooling"),
        int(asked.get("resolution") or 64),
        asked.get("batch_size"),
        str(device.type if isinstance(device, torch.device) else device or "cuda"),
    )
    sizes = chunk_sizes(len(images), job.per_image_s(), gpu.FLOOR_S + job.load_s())
    parts, done = [], 0
    for size in sizes:
        if progress is not None:
            progress(done / len(images), f"{done}/{len(images)} embedded on the GPU")
        chunk = tuple(images[done : done + size])
        parts.append(call(dataclasses.replace(job, images=chunk)))
        done += size
    if progress is not None:
        progress(1.0, f"{done}/{len(images)} embedded on the GPU")
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, 0), np.float32)


def fetch(family: str, ref: str, folder: str | None = None) -> None:
    """A Hub model of a space not in the local Hugging Face cache: download it here (nothing
    when it is cached, local, registered in code, or the Hub is out of reach: the GPU call then
    says why it cannot load it)."""
    from explorer.models import download

    try:
        if family == "vae":
            spec = registry.resolve(ref, folder)
        elif family == "unet":
            from explorer.spaces import unet_blocks

            spec = registry.resolve_unet(unet_blocks.parse_ref(ref).name)
        else:
            spec = registry.resolve_embedder(ref)
    except ExplorerError:
        return  # the GPU call raises the same error, with its sentence
    if hub.is_cached(spec) or not spec.repo_id or Path(spec.repo_id).exists():
        return
    if not hub.hub_reachable():
        return
    names = [spec.name] if family != "unet" else [spec.name, spec.vae]
    try:
        download.download(names, log=lambda _m: None)
    except ExplorerError:
        return


def text_rows(model: str, texts: list[str]) -> np.ndarray:
    """Strings -> ``(n, D)`` float32 L2-normalised text rows of a CLIP ``model``."""
    if not gpu.offloaded():
        return embedders.load_embedder(model).embed_texts(texts)
    fetch("clip", model)
    texts = tuple(str(t) for t in texts)
    return call(gpu_work.EmbedTexts(model, texts, devices.work_device().type))


# --------------------------------------------------------------------------- the lab's VAE


_INFOS: LRU[VAEInfo] = LRU(64)  # what a worker said about a model: (name, files) -> info


def _arrays(x: torch.Tensor) -> tuple[np.ndarray, ...]:
    return (x.detach().float().cpu().numpy(),)


class RemoteVAE:
    """A VAE whose passes run in ZeroGPU workers: :class:`~explorer.models.vae.VAE`'s lab
    methods, each one GPU call; its :class:`~explorer.models.vae.VAEInfo` comes from the
    preloaded model, or from what a worker sent back with its last result."""

    def __init__(self, spec: VAESpec, ref: str, folder: str | None, device: str = "cuda") -> None:
        self.spec = spec
        self.ref = ref
        self.folder = folder
        self.device = device  # where the workers run it (its info says what they report)

    @property
    def _key(self) -> tuple:
        return (self.spec.name, str(self.spec.encoder_path))

    def info(self) -> VAEInfo:
        key = ("vae", self.spec.name, self.spec.encoder_path, self.device)
        found = devices.PRELOADED.get(key)
        if isinstance(found, VAE):
            return found.info()
        info = _INFOS.get(self._key)
        if info is None:
            info = self._pass("info").info
        return info

    def _pass(self, op: str, arrays: tuple[np.ndarray, ...] = (), n: int = 0) -> gpu_work.VAEResult:
        out = call(gpu_work.VAEPass(self.ref, op, arrays, n, self.folder, self.device))
        _INFOS.put(self._key, out.info)
        return out

    name = property(lambda self: self.spec.name)
    codebook = property(lambda self: self.info().codebook)
    quantized = property(lambda self: self.info().codebook is not None)
    stochastic = property(lambda self: self.info().stochastic)
    latent_channels = property(lambda self: self.info().latent_channels)
    downscale = property(lambda self: self.info().downscale)
    scaling_factor = property(lambda self: self.info().scaling_factor)
    shift_factor = property(lambda self: self.info().shift_factor)

    def describe(self) -> str:
        return describe_vae(self.info())

    def timed_encode(self, x: torch.Tensor) -> tuple[Posterior, float]:
        out = self._pass("encode", _arrays(x))
        std = torch.from_numpy(out.arrays[1]) if len(out.arrays) > 1 else None
        return Posterior(torch.from_numpy(out.arrays[0]), std), out.seconds[0]

    def encode(self, x: torch.Tensor) -> Posterior:
        return self.timed_encode(x)[0]

    def timed_decode(self, z: torch.Tensor) -> tuple[torch.Tensor, float]:
        out = self._pass("decode", _arrays(z))
        return torch.from_numpy(out.arrays[0]), out.seconds[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.timed_decode(z)[0]

    def decode_each(self, zs, progress: Progress = no_progress) -> list[torch.Tensor]:
        progress(0.0, f"decoding {len(zs)} on the GPU")
        out = self._pass("decode", tuple(_arrays(z)[0] for z in zs))
        return [torch.from_numpy(a) for a in out.arrays]

    def roundtrips(self, x: torch.Tensor, n: int, progress: Progress = no_progress) -> list:
        progress(0.0, f"{n} round trips on the GPU")
        out = self._pass("roundtrips", _arrays(x), int(n))
        return [torch.from_numpy(a) for a in out.arrays]


def open_vae(ref: str, folder: str | None = None) -> VAE | RemoteVAE:
    """The lab's VAE for ``ref``: loaded here (the shared model cache), or, in a ZeroGPU
    Space's main process, a :class:`RemoteVAE` (nothing loaded here)."""
    if not gpu.offloaded():
        return load_vae(ref, folder)
    spec = registry.resolve(ref, folder)
    fetch("vae", ref, folder)
    return RemoteVAE(spec, ref, folder, devices.work_device().type)
