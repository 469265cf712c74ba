"""Building a class pack: the models the lesson and the atlas use, fetched into the pack's own
Hugging Face cache; the sets embedded in every space; the lesson's precomputable results; a
manifest (:func:`explorer.core.pack.write_manifest`) with every file's hash.

What is stored, so that a classroom without internet waits for no download and little compute:

* ``hub/``: each model's snapshot (the same files `python -m explorer download` fetches), with
  the cache's links replaced by the files themselves, so the pack survives any copy;
* ``embeddings/``: every set in every space (the atlas's parameters, so opening a set reads its
  rows), and the Perturbations tab's / lesson's ladders of the astronaut in every model space;
* ``playground/``: the three playground models at the tab's default settings (the lesson's
  step 1 and the Autoencoders tab load them instead of training);
* ``sets/``: a copy of each set that does not ship with the app (a folder or a zip).

The embeddings are computed on the device this process runs on; their cache keys record the
dtype (float32 on a CPU, half precision on CUDA), so a pack built on a CPU serves CPU
classrooms (``python -m explorer classpack`` runs on the CPU unless ``--device auto``).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from explorer import atlas, datasets
from explorer.core import pack
from explorer.core.errors import ExplorerError, UnknownModelError
from explorer.datasets import ImageSet
from explorer.images import io as imaging
from explorer.models import download, registry
from explorer.spaces import embed as embeddings
from explorer.spaces import unet
from explorer.spaces.cache import EmbeddingCache

__all__ = [
    "MODEL_FAMILIES",
    "baseline_spaces",
    "build_pack",
    "model_names",
    "pack_spaces",
    "set_name",
]

MODEL_FAMILIES = ("vae", "clip", "dino", "vit", "unet")
"""The families whose spaces need a model; any other family of PLANS is a model-free baseline."""
PERTURB_PHOTO = "astronaut"  # the Perturbations tab's and the lesson's photo
_NO_BOUND_MB = 1e9  # the pack's own embedding cache is never pruned while it is written

Log = Callable[[str], None]


# --------------------------------------------------------------------------- what goes in


def model_names(choice: str | None = "default") -> list[str]:
    """``"default"`` (what `python -m explorer download` fetches: the default VAEs, CLIP and
    DINOv2), ``"all"`` (every registry VAE but the gated ones, every registry embedder) or
    comma-separated names (VAEs, embedders, UNet spaces) -> model names, in that order.
    :class:`UnknownModelError` names an unknown one."""
    text = (choice or "default").strip()
    if text == "default":
        return registry.default_models()
    if text == "all":
        return [n for n, s in registry.REGISTRY.items() if not s.gated] + list(registry.EMBEDDERS)
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    known = set(registry.available_models()) | set(registry.available_embedders())
    known |= set(registry.available_unets())
    unknown = [n for n in names if n.split("@", 1)[0] not in known]
    if unknown or not names:
        raise UnknownModelError(
            f"--models: unknown model {', '.join(map(repr, unknown)) or '(none given)'}. Give "
            "'default', 'all', or comma-separated names from `python -m explorer models`."
        )
    return names


def _space_of(name: str) -> str:
    base = name.split("@", 1)[0]
    if base in registry.available_unets():
        _, t = unet.split_model(name)
        return f"unet:{unet.model_ref(base, t)}"
    if name in registry.available_embedders():
        return f"{registry.resolve_embedder(name).family}:{name}"
    return f"vae:{name}"


def baseline_spaces() -> list[str]:
    """The model-free spaces :data:`explorer.spaces.embed.PLANS` offers (bare family names)."""
    return [f for f in embeddings.PLANS if f not in MODEL_FAMILIES]


def pack_spaces(models: Sequence[str]) -> list[str]:
    """Model names -> the space of each (``vae:taesd``, ``clip:clip-vit-b32``, ``unet:<name>@t200``),
    then the model-free baselines."""
    return [_space_of(m) for m in models] + baseline_spaces()


def set_name(source: str) -> str:
    """A ``--set`` value -> the set's name in the pack: ``bundled`` / ``augmented``, else the
    folder's or zip's name (letters, digits, ``._-`` only)."""
    text = str(source).strip()
    if text.lower() in ("bundled", "augmented"):
        return text.lower()
    path = Path(text).expanduser()
    stem = path.stem if path.suffix.lower() == ".zip" else path.name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or "set"


# --------------------------------------------------------------------------- the steps


def _fresh_folder(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExplorerError(
            f"--out {out} is not a new or empty folder: give the pack a folder of its own (a "
            "pack is refused once anything in it changes)."
        )
    out.mkdir(parents=True, exist_ok=True)


def _materialise(hub: Path) -> None:
    """The Hugging Face cache under ``hub`` with every link replaced by the file it points to
    (blobs, lock files dropped): plain files that any copy keeps."""
    for dirpath, _dirs, names in os.walk(hub):
        for name in names:
            path = Path(dirpath) / name
            if path.is_symlink():
                target = path.resolve(strict=True)
                tmp = path.with_name(f".{name}.materialise")
                shutil.copyfile(target, tmp)
                os.replace(tmp, path)
    for leftover in [*hub.glob("models--*/blobs"), hub / ".locks"]:
        shutil.rmtree(leftover, ignore_errors=True)


def _fetch(models: list[str], hub: Path, log: Log) -> list[dict[str, Any]]:
    """Fetch the Hub models into ``hub`` -> their manifest entries (models built in code, which
    need no download, are listed with ``repo_id`` None)."""
    with pack.hub_cache(hub):
        fetched = {f.name: f for f in download.fetch(models, log, cache_dir=hub)}
    entries = []
    for name in models:
        f = fetched.get(name)
        entries.append(
            {
                "name": name,
                "space": _space_of(name),
                "repo_id": f.repo_id if f else None,
                "revision": f.revision if f else None,
                "patterns": list(f.patterns) if f else [],
            }
        )
    _materialise(hub)
    return entries


def _copy_set(source: str, out: Path) -> dict[str, Any]:
    """A ``--set`` value -> its manifest entry; a folder or zip is copied into ``out/sets``."""
    name = set_name(source)
    if name in ("bundled", "augmented"):
        return {"name": name, "source": name, "path": None}
    src = Path(source).expanduser()
    if not src.exists():
        raise ExplorerError(
            f"--set {source}: no such folder or zip. Give 'bundled', a folder of class folders "
            "or a .zip of them."
        )
    dest = out / pack.SETS_DIR / (f"{name}.zip" if src.is_file() else name)
    if dest.exists():
        raise ExplorerError(f"--set {source}: two sets would be called {name!r}; rename one.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_file():
        shutil.copyfile(src, dest)
    else:
        litter = shutil.ignore_patterns(".*", "Thumbs.db", "desktop.ini", "__MACOSX")
        shutil.copytree(src, dest, ignore=litter, symlinks=False)
    return {"name": name, "source": "zip" if src.is_file() else "folder",
            "path": dest.relative_to(out).as_posix()}  # fmt: skip


def _load_set(entry: dict[str, Any], out: Path) -> ImageSet:
    if entry["path"] is None:
        return datasets.load_source(entry["source"])
    return datasets.load_source(out / entry["path"])


def _embed(
    image_set: ImageSet, spaces: list[str], cache: EmbeddingCache, log: Log
) -> tuple[list[str], dict[str, str]]:
    """Every space of ``spaces`` for the set, through the atlas's own build (so its cache keys
    are the atlas's), at most :data:`atlas.MAX_SPACES` at a time -> (spaces done, failures)."""
    done, failures = [], {}
    for k in range(0, len(spaces), atlas.MAX_SPACES):
        chunk = spaces[k : k + atlas.MAX_SPACES]
        started = time.perf_counter()
        try:
            built = atlas.build(image_set, chunk, "pca", None, cache)
        except ExplorerError as exc:  # every space of the chunk failed
            failures.update({s: str(exc) for s in chunk})
            continue
        failures.update(built.failures)
        done += [s.ref for s in built.spaces]
        took = time.perf_counter() - started
        log(f"  {image_set.name}: {', '.join(s.ref for s in built.spaces)} ({took:.0f} s)")
    return done, failures


