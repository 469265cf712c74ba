"""The semantic atlas: one image set embedded in several spaces, projected, measured, queried.

What the UI and CLI call for the atlas (no gradio here). An :class:`Atlas` holds the set, one
``(N, D)`` embedding per space, 2-D maps per projection method, and the metrics tables.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from . import embedders, embeddings, files, metrics, projection, registry, settings
from .cache import EmbeddingCache
from .datasets import ImageSet
from .errors import ExplorerError
from .runtime import LRU, Progress, no_progress

FAMILY_TITLES = {"vae": "VAE latents", "clip": "CLIP", "dino": "DINOv2", "vit": "ViT (ImageNet)"}
MAX_SPACES = 4
THUMB_SIDE = 96


@dataclass
class Space:
    """One embedding space of an atlas: ``key`` (csv column prefix), the ref it came from."""

    key: str
    ref: str
    family: str
    model: str

    @property
    def title(self) -> str:
        return f"{FAMILY_TITLES.get(self.family, self.family)} · {self.model}"


@dataclass
class Atlas:
    id: str
    images: ImageSet
    spaces: list[Space]
    embeddings: dict[str, np.ndarray]
    coords: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # method -> key -> xy
    failures: dict[str, str] = field(default_factory=dict)  # space ref -> message
    thumbs: list[str] = field(default_factory=list)
    source: str = ""

    @property
    def labels(self) -> list[str]:
        return list(self.images.labels)

    def space(self, key: str) -> Space:
        for s in self.spaces:
            if s.key == key:
                return s
        raise ExplorerError(f"This atlas has no space {key!r}.")

    def clip_space(self) -> Space | None:
        return next((s for s in self.spaces if s.family == "clip"), None)


# --------------------------------------------------------------------------- store


def atlas_nbytes(a: Atlas) -> int:
    """Roughly what an open atlas holds in memory: its decoded images and its vectors."""
    images = sum(im.width * im.height * len(im.getbands()) for im in a.images.images)
    vectors = sum(e.nbytes for e in a.embeddings.values())
    coords = sum(xy.nbytes for per in a.coords.values() for xy in per.values())
    return images + vectors + coords


class _Store:
    """Open atlases by id (the UI keeps only the id), least recently used closed first.

    Bounded twice: at most ``size`` atlases (EXPLORER_MAX_ATLASES, 64: a classroom's worth of
    sessions) and about ``max_mb`` of images and vectors (EXPLORER_ATLAS_MEMORY_MB, 2048; a
    bundled-set atlas is ~13 MB, 1,000 uploaded 512 px photos up to ~800 MB). The newest atlas
    is always kept, whatever its size.
    """

    def __init__(self, size: int | None = None, max_mb: float | None = None):
        self._lru: LRU[Atlas] = LRU(
            size if size is not None else (lambda: settings.get().max_atlases),
            (lambda: settings.get().atlas_memory_mb * 2**20) if max_mb is None else max_mb * 2**20,
            sizeof=atlas_nbytes,
        )

    @property
    def size(self) -> int:
        return self._lru.max_items

    @property
    def max_bytes(self) -> int:
        return int(self._lru.max_bytes or 0)

    @property
    def nbytes(self) -> int:
        return self._lru.nbytes

    def __len__(self) -> int:
        return len(self._lru)

    def ids(self) -> list[str]:
        return list(self._lru.keys())

    def put(self, atlas: Atlas) -> str:
        self._lru.put(atlas.id, atlas)
        return atlas.id

    def get(self, atlas_id: str | None) -> Atlas:
        found = self._lru.get(atlas_id or "")
        if found is None:
            raise ExplorerError(
                "No image set is open (or it was closed to free memory): open one first."
            )
        return found


STORE = _Store()


def thumb_dir() -> Path:
    """Where hover thumbnails are written (served by the app as static files)."""
    folder = files.tmp_root() / "thumbs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _write_thumbs(images: Sequence[Image.Image], hashes: Sequence[str], folder: Path) -> list[str]:
    out = []
    for im, h in zip(images, hashes, strict=True):
        path = folder / f"{h[:32]}.jpg"
        if not path.exists():
            t = im.copy()
            t.thumbnail((THUMB_SIDE, THUMB_SIDE))
            # sessions opening the same images write the same thumbnails at once: each write
            # goes through a temporary file of its own, so none publishes another's half file
            files.atomic_write(path, lambda fh, t=t: t.save(fh, "JPEG", quality=80))
        out.append(str(path))
    return out


# --------------------------------------------------------------------------- building


def default_spaces(folder: str | None = None) -> list[str]:
    """``vae:<default VAE>``, ``clip``, ``dino``: the three panels the product is about."""
    return [f"vae:{registry.default_vae(folder)}", "clip", "dino"]


def _keys(families: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    keys = []
    for f in families:
        seen[f] = seen.get(f, 0) + 1
        keys.append(f if seen[f] == 1 else f"{f}{seen[f]}")
    return keys


def build(
    image_set: ImageSet,
    spaces: Sequence[str] | None = None,
    method: str = "umap",
    folder: str | None = None,
    cache: EmbeddingCache | None = None,
    progress: Progress = no_progress,
    vae_resolution: int = 64,
    vae_pooling: str = "flatten",
) -> Atlas:
    """Embed ``image_set`` in each space, project with ``method``, keep what worked.

    A space whose model cannot be loaded (not cached while offline, say) is reported in
    ``failures`` and left out; only when every space fails is that an error.
    """
    spaces = list(spaces or default_spaces(folder))[:MAX_SPACES]
    if not spaces:
        raise ExplorerError("Choose at least one embedding space.")
    if len(image_set) < 3:
        raise ExplorerError("An atlas needs at least 3 images: add more images to the set.")
    parsed = [embeddings.parse_space(s, folder) for s in spaces]
    hashes = [embeddings.image_hash(im) for im in image_set.images]
    ok: list[tuple[str, str, str]] = []
    embs: dict[str, np.ndarray] = {}
    failures: dict[str, str] = {}
    n = len(spaces)
    for i, (ref, (family, model)) in enumerate(zip(spaces, parsed, strict=True)):
        share = 0.8 / n

        def prog(f: float, d: str, i=i, share=share, family=family) -> None:
            progress(0.05 + i * share + f * share, f"{FAMILY_TITLES.get(family, family)}: {d}")

        prog(0.0, f"embedding {len(image_set)} images")
        try:
            x = embeddings.embed(
                f"{family}:{model}",
                image_set.images,
                hashes,
                cache,
                prog,
                folder,
                resolution=vae_resolution,
                pooling=vae_pooling if family == "vae" else None,
            )
        except ExplorerError as exc:
            failures[ref] = str(exc)
            continue
        ok.append((ref, family, model))
        embs[ref] = x
    if not ok:
        detail = " ".join(f"{r}: {m}" for r, m in failures.items())
        raise ExplorerError(f"No embedding space could be computed. {detail}")
    keys = _keys([f for _, f, _ in ok])
    space_list = [Space(k, r, f, m) for k, (r, f, m) in zip(keys, ok, strict=True)]
    atlas = Atlas(
        id=uuid.uuid4().hex,
        images=image_set,
        spaces=space_list,
        embeddings={s.key: embs[s.ref] for s in space_list},
        failures=failures,
        thumbs=_write_thumbs(image_set.images, hashes, thumb_dir()),
        source=image_set.name,
    )
    progress(0.88, f"projecting ({method})")
    coords_for(atlas, method)
    progress(1.0, "done")
    return atlas


def coords_for(atlas: Atlas, method: str) -> dict[str, np.ndarray]:
    """The 2-D map of every space under ``method`` (computed once per atlas and method)."""
    if method not in atlas.coords:
        atlas.coords[method] = {
            s.key: projection.project(atlas.embeddings[s.key], method, seed=0) for s in atlas.spaces
        }
    return atlas.coords[method]


# --------------------------------------------------------------------------- numbers


def metrics_table(atlas: Atlas, method: str) -> pd.DataFrame:
    """One row per space: space, model, knn5, knn10, chance, silhouette, trustworthiness."""
    xy = coords_for(atlas, method)
    rows = []
    for s in atlas.spaces:
        m = metrics.space_metrics(atlas.embeddings[s.key], xy[s.key], atlas.labels)
        rows.append(
            {"space": s.key, "model": s.model, **{k: round(float(v), 4) for k, v in m.items()}}
        )
    return pd.DataFrame(
        rows, columns=["space", "model", "knn5", "knn10", "chance", "silhouette", "trustworthiness"]
    )


def overlap_table(atlas: Atlas, k: int = 10) -> pd.DataFrame:
    """Neighbour-set overlap between each pair of spaces (1 = the same k nearest neighbours)."""
    keys = [s.key for s in atlas.spaces]
    k = max(1, min(k, len(atlas.images) - 1))
    data = {
        a: [
            1.0
            if a == b
            else round(metrics.neighbour_overlap(atlas.embeddings[a], atlas.embeddings[b], k), 4)
            for b in keys
        ]
        for a in keys
    }
    df = pd.DataFrame(data, index=keys).T.reset_index().rename(columns={"index": f"overlap@{k}"})
    return df


MIN_PER_CLASS = 4  # a 5-NN majority of its own class needs at least 3 classmates
TIE = 0.02  # kNN accuracies closer than this are read as a tie


def verdict(table: pd.DataFrame, labels: Sequence[str] | None = None) -> str:
    """A sentence that reads the metrics table for a student (``labels``: the set's labels, to
    warn when classes are too small for the numbers to mean much)."""
    if table.empty:
        return ""
    chance = float(table["chance"].iloc[0])
    parts = [f"**{r.space}** {r.knn5:.0%}" for r in table.itertuples()]
    text = f"Leave-one-out 5-NN label accuracy: {', '.join(parts)} (chance {chance:.0%}). "
    if labels is not None:
        counts = pd.Series(list(labels)).value_counts()
        if len(counts) < 2:
            return (
                text + "With a single label there is nothing to compare: use two classes or more."
            )
        if counts.min() < MIN_PER_CLASS:
            return text + (
                f"Too few images per class to read much into these numbers (the smallest class "
                f"has {counts.min()}): use at least {MIN_PER_CLASS} per class, better 10 or more."
            )
    ranked = table.sort_values("knn5", ascending=False)
    best = ranked.iloc[0]
    if best.knn5 <= chance + TIE:
        return text + "No space groups this set by its labels better than chance."
    tied = ranked[ranked.knn5 >= best.knn5 - TIE].space.tolist()
    if len(tied) > 1:
        return text + f"{' and '.join(f'**{t}**' for t in tied)} group this set about equally well."
    return text + f"**{best.space}** groups this set by its labels best."


# --------------------------------------------------------------------------- queries


def neighbours(atlas: Atlas, index: int, k: int = 6) -> dict[str, list[tuple[int, float]]]:
    """For image ``index``, its ``k`` nearest neighbours (index, cosine) in every space."""
    n = len(atlas.images)
    if not 0 <= int(index) < n:
        raise ExplorerError(
            f"Image #{index} is not in this set: pick a number between 0 and {n - 1}."
        )
    k = max(1, min(k, n - 1))
    out = {}
    for s in atlas.spaces:
        idx, sim = metrics.nearest(atlas.embeddings[s.key], int(index), k)
        out[s.key] = [(int(i), float(v)) for i, v in zip(idx, sim, strict=True)]
    return out


def query_image(
    atlas: Atlas,
    image: Image.Image,
    k: int = 6,
    folder: str | None = None,
    cache: EmbeddingCache | None = None,
) -> dict[str, list[tuple[int, float]]]:
    """Embed an outside image in every space of the atlas; its top ``k`` matches in each."""
    out = {}
    for s in atlas.spaces:
        q = embeddings.embed(f"{s.family}:{s.model}", [image], None, cache, None, folder)[0]
        idx, sim = metrics.top_k_similar(atlas.embeddings[s.key], q, min(k, len(atlas.images)))
        out[s.key] = [(int(i), float(v)) for i, v in zip(idx, sim, strict=True)]
    return out


def text_query(atlas: Atlas, text: str, k: int = 8) -> tuple[list[tuple[int, float]], np.ndarray]:
    """A sentence -> cosine with every image's CLIP embedding -> top ``k`` and all scores."""
    text = (text or "").strip()
    if not text:
        raise ExplorerError("Type a sentence to search for, e.g. 'a photo of a cat'.")
    space = atlas.clip_space()
    if space is None:
        raise ExplorerError(
            "Text search needs a CLIP space: add CLIP to the atlas's spaces and reopen the set."
        )
    embedder = embedders.load_embedder(space.model)
    q = embedder.embed_texts([text])[0]
    x = atlas.embeddings[space.key]
    xn = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    scores = xn @ (q / max(float(np.linalg.norm(q)), 1e-12))
    idx, sim = metrics.top_k_similar(x, q, min(k, len(atlas.images)))
    return [(int(i), float(v)) for i, v in zip(idx, sim, strict=True)], scores.astype(np.float32)


