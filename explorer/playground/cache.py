"""Trained playground models, cached so that 30 users opening the tab at once train once.

``ModelCache`` keeps models in memory (the shared bounded :class:`~explorer.core.lru.LRU`, keyed by
``TrainConfig``, built once per key: concurrent callers of one config wait for the single
training) and, unless its root is None, on disk (``<root>/<cfg.key()>.pt``: the state dict via
``torch.save``, written atomically, read back with ``torch.load(weights_only=True)``; a damaged
file is deleted and retrained; at most ``max_files`` files, least recently used go first).
Trainings themselves never overlap: ``explorer.playground.digits.train`` holds a process-wide lock.
``get_trained`` goes through one process-wide cache under ``default_cache_dir()``; while a class
pack is open (``EXPLORER_PACK``) the pack's trained models are read beneath it (``under``: a
folder only ever read, never touched, pruned or written).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from explorer.core import settings
from explorer.core.files import atomic_write
from explorer.core.lru import LRU
from explorer.core.progress import Progress
from explorer.playground.digits import FORMAT_VERSION, Net, TrainConfig, Trained, train

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """() -> Path: ``<EXPLORER_CACHE_DIR>/playground`` (default ``~/.cache/latent-space-explorer``)."""
    return settings.get().cache_dir / "playground"


class ModelCache:
    """Trained models by config: in memory (LRU of ``max_items``) and, unless ``root`` is None,
    on disk under ``root`` (one ``<cfg.key()>.pt`` per config). Thread-safe; concurrent callers
    of one config wait for a single training, and trainings never overlap (``_TRAIN_LOCK``)."""

    def __init__(
        self,
        root: Path | str | None = None,
        max_items: int = 8,
        max_files: int = 256,
        *,
        under: Path | str | None = None,
    ) -> None:
        self.root = Path(root) if root is not None else None
        self.under = Path(under) if under is not None else None
        self.max_files = max_files  # ~200 KB per default-size file
        self.trainings = 0  # trainings run by this cache (hits in memory or on disk don't count)
        self._items: LRU[Trained] = LRU(max_items)
        self._count_lock = threading.Lock()

    def _path(self, cfg: TrainConfig) -> Path | None:
        return None if self.root is None else self.root / f"{cfg.key()}.pt"

    def get(self, cfg: TrainConfig, progress: Progress | None = None) -> Trained:
        """TrainConfig -> Trained: from memory, else from disk, else trained (and stored)."""

        def build() -> Trained:
            hit = self._load(cfg)
            if hit is not None:
                if progress is not None:
                    progress(1.0, f"{cfg.model}: loaded from cache")
                return hit
            trained = train(cfg, progress)
            with self._count_lock:
                self.trainings += 1
            self.save(trained)
            return trained

        return self._items.get_or_build(cfg, build)

    def has(self, cfg: TrainConfig) -> bool:
        """Whether ``cfg`` is trained already (in memory or on disk): getting it costs no
        training."""
        path = self._path(cfg)
        return cfg in self._items or (path is not None and path.exists())

    def _load(self, cfg: TrainConfig) -> Trained | None:
        path = self._path(cfg)
        if path is not None and path.exists():
            return self._read(cfg, path, own=True)
        below = None if self.under is None else self.under / f"{cfg.key()}.pt"
        if below is not None and below.exists():
            return self._read(cfg, below, own=False)
        return None

    def _read(self, cfg: TrainConfig, path: Path, own: bool) -> Trained | None:
        """The model stored at ``path``, or None; a damaged file of this cache's own is deleted
        (one ``under`` it is only reported)."""
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            if blob["format"] != FORMAT_VERSION or blob["config"] != asdict(cfg):
                raise ValueError("config or format mismatch")
            net = Net(cfg)
            net.load_state_dict(blob["state"])
            net.eval()
            if own:
                with contextlib.suppress(OSError):
                    os.utime(path)  # the mtime orders files for pruning: least recently used first
            return Trained(cfg, net, blob["losses"].numpy(), from_disk=True)
        except Exception as exc:  # damaged or foreign file: drop it and train again
            log.warning("playground cache %s unreadable (%s); retraining", path, exc)
            if own:
                with contextlib.suppress(OSError):
                    path.unlink()
            return None

    def save(self, trained: Trained) -> Path | None:
        """Store ``trained`` on this cache's disk (atomically); -> its file, or None (no disk,
        or the write failed: logged)."""
        path = self._path(trained.cfg)
        if path is None:
            return None
        blob = {
            "format": FORMAT_VERSION,
            "config": asdict(trained.cfg),
            "state": trained.net.state_dict(),
            "losses": torch.from_numpy(np.asarray(trained.losses, dtype=np.float64)),
        }
        try:
            atomic_write(path, lambda fh: torch.save(blob, fh))
            self._prune()
        except OSError as exc:  # a read-only or full disk only costs the next process a retrain
            log.warning("playground cache: could not write %s (%s)", path, exc)
            return None
        return path

    def _prune(self) -> None:
        """Keep the newest ``max_files`` .pt files; drop temp files older than an hour."""
        assert self.root is not None
        now, files = time.time(), []
        for p in self.root.iterdir():
            with contextlib.suppress(OSError):
                mtime = p.stat().st_mtime
                if p.name.endswith(".tmp") and now - mtime > 3600:
                    p.unlink()
                elif p.suffix == ".pt" and not p.name.startswith("."):
                    files.append((mtime, p.name, p))
        for *_, p in sorted(files)[: max(0, len(files) - self.max_files)]:
            with contextlib.suppress(OSError):
                p.unlink()


_DEFAULT_CACHE: ModelCache | None = None
_DEFAULT_CACHE_LOCK = threading.Lock()


def default_cache() -> ModelCache:
    """() -> the process-wide ModelCache (disk: ``default_cache_dir()``; the open class pack's
    trained models beneath it), made on first use and again when another pack is opened."""
    global _DEFAULT_CACHE
    from explorer.core import pack

    found = pack.active_root()
    under = None if found is None else found / pack.PLAYGROUND_DIR
    with _DEFAULT_CACHE_LOCK:
        if _DEFAULT_CACHE is None or _DEFAULT_CACHE.under != under:
            _DEFAULT_CACHE = ModelCache(default_cache_dir(), under=under)
        return _DEFAULT_CACHE


def get_trained(cfg: TrainConfig, progress: Progress | None = None) -> Trained:
    """TrainConfig -> Trained through the process-wide cache (disk: ``default_cache_dir()``)."""
    return default_cache().get(cfg, progress)
