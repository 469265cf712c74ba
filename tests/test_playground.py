"""The autoencoder playground: AE vs VAE vs VQ-VAE trained live on sklearn's 8x8 digits."""

from __future__ import annotations

import csv
import math
import threading
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.playground import digits as pg
from explorer.playground import figures as figs
from explorer.playground.cache import ModelCache

QUICK = 12  # epochs (48 Adam steps): enough for shapes, caching and determinism
N = 1797


def quick(model: str, **kw) -> pg.TrainConfig:
    return pg.TrainConfig(model=model, **{"epochs": QUICK, **kw})


@pytest.fixture(scope="module")
def models() -> dict[str, pg.Trained]:
    cache = ModelCache(None)
    return {m: cache.get(quick(m)) for m in pg.MODELS}


def _same_weights(a: pg.Trained, b: pg.Trained) -> bool:
    sa, sb = a.net.state_dict(), b.net.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _same_metrics(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        (math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in a
    )


# ----------------------------------------------------------------------------- config


def test_config_validates_and_keys():
    with pytest.raises(ValueError, match="model"):
        pg.TrainConfig(model="gan")
    with pytest.raises(ValueError, match="epochs"):
        pg.TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="codebook_size"):
        pg.TrainConfig(model="vq", codebook_size=1)
    cfg = pg.TrainConfig(model="vq")
    assert cfg.key() == pg.TrainConfig(model="vq").key()
    assert cfg.key() != replace(cfg, codebook_size=33).key()
    assert cfg.key() != replace(cfg, seed=1).key()


# ----------------------------------------------------------------------------- training


@pytest.mark.parametrize("model", pg.MODELS)
def test_training_is_deterministic(model):
    rng_before = torch.get_rng_state()
    threads_before = torch.get_num_threads()
    calls = []
    a = pg.train(quick(model, epochs=4), progress=lambda f, text: calls.append((f, text)))
    b = pg.train(quick(model, epochs=4))
    assert _same_weights(a, b)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert _same_metrics(pg.evaluate(a), pg.evaluate(b))
    assert not _same_weights(a, pg.train(quick(model, epochs=4, seed=1)))
    # the caller's RNG and thread count are left alone; progress climbs to 1 within [0, 1]
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert torch.get_num_threads() == threads_before
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and fractions[0] > 0
    assert all(model in text for _, text in calls)


def test_losses_go_down(models):
    for trained in models.values():
        assert trained.losses.shape == (QUICK,)
        assert trained.losses[-1] < trained.losses[0]


# ----------------------------------------------------------------------------- caching


def test_memory_cache_trains_once():
    cache = ModelCache(None)
    cfg = quick("ae", epochs=2, seed=11)
    before = pg.training_count()
    first = cache.get(cfg)
    assert pg.training_count() == before + 1 and cache.trainings == 1
    messages = []
    assert cache.get(cfg, progress=lambda f, t: messages.append(t)) is first
    assert pg.training_count() == before + 1 and cache.trainings == 1