def _perturbations(spaces: list[str], cache: EmbeddingCache, log: Log) -> list[str]:
    """The astronaut's ladders in every model space but the UNet's (the Perturbations tab's and
    the lesson's step 6) -> the spaces stored."""
    from explorer.perturb import measure as perturb_lab

    photo = imaging.load_image(imaging.example_images()[PERTURB_PHOTO])
    wanted = [s for s in spaces if s.split(":", 1)[0] in ("vae", "clip", "dino", "vit")]
    if not wanted:
        return []
    m = perturb_lab.measure(photo, wanted, None, cache)
    for space, why in m.failures.items():
        log(f"  warning: perturbations in {space} left out: {why}")
    stored = [s for s in wanted if s not in m.failures]
    log(f"  perturbations of the {PERTURB_PHOTO}: {', '.join(stored)}")
    return stored


def _playground(out: Path, log: Log) -> list[str]:
    """The three playground models at the tab's defaults, into ``out/playground`` (trained, or
    taken from this machine's playground cache) -> their file names."""
    from explorer.playground import digits as pg
    from explorer.playground.cache import ModelCache, get_trained

    into = ModelCache(out / pack.PLAYGROUND_DIR)
    names = []
    for kind in pg.MODELS:
        trained = get_trained(pg.TrainConfig(kind))
        path = into.save(trained)
        if path is None:
            raise ExplorerError(f"Could not write the playground model into {out}.")
        names.append(path.name)
    log(f"  playground: {', '.join(pg.MODELS)} at the default settings")
    return names


