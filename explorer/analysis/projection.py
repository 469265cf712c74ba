"""2-D maps of embedding spaces (UMAP, PCA, t-SNE) in cosine geometry. NumPy in, (N,2) out.

Every method first L2-normalises the rows, so a map shows the angles between embeddings (what
cosine similarity measures), not their lengths: UMAP and t-SNE then use the cosine metric, and
PCA works on the unit vectors. Outputs are centred and scaled to a maximum absolute coordinate
of 1, so panels for different spaces are drawn on the same scale.

UMAP runs on numba, whose cold start is slow on 2 cores: ``import umap`` takes 16-24 s, then the
first fit compiles for another 5-7 s (11-16 s through umap's own k-NN path). Two things keep it
off the first screen:

* ``best_available("umap")`` answers "pca" until ``warm_up_umap()`` (a daemon thread started at
  app launch) has imported umap and fitted a tiny set, so the first map is a PCA one.
* This module sets ``NUMBA_CACHE_DIR`` at import time (if unset) to a writable folder,
  ``$XDG_CACHE_HOME`` or ``~/.cache``, then ``latent-space-explorer/numba``, so compiled code
  is cached on disk in a place we control. That must happen before pynndescent or umap are
  imported, because numba binds each ``cache=True`` function to the cache folder when the
  function is decorated: import this module before anything that imports them (if numba itself
  was imported first, this module makes it re-read its settings).
* ``import umap`` goes through :func:`_import_umap`, which cuts the cold start itself: umap
  imports pynndescent at the top (most of the cold ``import umap``: its 102 ``cache=True``
  functions compile at import), yet with the precomputed graph below umap never calls it, so
  umap is given stand-ins for the three names it takes from pynndescent (a real
  ``import pynndescent`` later still gets the real package); and numba's decorators default to
  ``cache=True`` while umap's modules are decorated (in umap 0.5.12 only ``umap.layouts.rdist``,
  1 of 123, asks for it), so a second process loads the first fit's compiled code from disk.
  Before this, measured for ``import umap`` + a first ``project`` of 200 points: cold cache
  16 s + 5.4 s, warm cache (a second process) 1.5-2.2 s + 5.7-7.1 s; ``bench/umap_cold.py``
  measures the CLI end to end now (BENCHMARKS.md).
* With a cold cache the compile itself (~10 s on 2 cores, mostly umap's ``smooth_knn_dist`` and
  ``compute_membership_strengths`` and numba's own start) moves to a child process:
  :func:`precompile_umap` (the CLI's atlas command at its start, the app's background warm-up)
  runs the warm-up fit in a low-priority child that fills the disk cache while this process
  imports, reads images and embeds them; the first fit here waits for the child and then loads
  the compiled code. A marker file in the cache folder (per Python, numba and umap version and
  umap's source stamps) says when there is nothing to compile, so a warm start starts no child.

The UMAP k-nearest-neighbour graph is computed exactly here (cosine, blocked matrix products from
``explorer.analysis.metrics``) and handed to umap as ``precomputed_knn``. That skips umap's own paths,
which are slow in ways the warm-up cannot fix: below 4096 points umap calls a numba distance
per pair through scikit-learn (13 s for 3000 points), and from 4096 points on it runs
pynndescent, whose compile (~40 s more) the small warm-up set never triggers. With the
precomputed graph every fit, of any size, runs the same code the warm-up compiled.

Past :data:`UMAP_FIT_MAX` points (a set embedded on a Ray cluster, say) UMAP is fitted on a
seeded sample of that many rows with umap's own k-NN index, and the other rows are placed with
``transform`` in chunks: the fit's cost stops growing with the set. Where RAPIDS cuML is
importable, its GPU UMAP fits every row instead (a guarded import; not exercised by the tests).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

METHODS = ("umap", "pca", "tsne")
UMAP_FIT_MAX = 50_000  # above this many rows: fit on a sample, transform the rest
TRANSFORM_CHUNK = 20_000


def _numba_cache_dir() -> str:
    """The first writable of ``$XDG_CACHE_HOME`` or ``~/.cache``, then the temp folder."""
    bases = [os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", tempfile.gettempdir()]
    for base in bases:
        folder = Path(base) / "latent-space-explorer" / "numba"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                return str(folder)
        except OSError:
            continue
    return ""


if not os.environ.get("NUMBA_CACHE_DIR"):
    _folder = _numba_cache_dir()
    if _folder:
        os.environ["NUMBA_CACHE_DIR"] = _folder
        if "numba" in sys.modules:  # imported before us: make it re-read its settings
            sys.modules["numba"].core.config.reload_config()

# We hand umap a precomputed k-NN graph (no .transform on those fits), which it warns about.
warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]", category=UserWarning)

_fit_lock = threading.Lock()  # one UMAP fit at a time (numba's parallel layers, the warm flag)
_warm_lock = threading.Lock()
_warm_thread: threading.Thread | None = None
_ready = threading.Event()


def umap_ready() -> bool:
    """True once umap is imported and a fit has compiled its numba code in this process."""
    return _ready.is_set()


def best_available(method: str) -> str:
    """The method to draw now: "pca" instead of "umap" until UMAP is warm, else ``method``."""
    return "pca" if method == "umap" and not umap_ready() else method


def _warm_set() -> np.ndarray:
    """(32, 8) float32 unit rows in two tight clusters: the warm-up's fit."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 8))
    x = np.repeat(centres, 16, axis=0) + 0.1 * rng.normal(size=(32, 8))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _warm_up() -> None:
    try:
        _umap(_warm_set(), seed=0, n_neighbors=5)
        _mark_compiled()
    except Exception:  # UMAP stays unavailable: best_available() keeps answering "pca"
        log.exception("UMAP warm-up failed; maps will use PCA instead")