# --------------------------------------------------------------------------- views and export


def payload(
    atlas: Atlas,
    method: str,
    url_for: Callable[[str], str] = str,
    selected: int | None = None,
    neighbors: dict[str, list[int]] | None = None,
    highlight: Sequence[int] | None = None,
    message: str = "",
) -> str:
    """The JSON the linked-panels component draws (see explorer/static/atlas.js)."""
    xy = coords_for(atlas, method)
    labels = atlas.labels
    classes = list(dict.fromkeys(labels))
    panels = [
        {
            "key": s.key,
            "title": s.title,
            "x": np.round(xy[s.key][:, 0], 5).tolist(),
            "y": np.round(xy[s.key][:, 1], 5).tolist(),
        }
        for s in atlas.spaces
    ]
    return json.dumps(
        {
            "panels": panels,
            "labels": labels,
            "classes": classes,
            "thumbs": [url_for(t) for t in atlas.thumbs] if atlas.thumbs else None,
            "paths": list(atlas.images.paths),
            "selected": selected,
            "neighbors": neighbors or {},
            "highlight": list(highlight or []),
            "message": message,
            "method": method,
        }
    )


def payload_empty(message: str = "") -> str:
    """The component's value before any set is open."""
    return json.dumps({"panels": [], "message": message or "Open an image set to see its atlas."})


