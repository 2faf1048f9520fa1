"""The regression and the search: on a response with a known optimum, they must find it."""

from __future__ import annotations

import numpy as np
import pytest

from superlab.mix import regress, sample

OPTIMUM = np.array([0.15, 0.45, 0.25, 0.15])
NATURAL = {"web": 0.55, "code": 0.2, "chat": 0.15, "docs": 0.1}


def response(W: np.ndarray, rng: np.random.Generator, noise: float = 0.002) -> np.ndarray:
    """A loss-like bowl with its minimum at OPTIMUM, plus noise."""
    return (
        1.0
        + ((W - OPTIMUM) ** 2 * np.array([2.0, 1.0, 3.0, 1.5])).sum(1)
        + noise * rng.normal(size=len(W))
    )


@pytest.mark.parametrize("kind", ["quadratic", "gbm"])
def test_the_search_finds_a_known_optimum(kind):
    rng = np.random.default_rng(0)
    n = 48 if kind == "quadratic" else 160  # trees need more points (why quadratic is default)
    W = sample.dirichlet(NATURAL, n, (0.3, 5.0), rng)
    y = response(W, rng)
    _, rho = regress.cross_validated(W, y, kind, folds=5, seed=0)
    assert rho >= (0.95 if kind == "quadratic" else 0.8)
    model = regress.fit(W, y, kind, seed=0)
    candidates = sample.dirichlet(NATURAL, 100_000, (0.3, 5.0), rng)
    best, predicted, scored = regress.search(model, candidates, top_k=100)
    assert scored == 100_000 and best.sum() == pytest.approx(1.0)
    tol = 0.05 if kind == "quadratic" else 0.12
    assert np.abs(best - OPTIMUM).max() < tol, best
    nat = np.array(list(NATURAL.values()))
    assert response(best[None], rng, 0)[0] < response(nat[None], rng, 0)[0]
    if kind == "quadratic":
        assert predicted == pytest.approx(1.0, abs=0.01)


def test_spearman_ranks():
    assert regress.spearman(np.array([1, 2, 3, 4]), np.array([10, 20, 30, 40])) == 1.0
    assert regress.spearman(np.array([1, 2, 3, 4]), np.array([4, 3, 2, 1])) == -1.0


def test_dirichlet_draws_centre_on_the_prior_and_feasibility_filters():
    rng = np.random.default_rng(1)
    W = sample.dirichlet(NATURAL, 20_000, (1.0, 1.0), rng)
    assert np.allclose(W.sum(1), 1.0)
    assert np.allclose(W.mean(0), list(NATURAL.values()), atol=0.01)
    sparse = sample.dirichlet(NATURAL, 2_000, (0.05, 0.05), rng)
    assert (sparse.max(1) > 0.9).mean() > (W.max(1) > 0.9).mean()  # small c: sparse mixtures
    windows, max_epochs = np.array([100, 10, 100, 100]), np.full(4, 4.0)
    ok = sample.feasible(W, windows, max_epochs, rows=200)  # code: 200 * w / 10 <= 4
    assert np.array_equal(ok, W[:, 1] <= 0.2)
    drawn = sample.draw_feasible(NATURAL, 50, (0.3, 5.0), windows, max_epochs, 200, rng)
    assert drawn.shape == (50, 4) and (drawn[:, 1] <= 0.2).all()
    with pytest.raises(ValueError, match="max_epochs"):
        sample.draw_feasible(NATURAL, 5, (0.3, 5.0), np.zeros(4), max_epochs, 200, rng)
    assert sample.natural({"a": 3, "b": 1}) == {"a": 0.75, "b": 0.25}
    assert sample.uniform(["a", "b"]) == {"a": 0.5, "b": 0.5}
