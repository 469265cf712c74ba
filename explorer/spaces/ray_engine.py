"""The embedding step on Ray Data: ``(N,)`` PIL images -> ``(N, D)`` float32 rows, computed by an
actor pool on a Ray cluster (this machine's, or one named by ``address``).

:class:`RayEngine` is an :data:`explorer.spaces.embed.Runner`: pass it to
:func:`explorer.spaces.embed.embed` (or :func:`explorer.atlas.build`) as ``runner=`` and the
images the embedding cache does not hold yet become a Ray dataset of ``(index, hash, pixels)``
rows, ``map_batches`` runs them through an actor pool in which every actor loads the space's model
once (through explorer's own loaders, so registry names, local checkpoints and ``EXPLORER_PLUGINS``
models all work there), and the rows come back in the images' order. The cache is read and
written by the calling process only, under the same keys as a local run, so a later local run
finds every row.

Ray is optional (``pip install .[ray]``); :func:`require_ray` turns its absence into one sentence.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from explorer.core.errors import ExplorerError
from explorer.core.progress import Progress
from explorer.models import device as devices
from explorer.spaces import embed as embeddings

__all__ = ["INSTALL_HINT", "RayEngine", "require_ray"]

INSTALL_HINT = (
    "The Ray engine needs Ray Data, which is not installed: run `pip install .[ray]` "
    "(or `pip install 'ray[data]'`) and try again."
)
# Variables the workers need to find the same models and caches as this process.
_PASSED_ON = ("EXPLORER_", "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "TORCH_HOME")


def require_ray() -> Any:
    """The ``ray`` module, or :class:`ExplorerError` saying how to install it."""
    try:
        import ray
        import ray.data  # Ray Data is the part that matters: ray alone is not enough
    except ImportError:
        raise ExplorerError(INSTALL_HINT) from None
    return ray


def _worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """``EXPLORER_*`` / Hugging Face variables of this process, plus ``PYTHONPATH`` with the
    folder that holds ``explorer`` and the current one (so ``tests.tiny_models``-style plugins
    import on a local cluster; on a remote one install the package on every node)."""
    env = {k: v for k, v in os.environ.items() if k.startswith(_PASSED_ON)}
    paths = [str(Path(__file__).resolve().parents[2]), os.getcwd()]
    paths += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.update(extra or {})
    return env


def _rows(images: list[Image.Image]) -> list[dict[str, Any]]:
    """One dataset row per image: its index and its exact pixels (lossless, no re-encoding)."""
    return [
        {
            "index": i,
            "mode": im.mode,
            "width": im.size[0],
            "height": im.size[1],
            "pixels": im.tobytes(),
        }
        for i, im in enumerate(images)
    ]


def _images(batch: dict[str, np.ndarray]) -> list[Image.Image]:
    return [
        Image.frombytes(str(m), (int(w), int(h)), bytes(p))
        for m, w, h, p in zip(
            batch["mode"], batch["width"], batch["height"], batch["pixels"], strict=True
        )
    ]


class EmbedActor:
    """One Ray actor: loads ``space``'s model once (at start, so a model that cannot be opened
    fails the job at once), then turns batches of rows into ``{"index", "vector"}``."""

    def __init__(self, space: str, options: dict[str, Any]):
        self.space, self.options = space, dict(options)
        probe = Image.new("RGB", (64, 64), (127, 127, 127))
        embeddings.embed(space, [probe], [""], None, None, **self.options)  # loads the model

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        images = _images(batch)
        rows = embeddings.embed(self.space, images, [""] * len(images), None, None, **self.options)
        return {"index": np.asarray(batch["index"], np.int64), "vector": rows}


def _explorer_error(exc: BaseException) -> ExplorerError | None:
    """The :class:`ExplorerError` a worker raised, unwrapped from Ray's exceptions around it."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ExplorerError) and not type(exc).__module__.startswith("ray"):
            return exc
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
    return None