# --------------------------------------------------------------------------- precompiling


_child: subprocess.Popen | None = None
_child_lock = threading.Lock()
CHILD_TIMEOUT_S = 300.0


def _compiled_marker() -> Path | None:
    """The file that says numba's cache folder holds umap's compiled fit for this Python, numba
    and umap (its source files' sizes and times, which numba's own index checks); None where
    there is no cache folder or umap is not installed."""
    folder = os.environ.get("NUMBA_CACHE_DIR")
    if not folder:
        return None
    try:
        import importlib.metadata
        import importlib.util

        spec = importlib.util.find_spec("umap")  # finds the package without importing it
        src = Path(spec.origin).parent  # type: ignore[union-attr,arg-type]
        stamp = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(src.glob("*.py"))]
        versions = [importlib.metadata.version(d) for d in ("numba", "umap-learn")]
    except Exception:  # not installed, or not readable: no marker, no child
        return None
    key = repr((sys.version_info[:2], versions, str(src), stamp)).encode()
    return Path(folder) / f"explorer-umap-{hashlib.sha256(key).hexdigest()[:16]}.ok"


def _mark_compiled() -> None:
    marker = _compiled_marker()
    if marker is not None:
        with contextlib.suppress(OSError):
            marker.touch()


def precompile_umap() -> bool:
    """Start compiling umap's fit into numba's disk cache in a child process, on another core,
    while this process goes on (loading models, embedding); the first UMAP fit here then waits
    for it and loads the compiled code from disk instead of compiling it itself.

    Does nothing (-> False) when the cache is already marked as holding that code, when umap is
    already imported here, or when a child is running; -> True when it started one. A failed
    child costs nothing but time: the fit then compiles in-process.
    """
    global _child
    marker = _compiled_marker()
    if marker is None or marker.exists() or "umap" in sys.modules:
        return False
    with _child_lock:
        if _child is not None and _child.poll() is None:
            return False
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # the folder that holds `explorer`
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        try:
            _child = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from explorer.analysis.projection import _child_main; _child_main()",
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            return False
    return True


