"""Image embedders (CLIP, DINOv2, a supervised ViT) behind one wrapper, :class:`Embedder`, and its
cached loader, :func:`load_embedder`. The only module that imports transformers.

Every embedder turns PIL images into L2-normalised float32 rows:

* clip -> the projected image features (``get_image_features(...).pooler_output``);
* dino -> the CLS token of ``last_hidden_state`` (after DINOv2's final layernorm), or the mean of
  the patch tokens, or both concatenated (``pooling``);
* vit  -> the CLS token of ``last_hidden_state`` (same pooling options as dino).

Images go through the model's own image processor, always the PIL backend so that the numbers
(and the on-disk cache keys) do not depend on whether torchvision is installed. Where the
processor is one whose steps :class:`explorer.images.preprocess.Recipe` reproduces (CLIP's, BiT's
for DINOv2, ViT's: resize, centre crop, rescale, normalise; :func:`recipe_for`), the batch takes
the faster way to the very same pixel values: Pillow's resize on a pool of threads on a CPU, or
the resize done on the GPU from pinned uint8 pixels, the next batch packed while the GPU runs
(:mod:`explorer.images.preprocess`); any other processor is called as it is.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable

import numpy as np
import torch

from explorer.core import pool
from explorer.core.errors import ExplorerError, ModelUnavailableError
from explorer.core.lru import LRU
from explorer.core.progress import Progress
from explorer.images import preprocess
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
    "recipe_for",
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


_RECIPE_PROCESSORS = {
    "CLIPImageProcessor",
    "BitImageProcessor",
    "ViTImageProcessor",
}
"""Image processors whose steps are resize, centre crop, rescale and normalise only (their PIL
backends, ``…Pil``, compute the pixels a :class:`~explorer.images.preprocess.Recipe` gives)."""
_KNOWN_STEPS = {
    "do_convert_rgb",
    "do_resize",
    "do_center_crop",
    "do_rescale",
    "do_normalize",
    "do_pad",
}


def _three(v: object) -> tuple[float, float, float]:
    values = [float(x) for x in v] if isinstance(v, (list, tuple)) else [float(v)] * 3
    if len(values) != 3:
        raise ValueError(v)
    return values[0], values[1], values[2]


def recipe_for(processor: object) -> preprocess.Recipe | None:
    """A Hugging Face image processor -> the :class:`~explorer.images.preprocess.Recipe` that
    gives its pixel values, or None where it does something a recipe does not (another class,
    the torchvision backend, padding, a longest-edge bound, a step it does not know)."""
    name = type(processor).__name__
    if name.removesuffix("Pil") not in _RECIPE_PROCESSORS or not name.endswith("Pil"):
        return None
    get = lambda k: getattr(processor, k, None)  # noqa: E731
    config = processor.to_dict() if hasattr(processor, "to_dict") else vars(processor)
    steps = {k for k, v in config.items() if k.startswith("do_") and v}
    if steps - _KNOWN_STEPS or get("do_pad"):
        return None
    try:
        size, crop = get("size"), get("crop_size")
        shortest = fixed = None
        if get("do_resize"):
            other = [
                k for k in ("longest_edge", "max_height", "max_width") if getattr(size, k, None)
            ]
            if other:
                return None
            if getattr(size, "shortest_edge", None):
                shortest = int(size.shortest_edge)
            elif getattr(size, "height", None) and getattr(size, "width", None):
                fixed = (int(size.height), int(size.width))
            else:
                return None
        return preprocess.Recipe(
            shortest_edge=shortest,
            size=fixed,
            resample=int(get("resample") if get("resample") is not None else 2),  # BILINEAR
            crop=(int(crop.height), int(crop.width)) if get("do_center_crop") else None,
            rescale=float(get("rescale_factor")) if get("do_rescale") else None,
            mean=_three(get("image_mean")) if get("do_normalize") else None,
            std=_three(get("image_std")) if get("do_normalize") else None,
        )
    except (AttributeError, TypeError, ValueError):  # a size the recipe cannot hold
        return None


class Embedder:
    """A loaded image embedder: PIL images in, L2-normalised float32 rows out. ``recipe``: its
    processor's steps where :func:`recipe_for` reads them (the fast preprocessing), else None."""

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
        self.recipe = recipe_for(processor)
        if self.recipe is not None and self.recipe.fixed_output is None:
            self.recipe = None

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

    @property
    def _on_gpu(self) -> bool:
        return self.recipe is not None and param_device(self.model).type == "cuda"

    def pixel_values(self, images: list) -> torch.Tensor:
        """RGB PIL images -> ``(N, 3, h, w)`` model inputs in the model's dtype on its device:
        the processor's ``pixel_values`` (the same numbers through :attr:`recipe` where there
        is one)."""
        where = param_device(self.model)
        if self.recipe is None:
            inputs = self.processor(images=images, return_tensors="pt")
            return inputs["pixel_values"].to(where, self.dtype)
        if where.type == "cuda":
            packed = preprocess.pack(images, self.recipe)
            return preprocess.pixel_values_on(packed, self.recipe, where, self.dtype)
        return preprocess.pixel_values(images, self.recipe).to(where, self.dtype)

    @staticmethod
    def _rgb(images: list) -> list:
        # Not every processor converts to RGB (ViT's does not): do it the app's way first.
        return [im if im.mode == "RGB" else to_rgb(im) for im in images]

    @torch.no_grad()
    def _embed_batch(self, images: list, pooling: str) -> np.ndarray:
        return self._forward(self.pixel_values(self._rgb(images)), pooling)

    @torch.no_grad()
    def _forward(self, pixels: torch.Tensor, pooling: str) -> np.ndarray:
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
        if not self._on_gpu:
            parts = run_batched(
                lambda a, b: self._embed_batch(images[a:b], pooling),
                len(images),
                batch_size or default_batch_size(self.device),
                progress,
                f"embedding with {self.name}",
            )
            return np.concatenate(parts, axis=0)
        recipe, n = self.recipe, len(images)
        ahead = pool.Ahead(lambda a, b: preprocess.pack(self._rgb(images[a:b]), recipe))

        @torch.no_grad()
        def batch(a: int, b: int) -> np.ndarray:
            packed = ahead.take(a, b)
            pixels = preprocess.pixel_values_on(
                packed, recipe, param_device(self.model), self.dtype
            )
            ahead.start(b, min(n, 2 * b - a))  # the next batch is packed while the GPU works
            return self._forward(pixels, pooling)

        try:
            parts = run_batched(
                batch,
                n,
                batch_size or default_batch_size(self.device),
                progress,
                f"embedding with {self.name}",
            )
        finally:
            ahead.close()
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