@dataclass
class RayEngine:
    """Runs the embedding step on Ray (see the module docstring).

    ``address``: None starts (or reuses) a local Ray; ``"auto"`` joins the cluster this machine
    belongs to; ``"ray://head:10001"`` connects through Ray Client. ``actors``: pool size
    (default: one per GPU, or one per ``cpus_per_actor`` CPUs). ``gpus_per_actor``: default 1
    where the cluster has GPUs, else 0 (the device, and so the cache key, follows). ``batch_size``:
    rows per ``map_batches`` call (default :func:`explorer.models.device.default_batch_size`).
    ``env``: more environment variables for the workers.
    """

    address: str | None = None
    actors: int | None = None
    gpus_per_actor: float | None = None
    cpus_per_actor: float = 1.0
    batch_size: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    _ray: Any = field(default=None, init=False, repr=False)

    def start(self) -> RayEngine:
        """Connect to (or start) Ray once; returns self."""
        if self._ray is None:
            ray = require_ray()
            if not ray.is_initialized():
                try:
                    ray.init(
                        address=self.address,
                        include_dashboard=False,
                        log_to_driver=False,
                        configure_logging=False,
                    )
                except (ConnectionError, RuntimeError, ValueError) as exc:
                    raise ExplorerError(
                        f"Cannot reach a Ray cluster at {self.address or 'this machine'}: "
                        f"{str(exc).strip().rstrip('.')}. Check --address (auto, or "
                        "ray://head:10001, which needs `pip install 'ray[client]'`)."
                    ) from exc
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False  # progress goes through explorer's own callback
            ctx.print_on_execution_start = False
            self._ray = ray
        return self

    def _gpus(self) -> float:
        if self.gpus_per_actor is not None:
            return float(self.gpus_per_actor)
        return 1.0 if self.start()._ray.cluster_resources().get("GPU", 0) > 0 else 0.0

    @property
    def device(self) -> str:
        """Where the actors run the models: ``"cuda"`` with GPUs per actor, else ``"cpu"``."""
        return "cuda" if self._gpus() > 0 else "cpu"

    def _pool_size(self, n_batches: int) -> int:
        if self.actors:
            return max(1, int(self.actors))
        res = self.start()._ray.cluster_resources()
        gpus = self._gpus()
        slots = res.get("GPU", 0) / gpus if gpus > 0 else res.get("CPU", 1) / self.cpus_per_actor
        return max(1, min(int(slots), n_batches))

    def __call__(
        self,
        space: str,
        images: list[Image.Image],
        progress: Progress | None,
        options: dict[str, Any],
    ) -> np.ndarray:
        """``(N,)`` images -> ``(N, D)`` float32 rows of ``space``, in order (a Runner)."""
        ray = self.start()._ray
        n = len(images)
        gpus = self._gpus()
        options = {**options, "device": options.get("device") or self.device}
        size = int(
            self.batch_size or options.get("batch_size") or devices.default_batch_size(self.device)
        )
        options["batch_size"] = size
        n_batches = max(1, math.ceil(n / size))
        ds = ray.data.from_items(_rows(images), override_num_blocks=n_batches)
        out = ds.map_batches(
            EmbedActor,
            fn_constructor_args=(space, options),
            batch_size=size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=self._pool_size(n_batches)),
            num_gpus=gpus,
            num_cpus=self.cpus_per_actor,
            runtime_env={"env_vars": _worker_env(self.env)},
        )
        result: np.ndarray | None = None
        done = 0
        try:
            for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
                vec = np.asarray(batch["vector"], np.float32)
                if result is None:
                    result = np.empty((n, vec.shape[1]), np.float32)
                result[np.asarray(batch["index"], np.int64)] = vec
                done += len(vec)
                if progress is not None:
                    progress(done / n, f"{done}/{n} embedded on Ray")
        except Exception as exc:
            err = _explorer_error(exc)
            if err is not None:
                raise ExplorerError(f"On Ray: {err}") from exc
            raise ExplorerError(
                f"The Ray job embedding {space} failed: {type(exc).__name__}: "
                f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
            ) from exc
        if result is None or done != n:
            raise ExplorerError(f"The Ray job embedding {space} returned {done} of {n} rows.")
        return result
