"""Space-to-space similarity (explorer.analysis.similarity): linear CKA against a direct
implementation of the formulas, and mutual k-NN on constructed data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from explorer.analysis import similarity as S

# --------------------------------------------------------------------------- direct formulas


def hsic_biased(k: np.ndarray, l_: np.ndarray) -> float:
    """Gretton et al. (2005): tr(K H L H) / (n − 1)²."""
    n = k.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    return float(np.trace(k @ h @ l_ @ h)) / (n - 1) ** 2


def hsic_unbiased(k: np.ndarray, l_: np.ndarray) -> float:
    """Song et al. (2012), eq. 5: K̃, L̃ = K, L with zero diagonals;
    [tr(K̃L̃) + 1ᵀK̃1·1ᵀL̃1 / ((n−1)(n−2)) − 2/(n−2)·1ᵀK̃L̃1] / (n(n−3))."""
    n = k.shape[0]
    kt, lt = k - np.diag(np.diag(k)), l_ - np.diag(np.diag(l_))
    one = np.ones(n)
    value = (
        np.trace(kt @ lt)
        + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (one @ kt @ lt @ one)
    )
    return float(value) / (n * (n - 3))


def cka_direct(x: np.ndarray, y: np.ndarray, debiased: bool) -> float:
    """CKA from the Gram matrices of the raw (uncentred) features."""
    k, l_ = x @ x.T, y @ y.T
    hsic = hsic_unbiased if debiased else hsic_biased
    return hsic(k, l_) / math.sqrt(hsic(k, k) * hsic(l_, l_))


def related(n: int, d1: int, d2: int, seed: int):
    """Two spaces sharing a 3-d signal, each with its own noise and an offset."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 3))
    x = z @ rng.standard_normal((3, d1)) + 0.7 * rng.standard_normal((n, d1)) + 5.0
    y = np.tanh(z @ rng.standard_normal((3, d2))) + 0.5 * rng.standard_normal((n, d2)) - 2.0
    return x, y


