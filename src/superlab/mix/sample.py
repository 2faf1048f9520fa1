"""Mixtures: the natural and uniform ones, Dirichlet draws around the natural one, feasibility.

A mixture is a weight per source, summing to 1. RegMix (Liu et al., ICLR 2025) draws its
proxy mixtures from a Dirichlet centred on the natural token distribution, with the
concentration varied so that both sparse and near-natural mixtures are seen; we draw
``c`` log-uniformly from ``concentration`` and then ``Dirichlet(c * K * natural)``.
A mixture is feasible for a run when no source would be read more than its
``max_epochs`` times (windows drawn / windows it has).
"""

from __future__ import annotations

import numpy as np

Weights = dict[str, float]


def natural(train_tokens: dict[str, int]) -> Weights:
    """Each source's share of the train tokens."""
    total = sum(train_tokens.values())
    return {s: n / total for s, n in train_tokens.items()}


def uniform(names: list[str]) -> Weights:
    """The same weight for every source."""
    return {s: 1 / len(names) for s in names}


def dirichlet(
    prior: Weights, n: int, concentration: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """``n`` mixtures (rows) drawn around ``prior``: ``Dirichlet(c * K * prior)``, c log-uniform."""
    p = np.asarray(list(prior.values()), dtype=np.float64)
    lo, hi = np.log(concentration[0]), np.log(concentration[1])
    c = np.exp(rng.uniform(lo, hi, size=n))
    alpha = np.maximum(c[:, None] * len(p) * p[None, :], 1e-3)
    return normalize(rng.gamma(alpha))  # a Dirichlet draw is independent gammas, normalized


def normalize(raw: np.ndarray) -> np.ndarray:
    """Rows scaled to sum to 1 (a row of zeros stays uniform)."""
    sums = raw.sum(axis=1, keepdims=True)
    out = np.where(sums > 0, raw / np.where(sums > 0, sums, 1), 1 / raw.shape[1])
    return out


def epochs_needed(weights: np.ndarray, windows: np.ndarray, rows: int) -> np.ndarray:
    """Passes over each source (columns) that ``rows`` training windows would need."""
    return rows * weights / np.maximum(windows, 1)


def feasible(
    weights: np.ndarray, windows: np.ndarray, max_epochs: np.ndarray, rows: int
) -> np.ndarray:
    """Which mixtures (rows of ``weights``) keep every source within its ``max_epochs``."""
    return np.all(epochs_needed(weights, windows, rows) <= max_epochs, axis=1)


def draw_feasible(
    prior: Weights,
    n: int,
    concentration: tuple[float, float],
    windows: np.ndarray,
    max_epochs: np.ndarray,
    rows: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``n`` feasible mixtures around ``prior`` (draws that break ``max_epochs`` are redrawn)."""
    out: list[np.ndarray] = []
    for _ in range(1000):
        batch = normalize(dirichlet(prior, max(4 * n, 64), concentration, rng))
        out += list(batch[feasible(batch, windows, max_epochs, rows)])
        if len(out) >= n:
            return np.stack(out[:n])
    raise ValueError(
        f"fewer than {n} of the mixtures drawn keep every source within max_epochs; "
        "train the proxies for fewer steps or raise max_epochs"
    )
