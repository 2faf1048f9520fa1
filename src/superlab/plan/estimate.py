"""Training-run estimate: FLOPs, GPU-hours, wall-clock, power, energy and rented cost.

The formulas, in order (each is a plain product; no hidden efficiency factors):

- FLOPs per token = 6 x N_active + attention FLOPs per token. 6N is 2N for the
  forward pass and 4N for the backward pass (Kaplan et al. 2020, "Scaling Laws
  for Neural Language Models", sec. 2.1: C = 6NT); attention's QK^T and AV
  products scale with context, not parameters, and are added separately
  (Kaplan et al. 2020, table 1, times 3 for training).
- total FLOPs = FLOPs per token x tokens.
- effective FLOP/s per GPU = peak dense FLOP/s at the precision x MFU
  (model FLOPs utilization; Chowdhery et al. 2022, "PaLM", appendix B).
- GPU-hours = total FLOPs / effective FLOP/s / goodput / 3600; goodput is the
  fraction of reserved time spent making progress (failures, restarts, checkpoints).
- wall-clock days = GPU-hours / number of GPUs / 24.
- IT power = TDP x 1.82 (server) x 1.14 (cluster) x number of GPUs (Epoch AI 2024);
  facility power = IT power x PUE; energy = facility power x wall-clock hours
  (the cluster is assumed to draw that power for the whole run, as Epoch AI does).
- rented cost = GPU-hours x price per GPU-hour.
- owned cost = GPU-hours x capex per GPU / (depreciation life in hours) + energy x $/MWh
  (the run pays the straight-line depreciation of the hours it holds, plus its power).

``training_outputs`` is the same arithmetic on numpy arrays (one element per Monte
Carlo draw); ``estimate_training`` checks scalar inputs and returns one estimate.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from superlab.plan.catalog import (
    CLUSTER_OVERHEAD,
    SERVER_OVERHEAD,
    Accelerator,
    Precision,
    get_accelerator,
)
from superlab.plan.montecarlo import Draws


class EstimateError(ValueError):
    """An input to ``estimate_training`` is out of range; the message names it."""


class TrainingEstimate(BaseModel):
    """The inputs and every derived number of one training-run estimate."""

    model_config = ConfigDict(frozen=True)

    accelerator: str
    precision: str
    num_gpus: int
    params_active: float
    tokens: float
    attn_flops_per_token: float
    mfu: float
    goodput: float
    pue: float
    price_per_gpu_hour: float
    flops_per_token: float
    total_flops: float
    peak_tflops_per_gpu: float
    effective_tflops_per_gpu: float
    gpu_hours: float
    wall_clock_days: float
    power_per_gpu_w: float | None  # all-in IT power; None when the TDP is not published
    it_power_mw: float | None
    facility_power_mw: float | None
    energy_mwh: float | None
    cost_usd: float
    cost_owned_usd: float | None = None  # None unless capex_per_gpu is given


def training_outputs(
    *,
    params_active: Draws,
    tokens: Draws,
    attn_flops_per_token: Draws = 0.0,
    peak_tflops: Draws,
    mfu: Draws,
    goodput: Draws = 1.0,
    num_gpus: Draws = 1,
    power_per_gpu_w: Draws | None = None,
    pue: Draws = 1.2,
    price_per_gpu_hour: Draws = 0.0,
    capex_per_gpu: Draws | None = None,
    life_years: Draws = 5.0,
    price_per_mwh: Draws = 0.0,
) -> dict[str, Any]:
    """Every derived number of a training run, elementwise over numpy arrays or floats."""
    flops_per_token = 6.0 * np.asarray(params_active) + attn_flops_per_token  # Kaplan 2020
    total_flops = flops_per_token * tokens
    effective_tflops = np.asarray(peak_tflops) * mfu
    gpu_hours = total_flops / (effective_tflops * 1e12) / goodput / 3600.0
    wall_hours = gpu_hours / num_gpus
    out: dict[str, Any] = {
        "flops_per_token": flops_per_token,
        "total_flops": total_flops,
        "effective_tflops_per_gpu": effective_tflops,
        "gpu_hours": gpu_hours,
        "wall_clock_days": wall_hours / 24.0,
        "cost_usd": gpu_hours * price_per_gpu_hour,
        "it_power_mw": None,
        "facility_power_mw": None,
        "energy_mwh": None,
        "cost_owned_usd": None,
    }
    if power_per_gpu_w is not None:
        out["it_power_mw"] = np.asarray(power_per_gpu_w) * num_gpus / 1e6
        out["facility_power_mw"] = out["it_power_mw"] * pue
        out["energy_mwh"] = out["facility_power_mw"] * wall_hours
    if capex_per_gpu is not None:
        energy = 0.0 if out["energy_mwh"] is None else out["energy_mwh"] * price_per_mwh
        out["cost_owned_usd"] = gpu_hours * capex_per_gpu / (life_years * 8766.0) + energy
    return out


def attention_flops_per_token(
    layers: int, d_model: int, seq_len: int, n_heads: int | None = None
) -> float:
    """Training attention FLOPs per token of a causal, full-attention model of this shape.

    No second copy of the formula: this is ``superlab.model.counts.flops_per_token``'s
    ``attention`` term for a ``ModelConfig`` of that shape, i.e. 12 x layers x d_attn x
    (seq_len + 1) / 2 with d_attn = n_heads x head_dim = d_model (Kaplan et al. 2020,
    table 1, x 3 for training; causal: a query sees (T + 1) / 2 keys on average). Raises
    ``ValueError`` (one line) for a shape ``ModelConfig`` refuses (e.g. heads not
    dividing d_model).
    """
    from pydantic import ValidationError

    from superlab.config.recipe import ModelConfig
    from superlab.model import counts

    try:
        cfg = ModelConfig(d_model=d_model, n_layers=layers, n_heads=n_heads or 1, vocab_size=2)
    except ValidationError as e:
        first = e.errors()[0]
        where = "".join(f"{x}: " for x in first["loc"])
        raise ValueError(where + str(first["msg"]).removeprefix("Value error, ")) from None
    return counts.flops_per_token(cfg, seq_len)["attention"]


def _check(
    name: str, value: float, *, low: float = 0.0, strict: bool = True, high: float | None = None
) -> None:
    """Raise EstimateError unless value is a finite number above ``low`` (and <= ``high``)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise EstimateError(f"{name} must be a finite number, got {value!r}")
    if (value <= low if strict else value < low) or (high is not None and value > high):
        if high is not None:
            span = f"in {'(' if strict else '['}{low:g}, {high:g}]"
        else:
            span = f"{'>' if strict else '>='} {low:g}"
        raise EstimateError(f"{name} must be {span}, got {value!r}")


