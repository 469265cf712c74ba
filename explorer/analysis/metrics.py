"""Numbers: reconstruction quality, latent statistics, compression, atlas metrics. NumPy in, numbers out."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from explorer.analysis import ann
from explorer.analysis.knn import _neighbours, _top_k, cosine_knn, euclidean_knn, ranks


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """(H,W,3) a, b in [0,1] -> PSNR in dB (inf for identical images)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if np.array_equal(a, b):
        return math.inf
    from skimage.metrics import peak_signal_noise_ratio  # scipy.stats with it: ~2 s, on first use

    return float(peak_signal_noise_ratio(a, b, data_range=1.0))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """(H,W,3) a, b in [0,1] -> mean SSIM in [-1,1] (scikit-image, 7x7 window, per channel)."""
    from skimage.metrics import structural_similarity

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    win = min(7, *a.shape[:2])
    win = win if win % 2 else win - 1
    return float(structural_similarity(a, b, data_range=1.0, channel_axis=-1, win_size=max(win, 3)))


def compression_ratio(image_shape: tuple[int, ...], latent_shape: tuple[int, ...]) -> float:
    """(H,W,3)-like and (C,h,w)-like shapes -> how many image numbers per latent number."""
    return float(np.prod(image_shape)) / float(np.prod(latent_shape))


def channel_stats(z: np.ndarray) -> list[dict[str, float]]:
    """(C,h,w) latent -> one dict per channel with mean, std, min, max (population std)."""
    z = np.asarray(z, np.float64)
    flat = z.reshape(z.shape[0], -1)
    return [
        {
            "channel": i,
            "mean": float(c.mean()),
            "std": float(c.std()),
            "min": float(c.min()),
            "max": float(c.max()),
        }
        for i, c in enumerate(flat)
    ]


def gaussian_summary(values: np.ndarray) -> dict[str, float]:
    """(…) values -> mean, std, skewness, excess kurtosis and KL(fitted Gaussian ‖ N(0,1)).

    For a standard normal sample all five are near 0/1/0/0/0. KL between N(m, s²) and N(0, 1) is
    ½(s² + m² − 1 − ln s²): how far the latent's first two moments are from what the
    KL-regularised prior asks for.
    """
    v = np.asarray(values, np.float64).ravel()
    m, s = float(v.mean()), float(v.std())
    z = (v - m) / (s if s > 0 else 1.0)
    skew = float((z**3).mean())
    kurt = float((z**4).mean() - 3.0)
    kl = 0.5 * (s**2 + m**2 - 1.0 - math.log(max(s**2, 1e-12)))
    return {
        "mean": m,
        "std": s,
        "skewness": skew,
        "excess_kurtosis": kurt,
        "kl_to_standard_normal": kl,
    }


