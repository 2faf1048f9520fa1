"""Monte Carlo: ordered quantiles, reproducible draws, speed, tornado ordering, parsing."""

from __future__ import annotations

import time

import pytest

from superlab.plan.estimate import training_outputs
from superlab.plan.montecarlo import Dist, parse, quantile, simulate, tornado

DISTS = [
    Dist(low=1.0, high=3.0),
    Dist(dist="triangular", low=1.0, mode=1.5, high=4.0),
    Dist(dist="normal", low=-2.0, high=5.0),
    Dist(dist="lognormal", low=0.5, high=8.0),
]


def _model(**kw: object) -> dict[str, object]:
    return training_outputs(peak_tflops=989.0, num_gpus=1024, power_per_gpu_w=1452.36, **kw)


INPUTS = {
    "params_active": Dist(dist="lognormal", low=6e9, high=9e9),
    "tokens": [1e12, 2e12],
    "mfu": Dist(dist="triangular", low=0.3, mode=0.4, high=0.45),
    "goodput": 0.9,
    "price_per_gpu_hour": [2.0, 4.0],
}


@pytest.mark.parametrize("dist", DISTS)
def test_input_quantiles_are_ordered_and_match_draws(dist: Dist) -> None:
    p10, p50, p90 = (quantile(dist, q) for q in (0.1, 0.5, 0.9))
    assert p10 <= p50 <= p90
    out = simulate(lambda x: {"x": x}, {"x": dist}, 200_000, seed=1)["x"]
    assert out["p10"] == pytest.approx(p10, abs=0.02 * (dist.high - dist.low))
    assert out["p90"] == pytest.approx(p90, abs=0.02 * (dist.high - dist.low))


def test_every_output_is_ordered_and_seed_is_reproducible() -> None:
    a = simulate(_model, INPUTS, 50_000, seed=7)
    b = simulate(_model, INPUTS, 50_000, seed=7)
    assert a == b
    assert simulate(_model, INPUTS, 50_000, seed=8) != a
    for name, q in a.items():
        assert q["p10"] <= q["p50"] <= q["p90"], name


def test_100k_draws_under_one_second() -> None:
    start = time.perf_counter()
    simulate(_model, INPUTS, 100_000, seed=0)
    assert time.perf_counter() - start < 1.0


def test_tornado_orders_by_swing() -> None:
    rows = tornado(_model, INPUTS, "gpu_hours")
    names = [r["input"] for r in rows]
    assert "price_per_gpu_hour" in names and names[-1] == "price_per_gpu_hour"  # no effect
    assert rows[-1]["swing"] == 0
    assert [r["swing"] for r in rows] == sorted((r["swing"] for r in rows), reverse=True)
    assert "goodput" not in names  # fixed inputs are not swung


def test_parse_cli_forms() -> None:
    assert parse("3") == 3.0
    assert parse("0.38:0.43") == Dist(low=0.38, high=0.43)
    assert parse("1:2:4") == Dist(dist="triangular", low=1, mode=2, high=4)
    assert parse("lognormal:1:4") == Dist(dist="lognormal", low=1, high=4)
    for bad in ("1:2:3:4", "x", "4:1"):
        with pytest.raises(ValueError):
            parse(bad)
