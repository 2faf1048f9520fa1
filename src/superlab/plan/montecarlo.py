"""Uncertain inputs and vectorized Monte Carlo: p10/p50/p90 for every output, tornado data.

An input is a number, a ``[low, high]`` range (uniform) or a ``Dist``. For
``normal`` and ``lognormal`` the low and high are the p10 and p90; for
``triangular`` they are the ends and ``mode`` the peak. A model is a function of
keyword arrays (or scalars) returning ``{output: array}``; it is evaluated once
on all draws at the same time, so 100k draws take milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

Z90 = 1.2815515655446004  # standard normal quantile at 0.9: p10/p90 = mu -/+ 1.2816 sigma
DEFAULT_DRAWS = 100_000
DEFAULT_SEED = 0

Model = Callable[..., Mapping[str, Any]]


class Dist(BaseModel):
    """A distribution: ``low``/``high`` are the range ends (uniform, triangular) or p10/p90."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dist: Literal["uniform", "triangular", "normal", "lognormal"] = "uniform"
    low: float
    high: float
    mode: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Dist:
        if not self.low <= self.high:
            raise ValueError(f"low ({self.low:g}) must be <= high ({self.high:g})")
        if self.dist == "lognormal" and self.low <= 0:
            raise ValueError("lognormal needs low > 0")
        if self.dist == "triangular" and (
            self.mode is None or not self.low <= self.mode <= self.high
        ):
            raise ValueError("triangular needs low <= mode <= high")
        return self


Input = float | Dist
# What a model function receives for an input: a number (a fixed input), or an array of
# one value per draw (an uncertain one, as ``simulate`` samples it).
Draws = float | np.ndarray


def as_input(value: Any) -> Input:
    """A number, ``[low, high]`` (uniform), a dict for ``Dist`` or a Dist, as an ``Input``."""
    if isinstance(value, Dist):
        return value
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise ValueError(f"a range is [low, high], got {list(value)!r}")
        low, high = (float(v) for v in value)
        return float(low) if low == high else Dist(low=low, high=high)
    if isinstance(value, dict):
        return Dist.model_validate(value)
    if isinstance(value, bool):
        raise ValueError(f"expected a number or a range, got {value!r}")
    return float(value)


def parse(text: str) -> Input:
    """CLI form: ``3``, ``0.38:0.43`` (uniform), ``lo:mode:hi`` (triangular), ``lognormal:a:b``.

    Raises ``ValueError`` with a one-line message (never pydantic's multi-line text).
    """
    usage = f"cannot read {text!r}: use 3, 0.38:0.43, 1:2:4 or lognormal:1:4"
    parts = text.strip().split(":")
    kind = parts[0] if parts[0] in ("uniform", "normal", "lognormal", "triangular") else ""
    try:
        nums = [float(p) for p in (parts[1:] if kind else parts)]
    except ValueError:
        raise ValueError(usage) from None
    bad = [p for p, x in zip(parts[1:] if kind else parts, nums, strict=True) if not np.isfinite(x)]
    if bad:
        raise ValueError(f"{text!r}: {bad[0]!r} is not a finite number")
    kind = kind or {1: "fixed", 2: "uniform", 3: "triangular"}.get(len(nums), "bad")
    if kind == "fixed":
        return nums[0]
    if len(nums) != (3 if kind == "triangular" else 2) or kind == "bad":
        raise ValueError(usage)
    try:
        if kind == "triangular":
            return Dist(dist="triangular", low=nums[0], mode=nums[1], high=nums[2])
        return Dist(dist=kind, low=nums[0], high=nums[1])  # type: ignore[arg-type]
    except ValidationError as e:
        msg = str(e.errors()[0]["msg"]).removeprefix("Value error, ")
        raise ValueError(f"{text!r}: {msg}") from None


def support(value: Input) -> tuple[float, float]:
    """The smallest and largest value a draw of ``value`` can take (may be infinite).

    A number is itself; uniform and triangular stay within [low, high]; a lognormal is
    any positive number and a normal any number, whatever their p10 and p90.
    """
    value = as_input(value)
    if not isinstance(value, Dist):
        return float(value), float(value)
    if value.dist in ("uniform", "triangular") or value.low == value.high:
        return value.low, value.high
    if value.dist == "lognormal":  # every positive number, never 0 itself
        return float(np.nextafter(0.0, 1.0)), float("inf")
    return float("-inf"), float("inf")


