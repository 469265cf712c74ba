"""Autoencoder playground: why does Stable Diffusion use a *variational* autoencoder?

Three tiny models with the same MLP encoder/decoder (64 -> hidden -> hidden -> 2 and back) are
trained on scikit-learn's 8x8 digits (1,797 images, bundled): ``ae`` (reconstruction only, the
2-D latent may go anywhere), ``vae`` (+ beta * KL(q(z|x) || N(0, I))) and ``vq`` (the 2-D encoder
output snapped to the nearest of K codebook vectors; straight-through gradient, codebook and
commitment losses). Reconstruction loss: Bernoulli cross-entropy summed over the 64 pixels.

Arrays in, arrays out (torch, numpy, scikit-learn). Figure data and PNGs are in
``explorer.playground.figures``, the cache of trained models (memory + disk) in
``explorer.playground.cache``. At most one training runs at a time in the process
(``_TRAIN_LOCK``, held by ``train``): bounded cost in public mode.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from explorer.core.progress import Progress

MODELS = ("ae", "vae", "vq")
FORMAT_VERSION = 1  # bump when the architecture, the loss or the training loop changes
LATENT_DIM = 2
PIXELS = 64
N_PRIOR_SAMPLES = 500
N_DIGITS = 1797
MAX_STEPS = 20_000  # 33x the default run (~2 min): caps one training's cost in public mode


_INT_FIELDS = ("epochs", "seed", "codebook_size", "hidden", "batch_size")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Defaults: 600 Adam steps (150 epochs of 4 batches of 512), about 4 s of
    one CPU core per model (``bench/playground.py``); a hidden width of 64 or batches of 1,024
    saved little time but often let the VAE collapse to one latent dimension. The limits bound
    what a public instance can be asked to train (MAX_STEPS)."""

    model: str = "vae"
    epochs: int = 150
    seed: int = 0
    beta: float = 1.0  # VAE: weight of the KL term
    codebook_size: int = 32  # VQ-VAE: number of codebook vectors K
    commitment: float = 0.25  # VQ-VAE: weight of ||z_e - sg(z_q)||^2
    restart_dead_codes: bool = True  # VQ-VAE: codes no digit used in an epoch jump to a digit
    hidden: int = 128
    lr: float = 5e-3
    batch_size: int = 512

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, not {self.model!r}")
        for name in (*_INT_FIELDS, "beta", "lr", "commitment"):
            value = getattr(self, name)  # UI sliders send floats: 250.0 is 250, 2.5 epochs is not
            kind = int if name in _INT_FIELDS else float
            if kind is int and float(value) != int(value):
                raise ValueError(f"TrainConfig.{name} must be a whole number, not {value!r}")
            object.__setattr__(self, name, kind(value))
        checks = {
            "epochs": 1 <= self.epochs <= 2000,
            "beta": 0.0 <= self.beta <= 100.0,
            "codebook_size": 2 <= self.codebook_size <= 512,
            "commitment": 0.0 <= self.commitment <= 10.0,
            "hidden": 4 <= self.hidden <= 512,
            "lr": 0.0 < self.lr <= 1.0,
            "batch_size": 16 <= self.batch_size <= 2048,
            "seed": 0 <= self.seed < 2**63,
            "epochs * batches per epoch": self.steps <= MAX_STEPS,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"TrainConfig out of range: {', '.join(bad)}")

    @property
    def steps(self) -> int:
        """Adam steps of this run: epochs * ceil(1797 / batch_size)."""
        return self.epochs * -(-N_DIGITS // self.batch_size)

    def key(self) -> str:
        """A 20-hex-digit hash of the config and FORMAT_VERSION (the on-disk cache key)."""
        blob = json.dumps({"format": FORMAT_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, n_out),
    )  # fmt: skip


class Net(nn.Module):
    """Encoder + decoder (+ codebook for the VQ-VAE). ``decode`` returns logits."""

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__()
        out = 2 * LATENT_DIM if cfg.model == "vae" else LATENT_DIM
        self.kind = cfg.model
        self.encoder = _mlp(PIXELS, cfg.hidden, out)
        self.decoder = _mlp(LATENT_DIM, cfg.hidden, PIXELS)
        if cfg.model == "vq":
            self.codebook = nn.Parameter(torch.zeros(cfg.codebook_size, LATENT_DIM))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B,64) -> mean / continuous latent (B,2), and log-variance (B,2) for the VAE."""
        h = self.encoder(x)
        if self.kind == "vae":
            return h[:, :LATENT_DIM], h[:, LATENT_DIM:].clamp(-12.0, 8.0)
        return h, None

    def quantise(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,2) -> nearest codebook vectors (B,2) and their indices (B,)."""
        idx = torch.cdist(z, self.codebook).argmin(dim=1)
        return self.codebook[idx], idx


