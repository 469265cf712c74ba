"""Image embedders (CLIP, DINOv2, a supervised ViT) behind one wrapper, :class:`Embedder`, and its
cached loader, :func:`load_embedder`. The only module that imports transformers.

Every embedder turns PIL images into L2-normalised float32 rows:

* clip -> the projected image features (``get_image_features(...).pooler_output``);
* dino -> the CLS token of ``last_hidden_state`` (after DINOv2's final layernorm), or the mean of
  the patch tokens, or both concatenated (``pooling``);
* vit  -> the CLS token of ``last_hidden_state`` (same pooling options as dino).

Images go through the model's own image processor, always the PIL backend so that the numbers
(and the on-disk cache keys) do not depend on whether torchvision is installed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable

import numpy as np
import torch

from explorer.core.errors import ExplorerError, ModelUnavailableError
from explorer.core.lru import LRU
from explorer.core.progress import Progress
from explorer.images.io import to_rgb
from explorer.models import hub
from explorer.models.device import (
    cached_model,
    default_batch_size,
    embedder_dtype,
    param_device,
    pick_device,
    run_batched,
)
from explorer.models.registry import EmbedderSpec, resolve_embedder

__all__ = [
    "Embedder",
    "embedder_cache_key",
    "embedder_preprocessing",
    "load_embedder",
    "pool_tokens",
]

CacheKey = tuple[str, str, str, str]
_log = logging.getLogger(__name__)


def _l2_normalise(x: torch.Tensor) -> np.ndarray:
    x = x.float()
    return torch.nn.functional.normalize(x, dim=-1).cpu().numpy().astype(np.float32, copy=False)


def pool_tokens(hidden: torch.Tensor, pooling: str) -> torch.Tensor:
    """(N,T,D) tokens, CLS first -> (N,D) CLS, (N,D) mean of the others, or (N,2D) both."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "mean":
        return hidden[:, 1:].mean(dim=1)
    if pooling == "cls+mean":
        return torch.cat([hidden[:, 0], hidden[:, 1:].mean(dim=1)], dim=-1)
    raise ValueError(f"unknown pooling {pooling!r}")


def embedder_preprocessing(processor: object, pooling: str, dtype: torch.dtype) -> str:
    """A string that changes whenever the pixels the model sees or the pooling change."""
    config = processor.to_json_string() if hasattr(processor, "to_json_string") else repr(processor)
    digest = hashlib.sha256(config.encode()).hexdigest()[:12]
    return (
        f"{type(processor).__name__}:{digest};pooling={pooling};{str(dtype).replace('torch.', '')}"
    )


class Embedder:
    """A loaded image embedder: PIL images in, L2-normalised float32 rows out. ``device``: where
    it was loaded for; inputs go where its weights are."""

    def __init__(
        self,
        spec: EmbedderSpec,
        model: torch.nn.Module,
        processor: object,
        tokenizer: object | None,
        device: torch.device,
        dtype: torch.dtype,
        revision: str,
    ):
        self.spec = spec
        self.model = model
        self.processor = processor
        self.tokenizer = tokenizer
        self.device = device
        self.dtype = dtype
        self.revision = revision
        self.lock = threading.Lock()  # one forward pass at a time per model

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def family(self) -> str:
        return self.spec.family

    @property
    def pooling(self) -> str:
        return self.spec.pooling

    def check_pooling(self, pooling: str | None) -> str:
        return self.spec.check_pooling(pooling)

    def dim(self, pooling: str | None = None) -> int:
        """Length of one embedding row."""
        cfg = self.model.config
        if self.family == "clip":
            return int(cfg.projection_dim)
        return int(cfg.hidden_size) * (2 if self.check_pooling(pooling) == "cls+mean" else 1)

    def preprocessing(self, pooling: str | None = None) -> str:
        return embedder_preprocessing(self.processor, self.check_pooling(pooling), self.dtype)

    def cache_key(self, pooling: str | None = None) -> CacheKey:
        """(family, model id, revision, preprocessing) for :mod:`explorer.spaces.cache`."""
        return (
            self.family,
            self.spec.repo_id or self.name,
            self.revision,
            self.preprocessing(pooling),
        )

    def describe(self) -> str:
        return (
            f"{self.name} ({self.family}, {self.spec.source}), {self.dim()}-d, pooling "
            f"{self.pooling}, {str(self.dtype).replace('torch.', '')} on {self.device.type}"
        )

    def __repr__(self) -> str:
        return f"Embedder({self.describe()})"

    @torch.no_grad()
    def _embed_batch(self, images: list, pooling: str) -> np.ndarray:
        # Not every processor converts to RGB (ViT's does not): do it the app's way first.
        images = [im if im.mode == "RGB" else to_rgb(im) for im in images]
        inputs = self.processor(images=images, return_tensors="pt")
        pixels = inputs["pixel_values"].to(param_device(self.model), self.dtype)
        with self.lock:
            if self.family == "clip":
                feats = self.model.get_image_features(pixel_values=pixels).pooler_output
            else:
                feats = pool_tokens(self.model(pixel_values=pixels).last_hidden_state, pooling)
            return _l2_normalise(feats)

    def embed_images(
        self,
        images: Iterable,
        batch_size: int | None = None,
        progress: Progress | None = None,
        pooling: str | None = None,
    ) -> np.ndarray:
        """PIL images (any size/mode; alpha composited on white) -> (N, D) float32,
        L2-normalised rows.

        Batched (default :func:`explorer.models.device.default_batch_size`), halving the batch on
        out-of-memory.
        """
        images = list(images)
        pooling = self.check_pooling(pooling)
        if not images:
            return np.zeros((0, self.dim(pooling)), np.float32)
        parts = run_batched(
            lambda a, b: self._embed_batch(images[a:b], pooling),
            len(images),
            batch_size or default_batch_size(self.device),
            progress,
            f"embedding with {self.name}",
        )
        return np.concatenate(parts, axis=0)

    @torch.no_grad()
    def _embed_text_batch(self, texts: list[str]) -> np.ndarray:
        max_len = int(self.model.config.text_config.max_position_embeddings)
        tokens = self.tokenizer(
            texts, padding=True, truncation=True, max_length=max_len, return_tensors="pt"
        )
        where = param_device(self.model)
        with self.lock:
            feats = self.model.get_text_features(
                input_ids=tokens["input_ids"].to(where),
                attention_mask=tokens["attention_mask"].to(where),
            ).pooler_output
            return _l2_normalise(feats)

    def embed_texts(self, texts: Iterable, batch_size: int | None = None) -> np.ndarray:
        """CLIP only: strings -> (N, D) float32 L2-normalised text features (same space as
        :meth:`embed_images`)."""
        if self.family != "clip" or self.tokenizer is None:
            raise ExplorerError(
                f"{self.name} is a {self.family} model and cannot embed text: only CLIP "
                "models share a space with text. Pick a clip space."
            )
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim()), np.float32)
        parts = run_batched(
            lambda a, b: self._embed_text_batch(texts[a:b]),
            len(texts),
            batch_size or default_batch_size(self.device),
            None,
            f"embedding text with {self.name}",
        )
        return np.concatenate(parts, axis=0)