def test_concurrent_callers_share_one_training_and_trainings_never_overlap():
    cache = ModelCache(None)
    same = quick("vae", epochs=3, seed=21)
    other = quick("ae", epochs=3, seed=21)
    epochs_seen: list[str] = []  # the model of every epoch reported, in order
    results: list[pg.Trained] = []
    barrier = threading.Barrier(6)

    def progress(fraction: float, text: str) -> None:
        if "epoch" in text:
            epochs_seen.append(text.split(":")[0])

    def call(cfg: pg.TrainConfig) -> None:
        barrier.wait()
        results.append(cache.get(cfg, progress=progress))

    before = pg.training_count()
    threads = [threading.Thread(target=call, args=(same,)) for _ in range(5)]
    threads.append(threading.Thread(target=call, args=(other,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert pg.training_count() == before + 2 and cache.trainings == 2
    assert len(results) == 6 and len({id(r) for r in results if r.cfg == same}) == 1
    # each training's epochs form one block: the two trainings never ran at the same time
    assert sorted(epochs_seen) == ["ae"] * 3 + ["vae"] * 3
    assert epochs_seen in (["ae"] * 3 + ["vae"] * 3, ["vae"] * 3 + ["ae"] * 3)


def test_memory_cache_is_bounded():
    cache = ModelCache(None, max_items=2)
    for seed in range(3):
        cache.get(quick("ae", epochs=1, seed=100 + seed))
    assert len(cache._items) == 2
    assert quick("ae", epochs=1, seed=100) not in cache._items
    assert not cache._items._key_locks  # per-key locks are dropped once nobody waits on them


def test_disk_cache_reloads_identical_weights(tmp_path):
    cfg = quick("vq", epochs=2, seed=31, codebook_size=8)
    trained = ModelCache(tmp_path).get(cfg)
    path = tmp_path / f"{cfg.key()}.pt"
    assert path.exists() and [p.name for p in tmp_path.iterdir()] == [path.name]
    before = pg.training_count()
    fresh = ModelCache(tmp_path)
    reloaded = fresh.get(cfg)
    assert pg.training_count() == before and fresh.trainings == 0
    assert reloaded.from_disk and reloaded is not trained
    assert _same_weights(trained, reloaded)
    np.testing.assert_array_equal(trained.losses, reloaded.losses)
    assert _same_metrics(pg.evaluate(trained), pg.evaluate(reloaded))


def test_disk_cache_is_bounded(tmp_path):
    cache = ModelCache(tmp_path, max_items=1, max_files=2)
    cfgs = [quick("ae", epochs=1, seed=50 + k) for k in range(3)]
    for cfg in cfgs:
        cache.get(cfg)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{c.key()}.pt" for c in cfgs[1:])


def test_damaged_disk_cache_is_retrained(tmp_path):
    cfg = quick("ae", epochs=1, seed=41)
    trained = ModelCache(tmp_path).get(cfg)
    path = tmp_path / f"{cfg.key()}.pt"
    path.write_bytes(path.read_bytes()[:100])
    before = pg.training_count()
    again = ModelCache(tmp_path).get(cfg)
    assert pg.training_count() == before + 1 and not again.from_disk
    assert _same_weights(trained, again)
    assert ModelCache(tmp_path).get(cfg).from_disk  # rewritten whole


# ----------------------------------------------------------------------------- measurements


def test_prior_kl_closed_form_matches_brute_force():
    from scipy.stats import multivariate_normal

    mean = np.array([1.5, -0.5])
    a = np.array([[2.0, 0.3], [0.0, 0.5]])
    cov = a @ a.T  # [[4.09, 0.15], [0.15, 0.25]]
    exact = pg.gaussian_kl_to_standard(mean, cov)
    # brute force: Monte Carlo estimate of E_p[log p(z) - log q(z)], z ~ p = N(mean, cov)
    z = np.random.default_rng(0).multivariate_normal(mean, cov, size=400_000)
    log_p = multivariate_normal(mean, cov).logpdf(z)
    log_q = multivariate_normal(np.zeros(2), np.eye(2)).logpdf(z)
    assert exact == pytest.approx(np.mean(log_p - log_q), rel=0.02)
    # fitting the Gaussian to those samples recovers the same KL
    assert pg.fitted_prior_kl(z) == pytest.approx(exact, rel=0.01)
    # a standard normal cloud is ~0 away from the prior; a scaled one is not
    w = np.random.default_rng(1).standard_normal((200_000, 2))
    assert pg.fitted_prior_kl(w) == pytest.approx(0.0, abs=1e-3)
    assert pg.fitted_prior_kl(4.5 * w) == pytest.approx(
        2 * 0.5 * (4.5**2 - 1 - math.log(4.5**2)), rel=0.01
    )
    # extra_var adds to the fitted covariance's diagonal (a VAE's aggregate posterior)
    assert pg.fitted_prior_kl(0.6 * w, extra_var=np.full(2, 0.64)) == pytest.approx(0.0, abs=1e-3)


def test_knn_accuracy_leave_one_out():
    z = np.array([[0.0], [0.1], [0.2], [10.0], [10.1], [10.2]])
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert pg.knn_accuracy(z, labels, k=2) == 1.0
    # each point's own label is left out: alternating labels on a line are all outvoted
    assert pg.knn_accuracy(np.arange(9.0)[:, None], np.arange(9) % 2, k=2) < 0.5
    rng = np.random.default_rng(0)
    assert pg.knn_accuracy(rng.standard_normal((600, 2)), rng.integers(0, 10, 600)) < 0.2


def test_evaluate_keys_and_ranges(models):
    for model, trained in models.items():
        m = pg.evaluate(trained)
        assert list(m) == ["recon_mse", "prior_kl", "sample_confidence", "latent_knn5"]
        assert 0 < m["recon_mse"] < 0.2
        assert 0.1 <= m["sample_confidence"] <= 1 and 0.1 <= m["latent_knn5"] <= 1
        assert math.isnan(m["prior_kl"]) if model == "vq" else m["prior_kl"] >= 0
        extras = pg.evaluate_extras(trained)
        assert extras["latent_std"].shape == (2,)
        assert extras["sample_classes"].sum() == pytest.approx(1.0)
        if model == "vq":
            assert extras["codebook_usage"].sum() == N
            assert 1 <= extras["perplexity"] <= trained.cfg.codebook_size


def test_classifier_reads_real_digits():
    ref = pg.classifier_reference()
    assert ref["real_digits"] > 0.85
    x, y = pg.digits()
    assert (pg.classify(x).argmax(axis=1) == y).mean() > 0.95


# ----------------------------------------------------------------------------- figure data


def test_figure_arrays(models):
    for model, trained in models.items():
        z, y = figs.latents(trained)
        assert z.shape == (N, 2) and y.shape == (N,) and set(np.unique(y)) == set(range(10))
        assert np.isfinite(z).all()
        for n, extent in ((15, 3.0), (4, 8.0)):
            grid = figs.decoded_grid(trained, n=n, extent=extent)
            assert grid.shape == (n * 8, n * 8) and grid.min() >= 0 and grid.max() <= 1
        samples = pg.prior_samples(trained, 7, seed=3)
        assert samples.shape == (7, 8, 8) and samples.min() >= 0 and samples.max() <= 1
        np.testing.assert_array_equal(samples, pg.prior_samples(trained, 7, seed=3))
        path = figs.interpolate(trained, 0, 5, steps=6)
        assert path.shape == (6, 8, 8) and path.min() >= 0 and path.max() <= 1
        recon = pg.reconstruct(trained, pg.digits()[0][[0, 5]])
        np.testing.assert_allclose(path[[0, -1]], recon, atol=1e-6)
        if model == "vq":
            usage = pg.codebook_usage(trained)
            assert usage.shape == (trained.cfg.codebook_size,) and usage.sum() == N
        else:
            with pytest.raises(ValueError):
                pg.codebook_usage(trained)


def test_decoded_grid_orientation(models):
    """Tile (row r, col c) shows the decoding of (x_c, y_r) with y decreasing down the rows."""
    trained = models["ae"]
    grid = figs.decoded_grid(trained, n=3, extent=2.0)
    top_right = pg.decode(trained, np.array([[2.0, 2.0]]))[0]
    np.testing.assert_allclose(grid[:8, 16:], top_right, atol=1e-6)


def test_vq_quantised_latents_are_codebook_vectors(models):
    trained = models["vq"]
    book = pg.codebook(trained)
    z = pg.encode(trained)
    zq, idx = pg.quantise(trained, z)
    np.testing.assert_array_equal(zq, book[idx])  # exactly codebook rows
    dist = ((z[:, None, :] - book[None]) ** 2).sum(axis=2)
    np.testing.assert_allclose(dist[np.arange(N), idx], dist.min(axis=1), rtol=1e-5, atol=1e-6)
    # the decoder only ever sees codebook vectors: grid points, prior draws, interpolations
    prior = pg.prior_latents(trained, 50, seed=0)
    assert all((book == p).all(axis=1).any() for p in prior)
    grid = figs.decoded_grid(trained, n=12, extent=6.0)
    tiles = {grid[r : r + 8, c : c + 8].tobytes() for r in range(0, 96, 8) for c in range(0, 96, 8)}
    assert len(tiles) <= trained.cfg.codebook_size


# ----------------------------------------------------------------------------- expected results


@pytest.fixture(scope="module")
def ae_vs_vae() -> dict[str, dict[str, float]]:
    cache = ModelCache(None)
    return {m: pg.evaluate(cache.get(pg.TrainConfig(model=m, epochs=60))) for m in ("ae", "vae")}


def test_vae_latents_match_the_prior_far_better_than_the_ae(ae_vs_vae):
    ae, vae = ae_vs_vae["ae"]["prior_kl"], ae_vs_vae["vae"]["prior_kl"]
    assert vae < 0.1 < 1.0 < ae
    assert vae < ae / 20


def test_vae_pays_in_reconstruction(ae_vs_vae):
    assert ae_vs_vae["vae"]["recon_mse"] >= ae_vs_vae["ae"]["recon_mse"]


@pytest.mark.slow
def test_expected_results_at_default_settings():
    """The numbers ``write_report`` reports (defaults: 600 Adam steps per model, ~12 s CPU)."""
    trained = {m: pg.train(pg.TrainConfig(model=m)) for m in pg.MODELS}
    metrics = {m: pg.evaluate(t) for m, t in trained.items()}
    assert metrics["vae"]["prior_kl"] < 0.05 and metrics["ae"]["prior_kl"] > 2.0
    assert metrics["vae"]["recon_mse"] >= metrics["ae"]["recon_mse"]
    vae_std = pg.evaluate_extras(trained["vae"])["latent_std"]
    assert np.all((vae_std > 0.8) & (vae_std < 1.2))  # both latent dimensions in use
    vq = pg.evaluate_extras(trained["vq"])
    assert vq["codes_used"] >= 0.9 * pg.TrainConfig().codebook_size  # no codebook collapse
    assert all(m["latent_knn5"] > 0.6 for m in metrics.values())  # chance: 0.1


# ----------------------------------------------------------------------------- report


def test_write_report(tmp_path):
    cache = ModelCache(None)
    csv_path = figs.write_report(tmp_path, epochs=QUICK, seed=0, cache=cache)
    assert csv_path == tmp_path / "autoencoders.csv"
    with csv_path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == [
            "model",
            "recon_mse",
            "prior_kl",
            "sample_confidence",
            "latent_knn5",
        ]
        rows = list(reader)
    assert [r["model"] for r in rows] == ["ae", "vae", "vq"]
    assert cache.trainings == 3
    for row in rows:
        expected = pg.evaluate(cache.get(quick(row["model"])))
        got = {k: float(v) for k, v in row.items() if k != "model"}
        assert _same_metrics(got, expected)
    for name in ("latents", "grid", "grid_wide", "samples", "interpolation"):
        for model in pg.MODELS:
            with Image.open(tmp_path / f"{name}_{model}.png") as im:
                assert im.size[0] > 40 and im.size[1] > 40
    with Image.open(tmp_path / "latents_ae.png") as im:
        colours = {c for _, c in im.convert("RGB").getcolors(1 << 16)}
    assert all(c in colours for c in figs.TAB10)  # ten digit colours are drawn
    assert (tmp_path / "codebook_usage_vq.png").exists()
    assert (tmp_path / "autoencoders_extras.json").exists()


def test_figure_helpers():
    z = np.random.default_rng(0).standard_normal((50, 2))
    img = figs.scatter_image(z, np.arange(50) % 10, size=300, marks=z[:3])
    assert img.shape == (300, 390, 3) and img.dtype == np.uint8
    sheet = figs.tile_images(np.zeros((5, 8, 8)), cols=3, scale=2, gap=1)
    assert sheet.shape == (2 * 17 + 1, 3 * 17 + 1)
    assert figs.bar_chart(np.array([3, 0, 5])).shape == (240, 520, 3)
    grid = np.arange(3 * 8 * 3 * 8, dtype=float).reshape(24, 24)
    tiles = figs.grid_tiles(grid, 3)
    np.testing.assert_array_equal(tiles[5], grid[8:16, 16:24])  # row 1, column 2