@dataclass
class Trained:
    """A trained model, its config and its loss per epoch (mean over the epoch's batches)."""

    cfg: TrainConfig
    net: Net
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0))
    from_disk: bool = False


@lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray]:
    """() -> (1797,64) float32 pixels in [0,1], (1797,) int64 labels 0..9 (read-only)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    x.flags.writeable = y.flags.writeable = False
    return x, y


_TRAIN_LOCK = threading.Lock()  # at most one training at a time in this process
_COUNT_LOCK = threading.Lock()
_TRAININGS = 0


def training_count() -> int:
    """() -> int >= 0: how many trainings actually ran in this process (cache hits don't count)."""
    return _TRAININGS


_THREADS_LOCK = threading.Lock()
_THREADS_STATE: list = [0, None]  # [number of callers inside, what to restore]


@contextlib.contextmanager
def _one_thread():
    """One thread for torch and for numpy/scikit-learn's BLAS and OpenMP pools inside the block.
    These models and matrices are so small that threads only cost: on a loaded 2-core VM two
    threads made training up to 10x and the classifier's fit 35x slower (spinning BLAS threads).
    The settings are process-wide, so callers are counted: the first one in sets them, the last
    one out restores them. One fixed count also keeps results independent of the caller's."""
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    with _THREADS_LOCK:
        if _THREADS_STATE[0] == 0:
            _THREADS_STATE[1] = (torch.get_num_threads(), threadpool_limits(limits=1))
            torch.set_num_threads(1)
        _THREADS_STATE[0] += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _THREADS_STATE[0] -= 1
            if _THREADS_STATE[0] == 0:
                torch_threads, pools = _THREADS_STATE[1]
                torch.set_num_threads(torch_threads)
                pools.restore_original_limits()


def _loss(
    net: Net, x: torch.Tensor, cfg: TrainConfig, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    mu, logvar = net.encode(x)
    extra, idx = torch.zeros(()), None
    if cfg.model == "vae":
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen)
        kl = 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(dim=1).mean()
        extra = cfg.beta * kl
    elif cfg.model == "vq":
        zq, idx = net.quantise(mu)
        codebook = (mu.detach() - zq).square().sum(dim=1).mean()
        commit = (mu - zq.detach()).square().sum(dim=1).mean()
        extra = codebook + cfg.commitment * commit
        z = mu + (zq - mu).detach()  # straight-through estimator
    else:
        z = mu
    recon = F.binary_cross_entropy_with_logits(net.decoder(z), x, reduction="none")
    return recon.sum(dim=1).mean() + extra, idx


def train(cfg: TrainConfig, progress: Progress | None = None) -> Trained:
    """TrainConfig -> Trained; seeded, deterministic (same cfg, same machine: identical weights).

    Holds the process-wide training lock, uses one torch thread and a forked global RNG (the
    caller's RNG state is left alone). ``progress(fraction in [0,1], text)`` is called a few
    dozen times."""
    global _TRAININGS
    x_all = torch.tensor(digits()[0])
    n = len(x_all)
    if progress is not None and _TRAIN_LOCK.locked():
        progress(0.0, f"{cfg.model}: waiting for another training to finish")
    with _TRAIN_LOCK, _one_thread(), torch.random.fork_rng(devices=[]):
        with _COUNT_LOCK:
            _TRAININGS += 1
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        net = Net(cfg)
        if cfg.model == "vq":  # data-dependent init: K encoder outputs of random digits
            with torch.no_grad():
                pick = torch.randperm(n, generator=gen)[: cfg.codebook_size]
                net.codebook.copy_(net.encode(x_all[pick])[0])
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, fused=True)  # 2.5x faster step
        losses = np.zeros(cfg.epochs)
        every = max(1, cfg.epochs // 50)
        for epoch in range(cfg.epochs):
            perm = torch.randperm(n, generator=gen)
            total, used = 0.0, torch.zeros(cfg.codebook_size, dtype=torch.bool)
            for start in range(0, n, cfg.batch_size):
                x = x_all[perm[start : start + cfg.batch_size]]
                loss, idx = _loss(net, x, cfg, gen)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(x)
                if idx is not None:
                    used[idx] = True
            losses[epoch] = total / n
            if cfg.model == "vq" and cfg.restart_dead_codes and epoch + 1 < cfg.epochs:
                dead = (~used).nonzero().ravel()  # codebook restart: unused codes jump onto
                with torch.no_grad():  # the encodings of random digits
                    pick = torch.randint(0, n, (len(dead),), generator=gen)
                    net.codebook[dead] = net.encode(x_all[pick])[0]
            if progress is not None and ((epoch + 1) % every == 0 or epoch + 1 == cfg.epochs):
                text = f"{cfg.model}: epoch {epoch + 1}/{cfg.epochs}, loss {losses[epoch]:.2f}"
                progress((epoch + 1) / cfg.epochs, text)
        net.eval()
    return Trained(cfg, net, losses)


# ----------------------------------------------------------------------------- inference


def decode(trained: Trained, z: np.ndarray) -> np.ndarray:
    """(N,2) latents -> (N,8,8) float32 decoded images in [0,1] (sigmoid of the logits)."""
    with torch.no_grad():
        logits = trained.net.decoder(torch.tensor(np.asarray(z, dtype=np.float32)))
        return torch.sigmoid(logits).numpy().reshape(-1, 8, 8)


def encode(trained: Trained, x: np.ndarray | None = None) -> np.ndarray:
    """(N,64) digits in [0,1] (default: all 1,797) -> (N,2) float32 latents: the VAE's posterior
    means, the VQ-VAE's continuous (pre-quantisation) encoder outputs."""
    x = digits()[0] if x is None else np.asarray(x, dtype=np.float32).reshape(-1, PIXELS)
    with torch.no_grad():
        return trained.net.encode(torch.tensor(x))[0].numpy()


def quantise(trained: Trained, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,2) continuous latents -> (N,2) nearest codebook vectors, (N,) int64 code indices (VQ)."""
    _need_vq(trained)
    with torch.no_grad():
        zq, idx = trained.net.quantise(torch.tensor(np.asarray(z, dtype=np.float32)))
    return zq.numpy(), idx.numpy()


def codebook(trained: Trained) -> np.ndarray:
    """VQ-VAE -> (K,2) float32 codebook vectors."""
    _need_vq(trained)
    return trained.net.codebook.detach().numpy().copy()


def reconstruct(trained: Trained, x: np.ndarray | None = None) -> np.ndarray:
    """(N,64) digits in [0,1] (default: all) -> (N,8,8) reconstructions in [0,1] (VAE: from the
    posterior mean; VQ: through the quantiser)."""
    z = encode(trained, x)
    if trained.cfg.model == "vq":
        z = quantise(trained, z)[0]
    return decode(trained, z)


def _need_vq(trained: Trained) -> None:
    if trained.cfg.model != "vq":
        raise ValueError(f"only the VQ-VAE has a codebook, not {trained.cfg.model!r}")


def prior_latents(trained: Trained, n: int, seed: int = 0) -> np.ndarray:
    """n >= 1 -> (n,2) float32 draws from the prior: N(0,I) for AE and VAE, uniformly chosen
    codebook vectors for the VQ-VAE."""
    rng = np.random.default_rng(seed)
    if trained.cfg.model == "vq":
        book = codebook(trained)
        return book[rng.integers(0, len(book), size=n)]
    return rng.standard_normal((n, LATENT_DIM)).astype(np.float32)


def prior_samples(trained: Trained, n: int = 16, seed: int = 0) -> np.ndarray:
    """n >= 1 -> (n,8,8) float32 decoded prior samples in [0,1] (see ``prior_latents``)."""
    return decode(trained, prior_latents(trained, n, seed))


def codebook_usage(trained: Trained) -> np.ndarray:
    """VQ-VAE -> (K,) int64 counts: how many of the 1,797 digits quantise to each code."""
    _, idx = quantise(trained, encode(trained))
    return np.bincount(idx, minlength=trained.cfg.codebook_size).astype(np.int64)


# ----------------------------------------------------------------------------- measurements


def gaussian_kl_to_standard(mean: np.ndarray, cov: np.ndarray) -> float:
    """(d,) mean, (d,d) SPD covariance -> KL( N(mean, cov) || N(0, I) ) >= 0 in nats, closed form
    0.5 * (tr cov + |mean|^2 - d - log det cov)."""
    mean = np.asarray(mean, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    sign, logdet = np.linalg.slogdet(cov)
    if sign <= 0:
        return float("inf")
    return float(0.5 * (np.trace(cov) + mean @ mean - len(mean) - logdet))


def fitted_prior_kl(z: np.ndarray, extra_var: np.ndarray | None = None) -> float:
    """(N,d) latents -> KL in nats from the Gaussian fitted to them (mean + full covariance, MLE)
    to N(0, I). ``extra_var`` (d,) is added to the covariance's diagonal (a VAE's mean posterior
    variance, which makes the fit the moment match of the aggregate posterior)."""
    z = np.asarray(z, dtype=np.float64)
    cov = np.cov(z, rowvar=False, bias=True).reshape(z.shape[1], z.shape[1])
    if extra_var is not None:
        cov = cov + np.diag(np.asarray(extra_var, dtype=np.float64))
    return gaussian_kl_to_standard(z.mean(axis=0), cov)


def knn_accuracy(z: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """(N,d) points, (N,) int labels -> leave-one-out k-NN accuracy in [0,1] (Euclidean; a tied
    vote goes to the smallest label)."""
    z = np.asarray(z, dtype=np.float64)
    sq = (z * z).sum(axis=1)
    dist = sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)
    np.fill_diagonal(dist, np.inf)
    nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]
    labels = np.asarray(labels)
    votes = np.zeros((len(z), int(labels.max()) + 1))
    for col in range(k):
        votes[np.arange(len(z)), labels[nearest[:, col]]] += 1
    return float((votes.argmax(axis=1) == labels).mean())


_CLASSIFIER_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _classifier_unlocked():
    from sklearn.linear_model import LogisticRegression

    x, y = digits()
    return LogisticRegression(max_iter=5000, C=1.0).fit(x, y)


def digit_classifier():
    """() -> a scikit-learn LogisticRegression fitted once per process on all 1,797 digits."""
    with _CLASSIFIER_LOCK, _one_thread():
        return _classifier_unlocked()


def classify(images: np.ndarray) -> np.ndarray:
    """(N,8,8) or (N,64) images in [0,1] -> (N,10) class probabilities from ``digit_classifier``."""
    flat = np.asarray(images, dtype=np.float64).reshape(-1, PIXELS)
    with _one_thread():
        return digit_classifier().predict_proba(flat)


def _vae_posterior_var(trained: Trained) -> np.ndarray:
    with torch.no_grad():
        logvar = trained.net.encode(torch.tensor(digits()[0]))[1]
    return logvar.exp().mean(dim=0).numpy()


@_one_thread()
def evaluate(trained: Trained) -> dict[str, float]:
    """Trained -> {recon_mse, prior_kl, sample_confidence, latent_knn5}, all floats.

    recon_mse: mean squared pixel error (pixels in [0,1]) of reconstructing all 1,797 digits.
    prior_kl: KL (nats) from a Gaussian fitted to the latents of the data to N(0, I); for the
    VAE the fit is to its aggregate posterior (covariance of the means + mean posterior
    variance); nan for the VQ-VAE (its prior is uniform over codes, not a Gaussian).
    sample_confidence: mean top-class probability the digit classifier gives to 500 decoded
    prior samples (seed 0). latent_knn5: leave-one-out 5-NN digit accuracy in the latent."""
    x, y = digits()
    z = encode(trained)
    recon = reconstruct(trained).reshape(-1, PIXELS)
    if trained.cfg.model == "vq":
        kl = float("nan")
    elif trained.cfg.model == "vae":
        kl = fitted_prior_kl(z, _vae_posterior_var(trained))
    else:
        kl = fitted_prior_kl(z)
    probs = classify(prior_samples(trained, N_PRIOR_SAMPLES, seed=0))
    return {
        "recon_mse": float(np.mean((recon.astype(np.float64) - x) ** 2)),
        "prior_kl": kl,
        "sample_confidence": float(probs.max(axis=1).mean()),
        "latent_knn5": knn_accuracy(z, y, k=5),
    }


@_one_thread()
def evaluate_extras(trained: Trained) -> dict[str, float | np.ndarray]:
    """Trained -> context for ``evaluate``: latent_mean (2,), latent_std (2,), sample_classes (10,)
    share of the 500 prior samples per predicted digit, sample_class_entropy (nats, max log 10);
    VAE: posterior_std (2,) mean posterior std, prior_kl_means (KL of the means alone);
    VQ: codebook_usage (K,), codes_used, perplexity (exp entropy of code usage, 1..K)."""
    z = encode(trained)
    probs = classify(prior_samples(trained, N_PRIOR_SAMPLES, seed=0))
    share = np.bincount(probs.argmax(axis=1), minlength=10) / len(probs)
    nz = share[share > 0]
    out: dict[str, float | np.ndarray] = {
        "latent_mean": z.mean(axis=0),
        "latent_std": z.std(axis=0),
        "sample_classes": share,
        "sample_class_entropy": float(-(nz * np.log(nz)).sum()),
    }
    if trained.cfg.model == "vae":
        out["posterior_std"] = np.sqrt(_vae_posterior_var(trained))
        out["prior_kl_means"] = fitted_prior_kl(z)
    if trained.cfg.model == "vq":
        counts = codebook_usage(trained)
        p = counts[counts > 0] / counts.sum()
        out["codebook_usage"] = counts
        out["codes_used"] = int((counts > 0).sum())
        out["perplexity"] = float(np.exp(-(p * np.log(p)).sum()))
    return out


@_one_thread()
def classifier_reference(seed: int = 0) -> dict[str, float]:
    """() -> mean top-class probability of the digit classifier on reference inputs, to read
    sample_confidence against: real digits (its own training data), uniform noise images, and
    the mean digit (all three in [0,1])."""
    x, _ = digits()
    noise = np.random.default_rng(seed).random((N_PRIOR_SAMPLES, PIXELS))
    return {
        "real_digits": float(classify(x).max(axis=1).mean()),
        "uniform_noise": float(classify(noise).max(axis=1).mean()),
        "mean_digit": float(classify(x.mean(axis=0, keepdims=True)).max()),
    }