def rotation(d: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q * np.sign(np.diag(r))


# --------------------------------------------------------------------------- CKA


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize(("n", "d1", "d2"), [(60, 5, 8), (40, 90, 120), (200, 30, 1)])
def test_cka_equals_the_direct_formula(n, d1, d2, debiased):
    # (40, 90, 120): wider than the set, so the products are taken on the Gram side
    x, y = related(n, d1, d2, seed=n + d1)
    got = S.linear_cka(x, y, debiased=debiased)
    assert got == pytest.approx(cka_direct(x, y, debiased), rel=1e-9, abs=1e-12)
    assert 0.05 < got < 0.99


def test_cka_float32_products_stay_close(monkeypatch):
    x, y = related(300, 40, 60, seed=1)
    exact = cka_direct(x, y, True)
    monkeypatch.setattr(S, "_FLOAT64_WORK", 0.0)  # the float32 path large sets take
    assert S.linear_cka(x, y) == pytest.approx(exact, rel=1e-5)


def test_rotation_and_isotropic_scaling_leave_cka_at_one():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((120, 16)) * np.linspace(0.2, 3.0, 16)  # anisotropic
    y = 7.5 * x @ rotation(16, seed=3) + 4.0  # rotated, scaled, shifted
    assert S.linear_cka(x, y, debiased=False) == pytest.approx(1.0, abs=1e-12)
    assert S.linear_cka(x, y, debiased=True) == pytest.approx(1.0, abs=1e-9)
    # a non-isotropic scaling is not an invariance: CKA drops below 1
    iso = rng.standard_normal((120, 16))
    assert S.linear_cka(iso, iso * np.geomspace(0.05, 5.0, 16)) < 0.8


def test_independent_noise_gives_about_zero():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((500, 50)), rng.standard_normal((500, 60))
    debiased = S.linear_cka(x, y)
    biased = S.linear_cka(x, y, debiased=False)
    assert abs(debiased) < 0.05
    assert debiased == pytest.approx(cka_direct(x, y, True), abs=1e-10)
    assert biased > debiased + 0.03  # the small-n bias the debiased estimator removes


def test_a_space_against_itself_scores_one():
    x, _ = related(80, 12, 1, seed=5)
    assert S.linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert S.linear_cka(x, x, debiased=False) == pytest.approx(1.0, abs=1e-12)
    assert S.mutual_knn(x, x) == 1.0


def test_cka_undefined_cases_are_nan_and_bad_shapes_raise():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((30, 4))
    assert math.isnan(S.linear_cka(x, np.ones((30, 3))))  # a constant space
    assert math.isnan(S.linear_cka(x[:3], x[:3]))  # debiased needs 4 points
    assert S.linear_cka(x[:3], x[:3] * 2, debiased=False) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same set"):
        S.linear_cka(x, x[:10])
    with pytest.raises(ValueError, match="NaN"):
        S.linear_cka(x, np.full((30, 2), np.nan))


# --------------------------------------------------------------------------- neighbours


def torus(a: int, eps: float = 1.0) -> np.ndarray:
    """a×a grid on a torus, point (i, j) at index i·a + j: (cos θi, sin θi, ε cos θj, ε sin θj)."""
    t = 2 * np.pi * np.arange(a) / a
    i, j = np.divmod(np.arange(a * a), a)
    return np.stack([np.cos(t[i]), np.sin(t[i]), eps * np.cos(t[j]), eps * np.sin(t[j])], axis=1)


def test_cosine_neighbours_match_a_full_sort():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((300, 9))
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = xn @ xn.T
    np.fill_diagonal(s, -np.inf)
    expected = np.argsort(-s, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(S.cosine_neighbours(x, k=7), expected)
    assert S.cosine_neighbours(x[:4], k=10).shape == (4, 3)  # k capped at N − 1


def test_duplicates_are_neighbours_and_ties_go_to_the_lower_index():
    x = np.array([[1.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    nb = S.cosine_neighbours(x, k=2)
    np.testing.assert_array_equal(nb[0], [1, 2])
    np.testing.assert_array_equal(nb[2], [0, 1])
    assert nb[3, 0] == 4 and nb[3, 1] == 0  # the three along x tie at 0: lowest index


def test_mutual_knn_known_answer_on_a_torus_grid():
    # In the square torus the 4 nearest of (i, j) are (i±1, j) and (i, j±1). Shrinking the second
    # circle (ε = 0.1) makes them (i, j±1) and (i, j±2): two of four kept at every point.
    square, squashed = torus(8), torus(8, eps=0.1)
    overlap = S.neighbour_overlap(square, squashed, k=4)
    assert overlap.shape == (64,)
    np.testing.assert_array_equal(overlap, np.full(64, 0.5))
    assert S.mutual_knn(square, squashed, k=4) == 0.5
    # swapping the two circles' roles relabels the grid by a transposition: same neighbours
    i, j = np.divmod(np.arange(64), 8)
    assert S.mutual_knn(square, square[j * 8 + i], k=4) == 1.0


def test_mutual_knn_zero_when_the_order_is_scrambled():
    # 1-D circle of 11 points (neighbours i ± 1) against the same points placed at angle 2i:
    # there a point's two nearest are i ± 6 (mod 11), never i ± 1.
    n = 11
    angle = 2 * np.pi * np.arange(n) / n
    x = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    y = np.stack([np.cos(2 * angle), np.sin(2 * angle)], axis=1)
    assert S.mutual_knn(x, y, k=2) == 0.0
    np.testing.assert_array_equal(np.sort(S.cosine_neighbours(y, k=2)[0]), [5, 6])


def test_mutual_knn_of_unrelated_spaces_is_near_k_over_n():
    rng = np.random.default_rng(8)
    value = S.mutual_knn(rng.standard_normal((500, 20)), rng.standard_normal((500, 20)), k=10)
    assert value < 3 * 10 / 499


def test_precomputed_lists_are_used_and_checked():
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((200, 6)), rng.standard_normal((200, 6))
    wide_x, wide_y = S.cosine_neighbours(x, k=20), S.cosine_neighbours(y, k=20)
    direct = S.neighbour_overlap(x, y, k=10)
    np.testing.assert_array_equal(
        S.neighbour_overlap(None, None, k=10, nbrs_x=wide_x, nbrs_y=wide_y), direct
    )
    np.testing.assert_array_equal(S.neighbour_overlap(x, None, k=10, nbrs_y=wide_y), direct)
    assert S.mutual_knn(None, None, k=10, nbrs_x=wide_x, nbrs_y=wide_y) == direct.mean()
    with pytest.raises(ValueError, match="itself"):
        S.mutual_knn(None, y, nbrs_x=np.arange(200)[:, None].repeat(10, axis=1))
    with pytest.raises(ValueError, match="needs 10"):
        S.mutual_knn(None, y, nbrs_x=wide_x[:, :5])
    with pytest.raises(ValueError, match="same set"):
        S.mutual_knn(x, y[:100])


def test_small_sets():
    x = np.ones((1, 3))
    assert np.isnan(S.neighbour_overlap(x, x)).all() and math.isnan(S.mutual_knn(x, x))
    two = np.eye(2)
    assert S.mutual_knn(two, two, k=10) == 1.0  # k capped at N − 1 = 1


# --------------------------------------------------------------------------- matrix


def test_similarity_matrix_rows_equal_the_pairwise_measures():
    x, y = related(150, 10, 20, seed=10)
    z = np.random.default_rng(11).standard_normal((150, 5))
    spaces = {"vae": x, "clip": y, "pixels": z}
    rows = S.similarity_matrix(spaces, k=10)
    assert [(r.space_a, r.space_b) for r in rows] == [
        ("vae", "clip"),
        ("vae", "pixels"),
        ("clip", "pixels"),
    ]
    for row in rows:
        a, b = spaces[row.space_a], spaces[row.space_b]
        assert row.cka == pytest.approx(S.linear_cka(a, b), rel=1e-12)
        assert row.mutual_knn == S.mutual_knn(a, b, k=10)
    given = {"clip": S.cosine_neighbours(y, k=15)}
    assert S.similarity_matrix(spaces, k=10, neighbours=given) == rows
    with pytest.raises(ValueError, match="different numbers"):
        S.similarity_matrix({"a": x, "b": z[:10]})
