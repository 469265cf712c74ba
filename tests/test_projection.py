"""explorer.analysis.projection: shapes, determinism, degenerate sets, cluster separation, UMAP warm-up.

UMAP needs numba's cold start (~40 s on 2 cores the first time in a process; with the disk cache
``explorer.analysis.projection`` sets up, import is ~2 s but a first fit still compiles ~10 s). All tests
that fit UMAP are in ``TestUmap`` and have "umap" in their names: deselect them with
``-k "not umap"`` or skip them with ``EXPLORER_SKIP_UMAP=1``.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from explorer.analysis import projection
from explorer.analysis.projection import METHODS, best_available, project, umap_ready, warm_up_umap
from tests.helpers import clusters, run_python_json

SIZES = (1, 2, 3, 10, 200)
needs_umap = pytest.mark.skipif(
    os.environ.get("EXPLORER_SKIP_UMAP") == "1", reason="EXPLORER_SKIP_UMAP=1"
)


def map_knn_accuracy(xy, labels, k=5):
    """Leave-one-out kNN accuracy with Euclidean distance in the 2-D map (how a reader sees it)."""
    clf = KNeighborsClassifier(n_neighbors=k + 1).fit(xy, labels)
    neighbours = clf.kneighbors(xy, return_distance=False)[:, 1:]  # drop the point itself
    votes = np.array([np.bincount(labels[row]).argmax() for row in neighbours])
    return float((votes == labels).mean())


def data(n, dim=64, seed=0):
    return np.random.default_rng(seed).normal(size=(n, dim))


def check_map(y, n):
    assert y.shape == (n, 2)
    assert y.dtype == np.float32
    assert np.isfinite(y).all()
    if n >= 2:
        np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-5)
        assert np.abs(y).max() == pytest.approx(1.0)


# ------------------------------------------------------------------ PCA and t-SNE


@pytest.mark.parametrize("method", ["pca", "tsne"])
@pytest.mark.parametrize("n", SIZES)
def test_project_shape_dtype_determinism(method, n):
    x = data(n)
    y = project(x, method, seed=3)
    check_map(y, n)
    if method == "pca" or n <= 10:  # t-SNE on 200 points costs seconds; once is enough there
        np.testing.assert_array_equal(y, project(x, method, seed=3))


def test_small_and_degenerate_sets():
    for method in METHODS:  # none of these reach UMAP itself
        assert project(data(1), method).tolist() == [[0.0, 0.0]]
        assert project(data(2), method).tolist() == [[-1.0, 0.0], [1.0, 0.0]]
        assert project(np.ones((7, 5)), method).tolist() == [[0.0, 0.0]] * 7  # identical
        assert project(np.outer(np.arange(1, 6), data(1)[0]), method).tolist() == [[0, 0]] * 5
        assert project(np.zeros((0, 4)), method).shape == (0, 2)


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_duplicates_and_one_dimension(method):
    dup = np.repeat(data(3, dim=6), 4, axis=0)  # 3 distinct directions, 4 copies each
    check_map(project(dup, method), 12)
    check_map(project(data(20, dim=1), method), 20)  # D = 1: every row is +1 or -1


def test_pca_is_the_principal_plane_of_the_unit_rows():
    x = data(50, dim=5) * np.array([10.0, 1.0, 1.0, 1.0, 1.0])
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    c = xn - xn.mean(axis=0)
    _, _, vt = np.linalg.svd(c, full_matrices=False)
    expected = c @ vt[:2].T
    y = project(x, "pca")
    for axis in range(2):  # same axes up to sign and the common scale
        a, b = y[:, axis], expected[:, axis]
        assert abs(np.corrcoef(a, b)[0, 1]) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_separated_clusters_stay_separated(method):
    x, labels = clusters(50)
    assert map_knn_accuracy(project(x, method), labels) >= 0.98


def test_unknown_method_and_bad_input():
    with pytest.raises(ValueError, match="umap, pca, tsne"):
        project(data(5), "mds")
    with pytest.raises(ValueError, match="NaN"):
        project(np.array([[1.0, np.inf], [0.0, 1.0], [1.0, 1.0]]), "pca")
    assert project(data(5), "PCA").shape == (5, 2)


def test_best_available_leaves_other_methods_alone():
    assert best_available("pca") == "pca"
    assert best_available("tsne") == "tsne"
    assert best_available("umap") == ("umap" if umap_ready() else "pca")


# ------------------------------------------------------------------ numba cache folder


@pytest.mark.slow
def test_numba_cache_dir_is_set_at_import(tmp_path):
    code = (
        "import json, os, sys, numba\n"  # numba first: projection must make it re-read the env
        "import explorer.analysis.projection\n"
        "from numba.core import config\n"
        "print(json.dumps({'env': os.environ['NUMBA_CACHE_DIR'], 'numba': config.CACHE_DIR,"
        " 'umap': 'umap' in sys.modules}))"
    )
    got = run_python_json(code, NUMBA_CACHE_DIR=None, XDG_CACHE_HOME=str(tmp_path))
    expected = tmp_path / "latent-space-explorer" / "numba"
    assert got == {"env": str(expected), "numba": str(expected), "umap": False}
    assert expected.is_dir()

    mine = tmp_path / "mine"
    got = run_python_json(code, NUMBA_CACHE_DIR=str(mine), XDG_CACHE_HOME=str(tmp_path))
    assert got["env"] == got["numba"] == str(mine)  # a user's setting wins


# ------------------------------------------------------------------ UMAP (slow: numba)


@needs_umap
class TestUmap:
    @pytest.mark.slow
    def test_umap_best_available_before_and_after_warm_up_in_a_fresh_process(self):
        code = (
            "import json, os, pathlib, sys\n"
            "from explorer.analysis import projection as p\n"
            "out = {'imported': 'umap' in sys.modules, 'ready': p.umap_ready(),"
            " 'before': p.best_available('umap')}\n"
            "out['returned'] = repr(p.warm_up_umap(background=False))\n"
            "out.update(after=p.best_available('umap'), ready_after=p.umap_ready(),"
            " again=repr(p.warm_up_umap()),"
            " cached=any(pathlib.Path(os.environ['NUMBA_CACHE_DIR']).rglob('*.nbi')))\n"
            "print(json.dumps(out))"
        )
        got = run_python_json(code)
        assert got == {
            "imported": False,  # importing explorer.analysis.projection must not pay for umap
            "ready": False,
            "before": "pca",
            "returned": "None",
            "after": "umap",
            "ready_after": True,
            "again": "None",
            "cached": True,  # pynndescent's cache=True functions went to NUMBA_CACHE_DIR
        }

    @pytest.mark.slow
    def test_precompile_child_fills_the_cache_so_a_fresh_fit_compiles_nothing(self, tmp_path):
        cache = tmp_path / "numba"
        code = (
            "import json, sys\n"
            "from explorer.analysis import projection as p\n"
            "started = p.precompile_umap()\n"
            "out = {'started': started, 'running_again': p.precompile_umap()}\n"
            "p._wait_for_child()\n"
            "out.update(code=p._child.returncode, marker=p._compiled_marker().exists(),"
            " again=p.precompile_umap(), imported='umap' in sys.modules)\n"
            "print(json.dumps(out))"
        )
        got = run_python_json(code, NUMBA_CACHE_DIR=str(cache))
        assert got == {
            "started": True,  # empty cache: a child compiles
            "running_again": False,  # one child at a time
            "code": 0,
            "marker": True,
            "again": False,  # marked: no second child
            "imported": False,  # the parent never imported umap for it
        }
        files = {f: f.stat().st_mtime_ns for f in cache.rglob("*") if f.is_file()}
        assert sum(f.suffix == ".nbc" for f in files) >= 7  # compiled code, not just indexes
        code = (
            "import json, numpy as np\n"
            "from explorer.analysis import projection as p\n"
            "x = np.random.default_rng(0).normal(size=(300, 24))\n"
            "y = p.project(x, 'umap')\n"
            "print(json.dumps({'shape': list(y.shape), 'started': p.precompile_umap()}))"
        )
        assert run_python_json(code, NUMBA_CACHE_DIR=str(cache)) == {
            "shape": [300, 2],
            "started": False,
        }
        after = {f: f.stat().st_mtime_ns for f in cache.rglob("*") if f.is_file()}
        assert after == files  # the fit loaded every function from the cache: nothing new written

    @pytest.mark.slow
    def test_umap_warm_up_in_background_is_idempotent(self):
        if umap_ready():
            assert warm_up_umap() is None
            return
        thread = warm_up_umap()
        assert isinstance(thread, threading.Thread) and thread.daemon
        again = warm_up_umap()
        assert again is thread or (again is None and umap_ready())
        thread.join(timeout=300)
        assert umap_ready() and best_available("umap") == "umap"
        assert warm_up_umap() is None and warm_up_umap(background=False) is None

    @pytest.mark.parametrize("n", SIZES)
    def test_umap_shape_dtype_determinism(self, n):
        x = data(n)
        y = project(x, "umap", seed=3)
        check_map(y, n)
        np.testing.assert_array_equal(y, project(x, "umap", seed=3))

    def test_umap_small_and_degenerate_sets(self):
        for n in (3, 4, 5):  # spectral init cannot work on these: falls back to random
            check_map(project(data(n), "umap", n_neighbors=30), n)
        check_map(project(np.repeat(data(3, dim=6), 4, axis=0), "umap"), 12)
        check_map(project(data(20, dim=1), "umap"), 20)

    def test_umap_separated_clusters_stay_separated(self):
        x, labels = clusters(50)
        for k in (None, 5):
            assert map_knn_accuracy(project(x, "umap", n_neighbors=k), labels) >= 0.98
        assert umap_ready()

    def test_umap_uses_the_exact_cosine_graph(self, monkeypatch):
        import umap

        seen = {}
        original = umap.UMAP.__init__

        def spy(self, *args, **kwargs):
            seen.update(kwargs)
            original(self, *args, **kwargs)

        monkeypatch.setattr(umap.UMAP, "__init__", spy)
        x = data(40, dim=8)
        project(x, "umap", n_neighbors=6)
        knn_idx, knn_dist, _ = seen["precomputed_knn"]
        assert seen["metric"] == "cosine" and seen["n_neighbors"] == 6
        assert knn_idx.shape == knn_dist.shape == (40, 6)
        np.testing.assert_array_equal(knn_idx[:, 0], np.arange(40))  # umap's convention: self
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        d = 1.0 - xn @ xn.T
        np.fill_diagonal(d, np.inf)
        np.testing.assert_array_equal(knn_idx[:, 1:], np.argsort(d, axis=1)[:, :5])
        np.testing.assert_allclose(knn_dist[:, 1:], np.sort(d, axis=1)[:, :5], atol=1e-5)
        assert projection._fit_lock.acquire(blocking=False)  # released after the fit
        projection._fit_lock.release()

    @pytest.mark.slow
    def test_umap_fits_a_sample_and_transforms_the_rest_above_fit_max(self):
        import umap

        x, labels = clusters(n_per=60, dim=16)  # 180 rows, 3 clusters
        y = project(x, "umap", fit_max=90)
        check_map(y, len(x))
        np.testing.assert_array_equal(y, project(x, "umap", fit_max=90))  # deterministic
        assert map_knn_accuracy(y, labels) >= 0.95  # transformed rows land in their cluster
        # The sampled rows are exactly umap's own fit of that sample (before standardising).
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        raw = projection._umap_sampled(xn, 0, None, 90)
        sample = np.sort(np.random.default_rng(0).choice(len(x), 90, replace=False))
        ref = umap.UMAP(n_neighbors=15, n_components=2, metric="cosine", random_state=0, n_jobs=1)
        np.testing.assert_allclose(raw[sample], ref.fit_transform(xn[sample]), atol=1e-5)
        assert not np.array_equal(raw, project(x, "umap"))  # at or under fit_max: the full fit