# --------------------------------------------------------------------------- loading


_PROCESSORS: LRU[object] = LRU(16)


def _processor_for(spec: EmbedderSpec) -> object:
    """The image processor of a Hub or local model (PIL backend), remembered: cheap without the
    weights."""
    found = _PROCESSORS.get(spec)
    if found is not None:
        return found
    from transformers import AutoImageProcessor  # heavy: imported on first use

    processor = hub.from_pretrained(
        AutoImageProcessor.from_pretrained,
        spec.repo_id,
        f"The image processor of {spec.name!r}",
        backend="pil",
    )
    return _PROCESSORS.put(spec, processor)


def embedder_cache_key(
    ref: str, device: torch.device | str | None = None, pooling: str | None = None
) -> CacheKey:
    """:meth:`Embedder.cache_key` without loading the weights of a Hub or local model (it reads
    the processor only); a model registered in code is built for it."""
    spec = resolve_embedder(ref)
    pooling = spec.check_pooling(pooling)
    if spec.build is not None:
        return load_embedder(ref, device).cache_key(pooling)
    preprocessing = embedder_preprocessing(_processor_for(spec), pooling, embedder_dtype(device))
    return (spec.family, spec.repo_id, hub.model_revision(spec), preprocessing)


def _from_pretrained(spec: EmbedderSpec, dtype: torch.dtype) -> tuple:
    """(model, processor, tokenizer or None) of a Hub (cache first) or local model."""
    from transformers import CLIPModel, CLIPTokenizer, Dinov2Model, ViTModel  # heavy

    what = f"Embedder {spec.name!r}"
    cls = {"clip": CLIPModel, "dino": Dinov2Model, "vit": ViTModel}[spec.family]
    kwargs: dict = {"dtype": dtype, "use_safetensors": True}
    if spec.family == "vit":
        kwargs["add_pooling_layer"] = False  # the CLS token is the embedding
    try:
        processor = _processor_for(spec)
        tokenizer = None
        if spec.family == "clip":
            tokenizer = hub.from_pretrained(CLIPTokenizer.from_pretrained, spec.repo_id, what)
        model = hub.from_pretrained(cls.from_pretrained, spec.repo_id, what, **kwargs)
    except ModelUnavailableError:
        raise
    except Exception as exc:  # a broken folder, pickled weights only, another architecture
        raise ModelUnavailableError(
            f"Could not load {spec.name!r} as a {spec.family} model ({cls.__name__}, "
            f"safetensors weights): {exc}. Check the folder or Hub id."
        ) from exc
    return model, processor, tokenizer


def _load_embedder(spec: EmbedderSpec, device: torch.device) -> Embedder:
    dtype = embedder_dtype(device)
    build = spec.build or (lambda: _from_pretrained(spec, dtype))
    model, processor, tokenizer = build()
    model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
    return Embedder(spec, model, processor, tokenizer, device, dtype, hub.model_revision(spec))


def load_embedder(ref: str, device: torch.device | str | None = None) -> Embedder:
    """Resolve ``ref`` and return the shared loaded :class:`Embedder` (once per process)."""
    spec = resolve_embedder(ref)
    device = torch.device(device) if device is not None else pick_device()
    key = ("embedder", spec.name, device.type)

    def build() -> Embedder:
        start = time.perf_counter()
        embedder = _load_embedder(spec, device)
        _log.info("loaded %s in %.2f s", spec.name, time.perf_counter() - start)
        return embedder

    return cached_model(key, build)