def estimate_training(
    params_active: float,
    tokens: float,
    attn_flops_per_token: float,
    accelerator: str | Accelerator,
    precision: Precision = "bf16",
    num_gpus: int = 8,
    mfu: float = 0.4,
    goodput: float = 0.9,
    pue: float = 1.2,
    price_per_gpu_hour: float = 2.5,
    *,
    server_overhead: float = SERVER_OVERHEAD,
    cluster_overhead: float = CLUSTER_OVERHEAD,
    tflops_per_gpu: float | None = None,
    capex_per_gpu: float | None = None,
    life_years: float = 5.0,
    price_per_mwh: float = 0.0,
) -> TrainingEstimate:
    """Estimate compute, time, power, energy and cost; formulas in the module docstring."""
    _check("params_active", params_active)
    _check("tokens", tokens)
    _check("attn_flops_per_token", attn_flops_per_token, strict=False)
    if isinstance(num_gpus, bool) or not isinstance(num_gpus, int) or num_gpus < 1:
        raise EstimateError(f"num_gpus must be an integer >= 1, got {num_gpus!r}")
    _check("mfu", mfu, high=1.0)
    _check("goodput", goodput, high=1.0)
    _check("pue", pue, low=1.0, strict=False)  # a facility draws at least its IT load
    _check("price_per_gpu_hour", price_per_gpu_hour, strict=False)
    _check("server_overhead", server_overhead)
    _check("cluster_overhead", cluster_overhead)
    acc = get_accelerator(accelerator) if isinstance(accelerator, str) else accelerator
    peak_tflops = acc.peak_tflops(precision)
    if tflops_per_gpu is not None:  # throughput given: MFU is what it implies
        _check("tflops_per_gpu", tflops_per_gpu, high=peak_tflops)
        mfu = tflops_per_gpu / peak_tflops
    if capex_per_gpu is not None:
        _check("capex_per_gpu", capex_per_gpu, strict=False)
        _check("life_years", life_years)
    _check("price_per_mwh", price_per_mwh, strict=False)
    power_w = acc.all_in_power_w(server_overhead, cluster_overhead)  # Epoch AI
    out = training_outputs(
        params_active=params_active,
        tokens=tokens,
        attn_flops_per_token=attn_flops_per_token,
        peak_tflops=peak_tflops,
        mfu=mfu,
        goodput=goodput,
        num_gpus=num_gpus,
        power_per_gpu_w=power_w,
        pue=pue,
        price_per_gpu_hour=price_per_gpu_hour,
        capex_per_gpu=capex_per_gpu,
        life_years=life_years,
        price_per_mwh=price_per_mwh,
    )
    scalars = {k: None if v is None else float(v) for k, v in out.items()}
    return TrainingEstimate(
        accelerator=acc.name,
        precision=precision,
        num_gpus=num_gpus,
        params_active=params_active,
        tokens=tokens,
        attn_flops_per_token=attn_flops_per_token,
        mfu=mfu,
        goodput=goodput,
        pue=pue,
        price_per_gpu_hour=price_per_gpu_hour,
        peak_tflops_per_gpu=peak_tflops,
        power_per_gpu_w=power_w,
        **scalars,
    )
