"""From mixture weights to the target: the regression, its cross-validated rank correlation,
and the search over simulated mixtures for the predicted best.

We use scikit-learn rather than LightGBM (RegMix's choice): RegMix fits 512 proxies, we fit
tens, and with so few points a ridge regression on the weights, their pairwise products and
their logs (``quadratic``, the default) ranks held-out mixtures better than boosted trees,
whose leaves need many samples each; ``gbm`` (``HistGradientBoostingRegressor``, LightGBM's
algorithm) is there for larger grids. scikit-learn is one dependency for both, already used by
``serve``; LightGBM would add a compiled one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from superlab.common.deps import require

LOG_FLOOR = 0.01  # log(w + 0.01): finite at w = 0, steep below ~1% of training


def log_share(W: np.ndarray) -> np.ndarray:
    """log(w + LOG_FLOOR) per source: a source's own loss falls roughly with the log of its
    share and rises steeply as the share nears 0 (the data mixing laws of Ye et al. 2024
    fit losses as exponentials of the shares); a quadratic alone misses that rise and
    rewards mixtures that starve a source."""
    return np.log(W + LOG_FLOOR)


def make_model(kind: str, seed: int) -> Any:
    """An unfitted regressor of ``kind`` (``quadratic`` or ``gbm``)."""
    require("sklearn", "the mixture search's regression", extra="mix", package="scikit-learn")
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.preprocessing import FunctionTransformer, PolynomialFeatures, StandardScaler

    if kind == "quadratic":
        features = make_union(
            PolynomialFeatures(2, include_bias=False), FunctionTransformer(log_share)
        )
        return make_pipeline(features, StandardScaler(), RidgeCV(alphas=np.logspace(-4, 3, 30)))
    if kind == "gbm":
        return HistGradientBoostingRegressor(
            max_iter=300, learning_rate=0.05, min_samples_leaf=3, random_state=seed
        )
    raise ValueError(f"unknown regression {kind!r} (quadratic or gbm)")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def cross_validated(
    X: np.ndarray, y: np.ndarray, kind: str, folds: int, seed: int
) -> tuple[np.ndarray, float]:
    """Out-of-fold predictions for every proxy and their Spearman correlation with ``y``."""
    from sklearn.model_selection import KFold, cross_val_predict

    k = min(folds, len(y))
    cv = KFold(n_splits=k, shuffle=True, random_state=seed)
    pred = cross_val_predict(make_model(kind, seed), X, y, cv=cv)
    return pred, spearman(pred, y)


def fit(X: np.ndarray, y: np.ndarray, kind: str, seed: int) -> Any:
    """The regressor fitted on every proxy."""
    return make_model(kind, seed).fit(X, y)


def search(model: Any, candidates: np.ndarray, top_k: int) -> tuple[np.ndarray, float, int]:
    """The mean of the ``top_k`` candidates with the lowest predicted target (as RegMix
    averages its top 100), its own prediction, and how many candidates were scored."""
    pred = model.predict(candidates)
    best = np.argsort(pred, kind="stable")[:top_k]
    chosen = candidates[best].mean(axis=0)
    chosen = chosen / chosen.sum()
    return chosen, float(model.predict(chosen[None, :])[0]), len(candidates)