def _sizes(out: Path) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for path in out.rglob("*"):
        if path.is_file():
            top = path.relative_to(out).parts[0]
            sizes[top] = sizes.get(top, 0) + path.stat().st_size
    return sizes


# --------------------------------------------------------------------------- the pack


def build_pack(
    out: str | os.PathLike,
    *,
    sets: Sequence[str] = ("bundled",),
    models: str | Sequence[str] = "default",
    log: Log = print,
) -> dict[str, Any]:
    """Make a class pack in ``out`` (a new or empty folder): fetch ``models`` (see
    :func:`model_names`; a list of names is taken as it is) into its Hugging Face cache, copy and
    embed ``sets`` in every space, store the lesson's precomputable results, write the manifest.
    Needs the Hub (or a stand-in at ``HF_ENDPOINT``). -> the manifest."""
    out = Path(out).expanduser()
    names = model_names(models) if isinstance(models, str) else list(models)
    _fresh_folder(out)
    started = time.perf_counter()
    log(f"class pack {out}: {len(names)} model(s): {', '.join(names)}")
    model_entries = _fetch(names, out / pack.HUB_DIR, log)
    spaces = pack_spaces(names)
    set_entries = [_copy_set(s, out) for s in dict.fromkeys(sets or ("bundled",))]
    left_out: dict[str, str] = {}
    lesson: dict[str, Any] = {}
    with pack.hub_cache(out / pack.HUB_DIR):  # the models load from the pack, as in class
        cache = EmbeddingCache(out / pack.EMBEDDINGS_DIR, max_mb=_NO_BOUND_MB)
        for entry in set_entries:
            image_set = _load_set(entry, out)
            log(f"embedding {entry['name']} ({len(image_set)} images) in {len(spaces)} spaces")
            done, failures = _embed(image_set, spaces, cache, log)
            entry.update(images=len(image_set), spaces=done)
            left_out.update({f"{entry['name']} in {s}": why for s, why in failures.items()})
        lesson["perturbations"] = {PERTURB_PHOTO: _perturbations(spaces, cache, log)}
    lesson["playground"] = _playground(out, log)
    lesson["atlas"] = [e["name"] for e in set_entries]
    from explorer.models.device import pick_device

    manifest = pack.write_manifest(
        out,
        {
            "sets": set_entries,
            "models": model_entries,
            "spaces": spaces,
            "device": pick_device().type,
            "lesson": lesson,
            "left_out": left_out,
            "build_seconds": round(time.perf_counter() - started, 1),
            "sizes": _sizes(out),
        },
    )
    for what, why in left_out.items():
        log(f"warning: {what} left out: {why}")
    return manifest