def _wait_for_child() -> None:
    """Block until a running precompile child is done (or :data:`CHILD_TIMEOUT_S` passed)."""
    with _child_lock:
        child = _child
    if child is None or child.poll() is not None:
        return
    try:
        child.wait(CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.kill()


def _child_main() -> None:
    """The precompile child: import umap and fit the warm-up set with the same argument types as
    :func:`_umap` (its exact k-NN from a plain sort: no torch, no explorer.analysis.knn to import).
    At low priority: it should use the cores the parent leaves idle, not slow the parent's
    threads down (torch's threads wait on each other when one of them loses its core)."""
    if hasattr(os, "nice"):
        os.nice(10)
    xn = _warm_set()
    k = 5
    s = xn @ xn.T
    np.fill_diagonal(s, np.inf)  # itself first, as umap wants
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    sim = np.take_along_axis(s, order, axis=1)
    dist = np.where(order == np.arange(len(xn))[:, None], 0.0, np.maximum(1.0 - sim, 0.0))
    _fit_umap(_import_umap(), xn, k, order.astype(np.int64), dist.astype(np.float32), seed=0)
    _mark_compiled()


def warm_up_umap(background: bool = True) -> threading.Thread | None:
    """Import umap and fit a tiny random set once, so later UMAP maps start without compiling.

    ``background=True`` runs it in a daemon thread and returns that thread (the same one while it
    runs); ``background=False`` waits for it. Returns None once UMAP is ready. Idempotent; if the
    warm-up fails (logged), UMAP stays not ready and a later call tries again.
    """
    global _warm_thread
    with _warm_lock:
        if _ready.is_set():
            return None
        running = _warm_thread if _warm_thread is not None and _warm_thread.is_alive() else None
        if running is None and background:
            precompile_umap()  # cold cache: numba compiles in a child, not under this one's GIL
            _warm_thread = threading.Thread(target=_warm_up, name="umap-warm-up", daemon=True)
            _warm_thread.start()
            return _warm_thread
        if running is not None and background:
            return running
    if running is not None:
        running.join()
    else:
        _warm_up()
    return None


def _standardise(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, np.float64)
    y = y - y.mean(axis=0)
    scale = np.abs(y).max()
    return (y / scale if scale > 0 else y).astype(np.float32)


def _pca(xn: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    # project() only gets here with N >= 3 and D >= 2
    return PCA(n_components=2, svd_solver="full", random_state=seed).fit_transform(xn)


def _tsne(xn: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    n = xn.shape[0]
    perplexity = max(2.0, min(30.0, (n - 1) / 3.0))  # < N/3 where N allows, never below 2
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        metric="cosine",
        init="pca",
        learning_rate="auto",
        random_state=seed,
    )
    return tsne.fit_transform(xn)


class _LazyNames:
    """Stands for pynndescent's ``named_distances`` tables inside umap: answers "is this metric
    named?" from the names alone and imports pynndescent only when a function is asked for
    (never on our precomputed-graph path)."""

    def __init__(self, table: str):
        self._table = table

    def __contains__(self, name: object) -> bool:
        return name in _PYNN_NAMES

    def __getitem__(self, name: str):
        import importlib

        module, attr = self._table.rsplit(".", 1)
        return getattr(importlib.import_module(module), attr)[name]


# The metric names of pynndescent 0.5's named_distances (what umap checks membership in).
_PYNN_NAMES = frozenset(
    [
        "euclidean",
        "l2",
        "sqeuclidean",
        "manhattan",
        "taxicab",
        "l1",
        "chebyshev",
        "linfinity",
        "linfty",
        "linf",
        "minkowski",
        "seuclidean",
        "standardised_euclidean",
        "wminkowski",
        "weighted_minkowski",
        "mahalanobis",
        "canberra",
        "cosine",
        "dot",
        "correlation",
        "haversine",
        "braycurtis",
        "spearmanr",
        "kantorovich",
        "wasserstein",
        "tsss",
        "true_angular",
        "hellinger",
        "wasserstein-1d",
        "wasserstein_1d",
        "kantorovich-1d",
        "kantorovich_1d",
        "circular_kantorovich",
        "circular_wasserstein",
        "sinkhorn",
        "jensen-shannon",
        "jensen_shannon",
        "symmetric-kl",
        "symmetric_kl",
        "symmetric_kullback_liebler",
        "hamming",
        "jaccard",
        "dice",
        "matching",
        "kulsinski",
        "rogerstanimoto",
        "russellrao",
        "sokalsneath",
        "sokalmichener",
        "yule",
        "bit_hamming",
        "bit_jaccard",
    ]
)
_import_lock = threading.Lock()


def _import_umap():
    """``import umap``, without compiling pynndescent and with numba's disk cache for umap's own
    functions (see the module docstring)."""
    if "umap" in sys.modules:
        _wait_for_child()
        return sys.modules["umap"]
    import types

    import numba

    with _import_lock:
        if "umap" in sys.modules:
            return sys.modules["umap"]
        real = {m: sys.modules.get(m) for m in _PYNN_STUBS}
        if real["pynndescent"] is None:  # not imported yet: umap gets stand-ins, never compiled
            for name, attrs in _PYNN_STUBS.items():
                stub = types.ModuleType(name)
                stub.__dict__.update(attrs())
                sys.modules[name] = stub
        saved = numba.njit, numba.jit

        def cached(decorator):
            def decorate(*args, **kwargs):
                kwargs.setdefault("cache", True)
                return decorator(*args, **kwargs)

            return decorate

        numba.njit, numba.jit = cached(saved[0]), cached(saved[1])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", numba.NumbaWarning)  # "cannot cache" notes
                import umap
        finally:
            numba.njit, numba.jit = saved
            for name, module in real.items():  # a later `import pynndescent` gets the real one
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module
    # Imported while a precompile child may still be compiling (numba reads its disk cache when
    # a function is first called, not at import): wait for it before the first fit.
    _wait_for_child()
    return umap


class _NoNNDescent:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("the explorer hands umap a precomputed k-NN graph: no NNDescent")


_PYNN_STUBS = {
    "pynndescent": lambda: {"NNDescent": _NoNNDescent},
    "pynndescent.distances": lambda: {
        "named_distances": _LazyNames("pynndescent.distances.named_distances")
    },
    "pynndescent.sparse": lambda: {
        "sparse_named_distances": _LazyNames("pynndescent.sparse.sparse_named_distances")
    },
}


def _umap(xn: np.ndarray, seed: int, n_neighbors: int | None) -> np.ndarray:
    from explorer.analysis.knn import cosine_knn

    umap = _import_umap()  # slow the first time in a process: see the module docstring

    n = xn.shape[0]
    k = min(15, n - 1) if n_neighbors is None else n_neighbors
    k = max(2, min(k, n - 1))
    # umap's k-NN lists start with the point itself at distance 0.
    idx, sim = cosine_knn(xn, k - 1)  # shared with the metrics of the same rows
    knn_idx = np.concatenate([np.arange(n)[:, None], idx], axis=1)
    knn_dist = np.concatenate([np.zeros((n, 1), np.float32), np.maximum(1.0 - sim, 0.0)], axis=1)
    return _fit_umap(umap, xn, k, knn_idx, knn_dist.astype(np.float32), seed)


def _fit_umap(
    umap, xn: np.ndarray, k: int, knn_idx: np.ndarray, knn_dist: np.ndarray, seed: int
) -> np.ndarray:
    """(N,D) float32 unit rows + (N,k) int64 k-NN lists (self first) and float32 cosine distances
    -> (N,2) UMAP layout (spectral init, random where spectral fails)."""

    def fit(init: str) -> np.ndarray:
        reducer = umap.UMAP(
            n_neighbors=k,
            n_components=2,
            metric="cosine",
            init=init,
            random_state=seed,
            n_jobs=1,  # what random_state forces anyway; saying so avoids umap's warning
            precomputed_knn=(knn_idx, knn_dist, None),
        )
        return reducer.fit_transform(xn)

    with _fit_lock:
        try:
            y = fit("spectral")
            if not np.isfinite(y).all():
                raise FloatingPointError("non-finite spectral layout")
        except Exception as exc:  # tiny or degenerate graphs: eigsh refuses or fails
            log.info("UMAP spectral init failed (%s); using random init", exc)
            y = fit("random")
        _ready.set()
    return y


def _cuml_umap() -> type | None:
    try:
        from cuml.manifold import UMAP  # RAPIDS, on a GPU machine only
    except Exception:  # not installed, or no usable GPU
        return None
    return UMAP


def _umap_sampled(xn: np.ndarray, seed: int, n_neighbors: int | None, fit_max: int) -> np.ndarray:
    """(N, D) unit rows -> (N, 2): UMAP fitted on ``fit_max`` rows drawn with ``seed`` (their
    coordinates are the fit's), the others placed by ``transform`` (see the module docstring)."""
    import umap

    n = xn.shape[0]
    k = max(2, min(15 if n_neighbors is None else n_neighbors, fit_max - 1))
    cuml = _cuml_umap()
    if cuml is not None:
        return np.asarray(cuml(n_neighbors=k, n_components=2, random_state=seed).fit_transform(xn))
    sample = np.sort(np.random.default_rng(seed).choice(n, fit_max, replace=False))
    rest = np.setdiff1d(np.arange(n), sample)
    reducer = umap.UMAP(n_neighbors=k, n_components=2, metric="cosine", random_state=seed, n_jobs=1)
    y = np.empty((n, 2), np.float32)
    with _fit_lock:
        y[sample] = reducer.fit_transform(xn[sample])
        for a in range(0, len(rest), TRANSFORM_CHUNK):
            chunk = rest[a : a + TRANSFORM_CHUNK]
            y[chunk] = reducer.transform(xn[chunk])
    return y


def project(
    x: np.ndarray,
    method: str = "umap",
    seed: int = 0,
    n_neighbors: int | None = None,
    fit_max: int | None = None,
) -> np.ndarray:
    """(N,D) embeddings -> (N,2) float32 map, centred, max |coordinate| 1.

    Rows are L2-normalised first for every method (cosine geometry; see the module docstring).
    ``umap``: umap-learn, cosine, ``n_neighbors`` default min(15, N − 1) and at least 2, spectral
    init with a random-init fallback where spectral fails. ``pca``: the first two principal axes
    (D = 1 is padded with a zero column, so its second axis is 0). ``tsne``: scikit-learn, cosine, perplexity min(30, (N − 1)/3) but at
    least 2, PCA init. Deterministic for a given ``seed``. Small and degenerate sets do not go to
    the fitters: N = 1 gives [[0, 0]], N = 2 a fixed segment [[−1, 0], [1, 0]], and points that
    are all the same direction give all zeros. UMAP blocks on its cold start (~40 s) the first
    time in a process: ask ``best_available`` first. UMAP on more than ``fit_max`` rows
    (default :data:`UMAP_FIT_MAX`) is fitted on a seeded sample and ``transform`` places the rest.
    """
    from explorer.analysis.metrics import _unit_rows

    method = str(method).lower()
    if method not in METHODS:
        raise ValueError(f"Unknown projection {method!r}; choose one of {', '.join(METHODS)}.")
    xn = _unit_rows(x)
    n = xn.shape[0]
    if xn.shape[1] == 1:  # a zero column changes no angle and lets every method have 2 axes
        xn = np.pad(xn, ((0, 0), (0, 1)))
    if n == 0:
        return np.zeros((0, 2), np.float32)
    if np.abs(xn - xn[0]).max() <= 1e-6:  # one point, or all the same direction
        return np.zeros((n, 2), np.float32)
    if n == 2:
        return np.array([[-1.0, 0.0], [1.0, 0.0]], np.float32)
    if method == "pca":
        y = _pca(xn, seed)
    elif method == "tsne":
        y = _tsne(xn, seed)
    elif n > (fit_max or UMAP_FIT_MAX):
        y = _umap_sampled(xn, seed, n_neighbors, max(3, int(fit_max or UMAP_FIT_MAX)))
    else:
        y = _umap(xn, seed, n_neighbors)
    return _standardise(y)