def points_frame(atlas: Atlas, method: str) -> pd.DataFrame:
    """One row per image: index, path, label, then x_<space>, y_<space> for every space."""
    xy = coords_for(atlas, method)
    df = pd.DataFrame(
        {"index": range(len(atlas.images)), "path": atlas.images.paths, "label": atlas.labels}
    )
    for s in atlas.spaces:
        df[f"x_{s.key}"] = np.round(xy[s.key][:, 0], 6)
        df[f"y_{s.key}"] = np.round(xy[s.key][:, 1], 6)
    return df


def figure_html(atlas: Atlas, method: str) -> str:
    """A standalone HTML page (plotly.js inlined, works offline) with one panel per space."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    xy = coords_for(atlas, method)
    fig = make_subplots(
        rows=1, cols=len(atlas.spaces), subplot_titles=[s.title for s in atlas.spaces]
    )
    labels = np.array(atlas.labels)
    for c, cls in enumerate(dict.fromkeys(atlas.labels)):
        ids = np.flatnonzero(labels == cls)
        for j, s in enumerate(atlas.spaces):
            fig.add_trace(
                go.Scatter(
                    x=xy[s.key][ids, 0],
                    y=xy[s.key][ids, 1],
                    mode="markers",
                    name=cls,
                    legendgroup=cls,
                    showlegend=j == 0,
                    text=[atlas.images.paths[i] for i in ids],
                    marker={"size": 7, "color": f"hsl({(c * 67) % 360},65%,48%)"},
                    hovertemplate="%{text}<extra>" + cls + "</extra>",
                ),
                row=1,
                col=j + 1,
            )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(title=f"{atlas.source} · {method}", height=520)
    return fig.to_html(include_plotlyjs=True, full_html=True)


def save(atlas: Atlas, out: str | Path, method: str) -> dict[str, Path]:
    """Write points.csv, metrics.csv, overlap.csv, atlas.html, embeddings.npz, thumbs/, atlas.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "points": out / "points.csv",
        "metrics": out / "metrics.csv",
        "overlap": out / "overlap.csv",
        "html": out / "atlas.html",
        "embeddings": out / "embeddings.npz",
        "meta": out / "atlas.json",
    }
    points_frame(atlas, method).to_csv(files["points"], index=False)
    table = metrics_table(atlas, method)
    table[["space", "knn5", "knn10", "chance", "silhouette", "trustworthiness"]].to_csv(
        files["metrics"], index=False
    )
    overlap_table(atlas).to_csv(files["overlap"], index=False)
    files["html"].write_text(figure_html(atlas, method), encoding="utf-8")
    np.savez_compressed(files["embeddings"], **atlas.embeddings)
    tdir = out / "thumbs"
    tdir.mkdir(exist_ok=True)
    thumbs = []
    for i, t in enumerate(atlas.thumbs):
        dst = tdir / f"{i:05d}.jpg"
        dst.write_bytes(Path(t).read_bytes())
        thumbs.append(f"thumbs/{dst.name}")
    meta = {
        "source": atlas.source,
        "method": method,
        "n": len(atlas.images),
        "spaces": [
            {"key": s.key, "ref": s.ref, "family": s.family, "model": s.model} for s in atlas.spaces
        ],
        "failures": atlas.failures,
        "thumbs": thumbs,
        "models": table[["space", "model"]].to_dict("records"),
    }
    files["meta"].write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return files