def sample(value: Any, n: int, rng: np.random.Generator) -> np.ndarray | float:
    """``n`` draws of ``value`` (a fixed number stays a scalar and broadcasts)."""
    value = as_input(value)
    if not isinstance(value, Dist):
        return float(value)
    lo, hi = value.low, value.high
    if lo == hi:
        return lo
    if value.dist == "uniform":
        return rng.uniform(lo, hi, n)
    if value.dist == "triangular":
        return rng.triangular(lo, value.mode, hi, n)
    if value.dist == "normal":
        return rng.normal((lo + hi) / 2, (hi - lo) / (2 * Z90), n)
    mu, sigma = (np.log(lo) + np.log(hi)) / 2, (np.log(hi) - np.log(lo)) / (2 * Z90)
    return rng.lognormal(mu, sigma, n)


def quantile(value: Any, q: float) -> float:
    """The exact ``q`` quantile of an input (used for p50 baselines and tornado ends)."""
    value = as_input(value)
    if not isinstance(value, Dist):
        return float(value)
    lo, hi = value.low, value.high
    if value.dist == "uniform":
        return lo + q * (hi - lo)
    if value.dist == "triangular":
        assert value.mode is not None
        c = (value.mode - lo) / (hi - lo) if hi > lo else 0.0
        if q < c:
            return lo + float(np.sqrt(q * (hi - lo) * (value.mode - lo)))
        return hi - float(np.sqrt((1 - q) * (hi - lo) * (hi - value.mode)))
    z = _norm_ppf(q)
    if value.dist == "normal":
        return (lo + hi) / 2 + z * (hi - lo) / (2 * Z90)
    mu, sigma = (np.log(lo) + np.log(hi)) / 2, (np.log(hi) - np.log(lo)) / (2 * Z90)
    return float(np.exp(mu + z * sigma))


def _norm_ppf(q: float) -> float:
    """Standard normal quantile for the three quantiles used here."""
    table = {0.1: -Z90, 0.5: 0.0, 0.9: Z90}
    if q not in table:
        raise ValueError(f"only p10, p50 and p90 are tabulated, got q={q}")
    return table[q]


def percentiles(values: Any) -> dict[str, float]:
    """p10, p50, p90 (and mean) of an array or scalar."""
    arr = np.asarray(values, dtype=float)
    p10, p50, p90 = (float(v) for v in np.percentile(arr, [10, 50, 90]))
    return {"p10": p10, "p50": p50, "p90": p90, "mean": float(arr.mean())}


def draw_inputs(
    inputs: Mapping[str, Input], draws: int = DEFAULT_DRAWS, seed: int = DEFAULT_SEED
) -> dict[str, np.ndarray | float]:
    """One array of draws per uncertain input, in a fixed order from ``seed``."""
    rng = np.random.default_rng(seed)
    return {name: sample(value, draws, rng) for name, value in inputs.items()}


def simulate(
    model: Model,
    inputs: Mapping[str, Input],
    draws: int = DEFAULT_DRAWS,
    seed: int = DEFAULT_SEED,
) -> dict[str, dict[str, float]]:
    """p10/p50/p90/mean of every model output over ``draws`` joint draws of the inputs."""
    outputs = model(**draw_inputs(inputs, draws, seed))
    return {name: percentiles(v) for name, v in outputs.items() if v is not None}


def tornado(model: Model, inputs: Mapping[str, Input], output: str) -> list[dict[str, float | str]]:
    """Swing of ``output`` as each uncertain input moves p10 -> p90, others at p50; widest first."""
    base = {k: quantile(v, 0.5) for k, v in inputs.items()}
    center = float(np.asarray(model(**base)[output]))
    rows: list[dict[str, float | str]] = []
    for name, raw in inputs.items():
        value = as_input(raw)
        if not isinstance(value, Dist) or value.low == value.high:
            continue
        low = float(np.asarray(model(**{**base, name: quantile(value, 0.1)})[output]))
        high = float(np.asarray(model(**{**base, name: quantile(value, 0.9)})[output]))
        rows.append(
            {
                "input": name,
                "input_p10": quantile(value, 0.1),
                "input_p90": quantile(value, 0.9),
                "output_at_p10": low,
                "output_at_p90": high,
                "base": center,
                "swing": abs(high - low),
            }
        )
    return sorted(rows, key=lambda r: -float(r["swing"]))