# ---------------------------------------------------------------------------------------------
# Atlas metrics: how well does an embedding space group images by meaning?
#
# Every function here uses cosine geometry: rows are L2-normalised (a zero row stays zero, so it
# is at similarity 0 to everything); neighbours come from explorer.analysis.knn (blocked float32 matrix
# products, self excluded, best first, ties by the lower index; one set's lists are shared).
# ---------------------------------------------------------------------------------------------


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """(N,D) -> float32 rows of unit L2 norm (zero rows stay zero). Rejects non-finite values."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"Expected an (N, D) array of embeddings, got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise ValueError("The embeddings contain NaN or infinite values; recompute them.")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0).astype(np.float32)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """(N,D) -> (N,D) float32 rows of unit L2 norm, exactly as every atlas metric normalises
    them, so that :func:`explorer.analysis.knn.cosine_knn` of the result shares their lists."""
    return _unit_rows(x)


def _label_codes(labels: Sequence, n: int | None = None) -> np.ndarray:
    """Any hashable labels -> int codes 0..K-1 in order of first appearance."""
    lut: dict = {}
    codes = np.fromiter((lut.setdefault(lab, len(lut)) for lab in labels), np.int64)
    if n is not None and codes.shape[0] != n:
        raise ValueError(f"Got {codes.shape[0]} labels for {n} points; give one label per point.")
    return codes


def _vote(neighbour_codes: np.ndarray) -> np.ndarray:
    """(N,k) neighbour labels, best first -> majority label per row; ties go to the nearest.

    A negative code marks an empty slot (no neighbour there): it never wins a row that has a
    real neighbour.
    """
    counts = (neighbour_codes[:, :, None] == neighbour_codes[:, None, :]).sum(axis=2)
    counts[neighbour_codes < 0] = -1
    winner = np.argmax(counts == counts.max(axis=1, keepdims=True), axis=1)
    return neighbour_codes[np.arange(neighbour_codes.shape[0]), winner]


def _knn_accuracy_from(
    idx: np.ndarray, codes: np.ndarray, k: int, sim: np.ndarray | None = None
) -> float:
    """(N,k') neighbour indices -> the kNN-k vote's accuracy; with ``sim``, slots whose similarity
    is −inf (masked: past a row's candidates) are empty and do not vote."""
    if idx.shape[0] < 2 or idx.shape[1] == 0:
        return math.nan
    k = min(k, idx.shape[1])
    votes = codes[idx[:, :k]]
    if sim is not None:
        votes = np.where(np.isfinite(sim[:, :k]), votes, -1)
    return float((_vote(votes) == codes).mean())


def knn_accuracy(x: np.ndarray, labels: Sequence, k: int = 5) -> float:
    """Leave-one-out k-nearest-neighbour label accuracy in cosine geometry, in [0, 1].

    Each point's label is predicted by a majority vote of its k most cosine-similar other points
    (itself excluded); a tied vote goes to the tied label whose member is nearest. k is capped at
    N − 1; fewer than 2 points gives nan.
    """
    xn = _unit_rows(x)
    codes = _label_codes(labels, xn.shape[0])
    if xn.shape[0] < 2 or k < 1:
        return math.nan
    idx, _ = cosine_knn(xn, k)
    return _knn_accuracy_from(idx, codes, k)


def chance_level(labels: Sequence) -> float:
    """Accuracy of always guessing the most frequent label: the floor any useful space must beat.

    For K balanced classes this is 1/K. It is the majority-class baseline; a kNN vote in a space
    that carries no label information lands near it (for imbalanced classes, a little below).
    nan for no labels.
    """
    codes = _label_codes(labels)
    if codes.size == 0:
        return math.nan
    return float(np.bincount(codes).max() / codes.size)


def knn_accuracy_grouped(x: np.ndarray, labels: Sequence, groups: Sequence, k: int = 5) -> float:
    """Leave-one-group-out kNN label accuracy in cosine geometry, in [0, 1].

    As :func:`knn_accuracy`, but for each point every point with the same ``groups`` value
    (e.g. every variant of the same source photo) is removed from its candidate neighbours
    before the k nearest vote. This is the usual guard against near-duplicate leakage in
    retrieval evaluation: a recoloured copy of a photo finds its other copies by layout alone,
    which says nothing about whether the space groups *different* photos by meaning. A point
    with fewer than k points outside its group votes with those it has. Compare the score with
    :func:`chance_level_grouped`, not :func:`chance_level`.

    nan for fewer than 2 points, ``k < 1``, or a single group (no point has any candidate).
    """
    xn = _unit_rows(x)
    n = xn.shape[0]
    codes = _label_codes(labels, n)
    group_codes = _group_codes(groups, n)
    if n < 2 or k < 1 or np.unique(group_codes).size < 2:
        return math.nan
    idx, sim, _ = _neighbours(xn, k, groups=group_codes)
    return _knn_accuracy_from(idx, codes, k, sim)


def _group_codes(groups: Sequence, n: int) -> np.ndarray:
    try:
        return _label_codes(groups, n)
    except ValueError:
        raise ValueError(
            f"Got {len(groups)} group ids for {n} points; give one group per point."
        ) from None


def chance_level_grouped(labels: Sequence, groups: Sequence, k: int = 5) -> float:
    """What :func:`knn_accuracy_grouped` scores, on average, in a space with no information.

    In a space that carries nothing about the labels, each point's neighbours are a uniformly
    random draw from its candidates (the points outside its group). This returns the exact
    expectation of the grouped kNN-k accuracy under that draw: for point i with candidate
    counts m_c per label (M in all, k' = min(k, M) drawn), the chance that its own label c
    wins the vote is

        Σ_{a≥1} C(m_c, a) · Σ_{draws j of the other labels, each j_d ≤ a, Σ j = k'−a}
                  Π C(m_d, j_d) / (1 + #{d: j_d = a})  /  C(M, k')

    (a tie between t labels goes to the one whose member is nearest, which in a random order is
    each of them with probability 1/t), averaged over the points.

    Why it differs from :func:`chance_level`: excluding a point's own group removes points of
    its own label from the pool (a photo's variants share its meaning), so its label is rarer
    among its candidates than in the set. With S sources per class, A variants of each and K
    balanced classes, a point's own label is (S − 1)·A of the N − A candidates instead of 1/K of
    the set, and a random space scores *below* 1/K (e.g. 3 sources per class: about 2/3 of 1/K
    for k = 1). For groups of one point each it reduces to the plain leave-one-out random-space
    score, which for balanced classes is close to 1/K.

    nan for no points, ``k < 1`` or a single group.
    """
    codes = _label_codes(labels)
    n = codes.size
    group_codes = _group_codes(groups, n)
    if n == 0 or k < 1 or np.unique(group_codes).size < 2:
        return math.nan
    n_labels = int(codes.max()) + 1
    totals = np.bincount(codes, minlength=n_labels)
    per_group = np.zeros((int(group_codes.max()) + 1, n_labels), np.int64)
    np.add.at(per_group, (group_codes, codes), 1)
    k = min(int(k), n - 1)
    memo: dict[tuple, float] = {}
    total = 0.0
    for g, c in zip(group_codes.tolist(), codes.tolist(), strict=True):
        pool = totals - per_group[g]
        key = (c, pool.tobytes())
        if key not in memo:
            memo[key] = _random_vote_win(pool, c, k)
        total += memo[key]
    return total / n


def _random_vote_win(pool: np.ndarray, own: int, k: int) -> float:
    """P(label ``own`` wins a k-vote drawn uniformly without replacement from ``pool`` counts)."""
    pool_list = [int(v) for v in pool]
    m_total = sum(pool_list)
    k = min(k, m_total)
    m_own = pool_list[own]
    others = [m for d, m in enumerate(pool_list) if d != own and m > 0]
    ways = 0.0
    for a in range(1, min(k, m_own) + 1):
        rest = k - a
        # dp[s][t]: ways to draw s points from the labels seen so far, t of them tied at a.
        dp = [[0] * (rest // a + 1) for _ in range(rest + 1)]
        dp[0][0] = 1
        for m in others:
            new = [[0] * len(dp[0]) for _ in range(rest + 1)]
            for s_now in range(rest + 1):
                for t, w in enumerate(dp[s_now]):
                    if not w:
                        continue
                    for j in range(min(a, m, rest - s_now) + 1):
                        tied = t + (j == a)
                        new[s_now + j][tied] += w * math.comb(m, j)
            dp = new
        ways += math.comb(m_own, a) * sum(w / (1 + t) for t, w in enumerate(dp[rest]))
    return ways / math.comb(m_total, k)


def silhouette(x: np.ndarray, labels: Sequence, groups: Sequence | None = None) -> float:
    """Mean silhouette coefficient with cosine distance (1 − cosine similarity), in [−1, 1].

    Same definition and value as ``sklearn.metrics.silhouette_score(x, labels, metric="cosine")``
    (a point alone in its class scores 0), computed in closed form: for unit rows the mean cosine
    distance from a point to a class is 1 − x·(sum of the class's rows)/count, so it costs
    O(N·K·D) instead of an N×N distance matrix. nan where sklearn's score is undefined: fewer than
    2 distinct labels, or every point in a class of its own (K = N).

    With ``groups`` (variants of one source photo share a group), every point's own group is left
    out of both means -- its own class's and the other classes' -- as the kNN scores leave it out
    of the vote; a point with no other member of its class outside its group scores 0.
    """
    xn = _unit_rows(x)
    return _silhouette_unit(xn, _label_codes(labels, xn.shape[0]), groups)


def _class_sums(codes: np.ndarray, rows: np.ndarray, n_classes: int) -> np.ndarray:
    """(M,) int codes in [0, K), (M,D) float64 rows -> (K,D) each class's summed rows (a one-hot
    product: np.add.at is ~10x slower at 10,000 × 2048)."""
    onehot = np.zeros((rows.shape[0], n_classes))
    onehot[np.arange(rows.shape[0]), codes] = 1.0
    return onehot.T @ rows


def _silhouette_unit(xn: np.ndarray, codes: np.ndarray, groups: Sequence | None) -> float:
    """:func:`silhouette` of (N,D) unit rows with int label codes (already checked)."""
    xn = xn.astype(np.float64)
    n, n_classes = xn.shape[0], int(codes.max()) + 1 if codes.size else 0
    if n_classes < 2 or n_classes >= n:
        return math.nan
    sizes = np.bincount(codes, minlength=n_classes).astype(np.float64)
    # (N,K): the summed similarity of each point to each class
    dots = xn @ _class_sums(codes, xn, n_classes).T
    own = np.arange(n)
    if groups is None:
        dots[own, codes] -= np.einsum("ij,ij->i", xn, xn)  # 1, or 0 for a zero row: not yourself
        counts = np.broadcast_to(sizes, (n, n_classes)).copy()
        counts[own, codes] -= 1
    else:
        group_codes = _group_codes(groups, n)
        counts = np.empty((n, n_classes))
        for g in np.unique(group_codes):
            members = np.flatnonzero(group_codes == g)
            g_sums = _class_sums(codes[members], xn[members], n_classes)
            dots[members] -= xn[members] @ g_sums.T  # the group itself (and so the point) left out
            counts[members] = sizes - np.bincount(codes[members], minlength=n_classes)
    n_own = counts[own, codes]
    with np.errstate(divide="ignore", invalid="ignore"):
        a = 1.0 - dots[own, codes] / n_own
        mean_other = np.where(counts > 0, 1.0 - dots / counts, np.inf)
        mean_other[own, codes] = np.inf
        b = mean_other.min(axis=1)
        s = (b - a) / np.maximum(a, b)
    s = np.where((n_own > 0) & np.isfinite(b), np.nan_to_num(s), 0.0)
    return float(s.mean())


def _trustworthiness_from(ranks: np.ndarray, n: int, k: int) -> float:
    penalty = np.maximum(ranks - k, 0).sum()
    return float(1.0 - 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)) * penalty)


def _adapt_trust_k(n: int, k: int) -> int:
    return min(k, (n - 1) // 2)  # sklearn requires k < N/2


def trustworthiness(x_high: np.ndarray, x_low: np.ndarray, k: int = 5) -> float:
    """How far the 2-D map's neighbours are real neighbours, in [0, 1] (1 = no false neighbours).

    Venna & Kaski's trustworthiness, as ``sklearn.manifold.trustworthiness(x_high, x_low,
    n_neighbors=k, metric="cosine")``: cosine in the high space, Euclidean in the map. Computed in
    row blocks (sklearn builds and argsorts the full N×N matrix: ~2 GB at N = 10,000). k is capped
    below N/2 as sklearn requires; nan when that leaves k < 1 (N < 3).
    """
    xn = _unit_rows(x_high)
    low = np.asarray(x_low, np.float64)
    n = xn.shape[0]
    if low.shape[0] != n:
        raise ValueError(f"x_low has {low.shape[0]} points but x_high has {n}; pass the same set.")
    k = _adapt_trust_k(n, k)
    if k < 1:
        return math.nan
    return _trustworthiness_from(ranks(xn, euclidean_knn(low, k)), n, k)


def neighbour_overlap(x_a: np.ndarray, x_b: np.ndarray, k: int = 10) -> float:
    """Mean fraction |A ∩ B| / k of each point's k cosine nearest neighbours shared by two spaces.

    A and B are the point's k-NN sets (self excluded) in ``x_a`` and ``x_b`` (same points, any
    dimensions). 1 = identical neighbourhoods; two unrelated spaces give about k/(N − 1). This is
    the fraction kept rather than the Jaccard index |A∩B|/|A∪B|, which reads lower (0.5 overlap
    is a Jaccard of 1/3). k is capped at N − 1; nan for fewer than 2 points.
    """
    xa, xb = _unit_rows(x_a), _unit_rows(x_b)
    if xa.shape[0] != xb.shape[0]:
        raise ValueError(
            f"The two spaces hold {xa.shape[0]} and {xb.shape[0]} points; pass the same set."
        )
    if xa.shape[0] < 2 or k < 1:
        return math.nan
    ia, _, _ = ann.knn_lists(xa, k)  # past ann.ANN_ABOVE points: the approximate lists
    ib, _, _ = ann.knn_lists(xb, k)
    shared = (ia[:, :, None] == ib[:, None, :]).any(axis=2).sum(axis=1)
    return float((shared / ia.shape[1]).mean())


def _allowed(n: int, exclude: np.ndarray | None) -> np.ndarray:
    """(N,) bool: the points a neighbour list may return (``exclude``: (N,) bool, True = never)."""
    if exclude is None:
        return np.ones(n, bool)
    exclude = np.asarray(exclude, bool)
    if exclude.shape != (n,):
        raise ValueError(f"exclude has shape {exclude.shape}; give one flag per point ({n}).")
    return ~exclude


def _best(s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if k < 1:
        return np.zeros(0, np.int64), np.zeros(0, s.dtype)
    idx, sim = _top_k(s[None, :], k)
    return idx[0], sim[0]


def nearest(
    x: np.ndarray, i: int, k: int = 5, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(N,D) rows, point i -> indices and cosine similarities in [-1, 1] of the k points most
    similar to point i (itself excluded, and every point flagged in ``exclude``, an (N,) bool
    mask: e.g. the other variants of its own photo).

    Best first, ties by lower index; k is capped at the number of candidates.
    """
    xn = _unit_rows(x)
    n = xn.shape[0]
    if not -n <= i < n:
        raise IndexError(f"Point {i} does not exist; there are {n} points.")
    i = i % n
    ok = _allowed(n, exclude)
    ok[i] = False
    s = xn @ xn[i]
    s[~ok] = -np.inf
    return _best(s, min(k, int(ok.sum())))


def neighbour_lists(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(N,D) embeddings -> (N,k) int32 indices and float32 cosine similarities of every point's
    k most similar points, best first, itself excluded, ties by lower index (row i holds what
    :func:`nearest` gives for i); k is capped at N − 1. Shares the blocked pass of the metrics.
    Past :data:`explorer.analysis.ann.ANN_ABOVE` points the lists are approximate
    (:func:`explorer.analysis.ann.knn_lists`)."""
    idx, sim, _ = ann.knn_lists(_unit_rows(x), k)
    return idx.astype(np.int32), np.array(sim, np.float32)


METRICS_FULL_MAX = 50_000
"""Past this many points the atlas's metrics are computed on a stratified sample."""
METRICS_SAMPLE = 20_000
"""The size of that sample."""


def stratified_sample(labels: Sequence, m: int = METRICS_SAMPLE, *, seed: int = 0) -> np.ndarray:
    """N labels -> (min(m, N),) sorted row indices drawn with ``seed``, each label keeping its
    share of the set: ⌊m·share⌋ rows, the rows left over going to the labels with the largest
    remainders (ties to the first label), and every label at least one row while m allows.
    All N rows when m ≥ N."""
    codes = _label_codes(labels)
    n = codes.size
    if m >= n:
        return np.arange(n)
    counts = np.bincount(codes)
    want = counts * m / n
    take = np.floor(want).astype(np.int64)
    order = np.lexsort((np.arange(counts.size), -(want - take)))
    take[order[: m - int(take.sum())]] += 1
    for c in np.flatnonzero(take == 0) if m >= counts.size else []:  # a rare label keeps one
        take[int(np.argmax(take))] -= 1
        take[c] = 1
    rng = np.random.default_rng(seed)
    by_label = np.argsort(codes, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)))
    picked = [
        rng.choice(by_label[starts[c] : starts[c + 1]], int(t), replace=False)
        for c, t in enumerate(take)
    ]
    return np.sort(np.concatenate(picked))


def sample_note(m: int, n: int) -> str:
    """The metrics table's ``sample`` cell: '' for all n points, else what the sample was."""
    return "" if m >= n else f"computed on a stratified sample of {m:,} of {n:,}"


def top_k_similar(
    x: np.ndarray, q: np.ndarray, k: int = 10, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(N,D) rows, (D,) query -> indices and cosine similarities in [-1, 1] of the k rows most
    similar to ``q``, leaving out the rows flagged in ``exclude`` ((N,) bool).

    Best first, ties by lower index; k is capped at the number of candidates.
    """
    xn = _unit_rows(x)
    qn = _unit_rows(np.asarray(q).reshape(1, -1))[0]
    if qn.shape[0] != xn.shape[1]:
        raise ValueError(f"The query has {qn.shape[0]} dimensions but the rows have {xn.shape[1]}.")
    ok = _allowed(xn.shape[0], exclude)
    s = xn @ qn
    s[~ok] = -np.inf
    return _best(s, min(k, int(ok.sum())))


def space_metrics(
    x: np.ndarray, xy: np.ndarray | None, labels: Sequence, groups: Sequence | None = None
) -> dict[str, float]:
    """One row of the atlas table for an embedding space: see ``METRIC_HELP`` for each column.

    ``x`` (N,D) embeddings, ``xy`` (N,2) its map (or None: trustworthiness is then nan), one label
    per point. The kNN accuracies and trustworthiness share one blocked pass over the
    similarities, and that with the UMAP graph of the same rows (:mod:`explorer.analysis.knn`). With
    ``groups`` (one per point: variants of one source photo share a group), the kNN votes leave each point's own group out and ``chance`` is what a space with no
    information scores under that rule (:func:`chance_level_grouped`, for k = 5); the map's
    trustworthiness and the silhouette do not depend on the groups.
    """
    xn = _unit_rows(x)
    n = xn.shape[0]
    codes = _label_codes(labels, n)
    group_codes = None if groups is None else _group_codes(groups, n)
    out = {
        "knn5": math.nan,
        "knn10": math.nan,
        "chance": chance_level(codes) if groups is None else chance_level_grouped(codes, groups),
        "silhouette": _silhouette_unit(xn, codes, groups),
        "trustworthiness": math.nan,
    }
    if n < 2:
        return out
    trust_k = _adapt_trust_k(n, 5)
    low_nbrs = None
    if xy is not None and trust_k >= 1:
        low = np.asarray(xy, np.float64)
        if low.shape[0] != n:
            raise ValueError(f"The map has {low.shape[0]} points but the space has {n}.")
        low_nbrs = euclidean_knn(low, trust_k)
    idx, _ = cosine_knn(xn, 10)
    if low_nbrs is not None:
        out["trustworthiness"] = _trustworthiness_from(ranks(xn, low_nbrs), n, trust_k)
    sim = None
    if group_codes is not None:
        if np.unique(group_codes).size < 2:
            return out  # one group: no point has a candidate neighbour
        idx, sim, _ = _neighbours(xn, 10, groups=group_codes)
    out["knn5"] = _knn_accuracy_from(idx, codes, 5, sim)
    out["knn10"] = _knn_accuracy_from(idx, codes, 10, sim)
    return out


METRIC_HELP: dict[str, str] = {
    "knn5": "Hide one image's label and let its 5 most similar images vote: the share of images "
    "whose label is guessed right (higher means images with the same meaning sit together).",
    "knn10": "The same vote with the 10 most similar images, which is less sensitive to a single "
    "odd neighbour.",
    "chance": "What a space with no information scores (the commonest label's share; with "
    "same-photo neighbours left out, a random space's score): useful spaces beat it by far.",
    "silhouette": "From −1 to 1, how much closer each image is to its own class than to the "
    "nearest other class (above 0 means classes form separate groups).",
    "trustworthiness": "From 0 to 1, how far the neighbours you see on the 2-D map are true "
    "neighbours in the full space (1 means the map invents no false neighbours).",
    "sample": "Empty when every image was scored; past 50,000 images, the stratified sample "
    "(each class keeps its share) the row's numbers were computed on.",
    "neighbour_overlap": "The share of each image's 10 nearest neighbours that two spaces agree "
    "on (1 means they see the same neighbourhoods, near 0 means unrelated ones).",
}