def load_saved(folder: str | Path) -> tuple[Atlas, str]:
    """Reopen a folder written by :func:`save` (or the CLI); returns the atlas and its method."""
    folder = Path(folder).expanduser()
    meta_path, points_path = folder / "atlas.json", folder / "points.csv"
    if not meta_path.exists() or not points_path.exists():
        raise ExplorerError(
            f"{folder} is not a saved atlas: it needs atlas.json and points.csv, as written by "
            "`python -m explorer atlas SOURCE --out DIR`."
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        points = pd.read_csv(points_path)
        emb = np.load(folder / "embeddings.npz") if (folder / "embeddings.npz").exists() else None
    except (OSError, ValueError) as exc:
        raise ExplorerError(
            f"Could not read the saved atlas in {folder}: {exc}. Write it again."
        ) from exc
    spaces = [Space(s["key"], s["ref"], s["family"], s["model"]) for s in meta["spaces"]]
    method = meta.get("method", "umap")
    thumbs = [str(folder / t) for t in meta.get("thumbs", [])]
    images = []
    for t in thumbs:
        try:
            images.append(Image.open(t).convert("RGB"))
        except OSError:
            images.append(Image.new("RGB", (THUMB_SIDE, THUMB_SIDE), (200, 200, 200)))
    n = len(points)
    if len(images) != n:
        images = [Image.new("RGB", (THUMB_SIDE, THUMB_SIDE), (200, 200, 200)) for _ in range(n)]
    # copied next to the other thumbnails, which the app serves
    thumbs = _write_thumbs(images, [embeddings.image_hash(im) for im in images], thumb_dir())
    image_set = ImageSet(
        meta.get("source", folder.name),
        images,
        points["label"].astype(str).tolist(),
        points["path"].astype(str).tolist(),
        [],
        f"saved atlas {folder}",
    )
    coords = {
        method: {s.key: points[[f"x_{s.key}", f"y_{s.key}"]].to_numpy(np.float32) for s in spaces}
    }
    if emb is not None:
        embs = {s.key: emb[s.key] for s in spaces}
    else:  # without embeddings the 2-D maps stand in (neighbours are then map neighbours)
        embs = {s.key: coords[method][s.key] for s in spaces}
    atlas = Atlas(
        uuid.uuid4().hex,
        image_set,
        spaces,
        embs,
        coords,
        meta.get("failures", {}),
        thumbs,
        meta.get("source", ""),
    )
    return atlas, method
