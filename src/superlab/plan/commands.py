"""What ``superlab plan train|serve|fleet|validate`` compute: plain dicts, ready for JSON.

Each function takes already-parsed inputs (numbers or ``montecarlo`` ranges), runs
the vectorized model over Monte Carlo draws and returns p10/p50/p90 for every
output plus tornado data; ``render`` turns the dicts into rich tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from superlab.plan.catalog import get_accelerator
from superlab.plan.estimate import training_outputs
from superlab.plan.fleet import fleet_model, uncertain_inputs
from superlab.plan.inputs import DRAWS, SEED, accelerator_peak, check
from superlab.plan.memory import Layout, training_memory
from superlab.plan.montecarlo import Dist, Input, quantile, simulate, tornado
from superlab.plan.scenario import load_scenario
from superlab.plan.serving import serving_outputs


def recipe_shape(path: Path, seq_len: int | None = None) -> dict[str, Any]:
    """Active params, attention FLOPs and shape of a recipe's model (no torch)."""
    from superlab.config import load_recipe
    from superlab.model import counts

    recipe = load_recipe(path)
    model = recipe.model
    if model.vocab_size is None:
        model = model.model_copy(update={"vocab_size": recipe.tokenizer.vocab_size})
    seq = seq_len or recipe.train.seq_len
    flops = counts.flops_per_token(model, seq)
    params = counts.param_count(model)
    return {
        "params": float(params["total"]),
        "params_active": flops["params_matmul"],
        "attn_flops_per_token": flops["attention"],
        "layers": model.n_layers,
        "d_model": model.d_model,
        "n_heads": model.n_heads,
        "kv_heads": model.kv_heads,
        "head_dim": model.head_dim,
        "seq_len": seq,
        "attention": model.attention.kind,
    }


def memory_spec(
    *,
    params: Input,
    layers: int | None,
    d_model: int | None,
    n_heads: int | None,
    gpus: int,
    tp: int,
    pp: int,
    **rest: Any,
) -> dict[str, Any] | None:
    """Inputs for ``training_memory`` (median params, DP = GPUs / (TP x PP)); None w/o a shape."""
    if not (layers and d_model and n_heads):
        return None
    layout_keys = ("ep", "zero", "micro_batch", "recompute")
    layout = {"tp": tp, "pp": pp, "dp": max(gpus // (tp * pp), 1)}
    layout.update({k: rest.pop(k) for k in layout_keys if k in rest})
    return {
        "params": quantile(params, 0.5),
        "layers": layers,
        "d_model": d_model,
        "n_heads": n_heads,
        "layout": layout,
        **rest,
    }


def _price(acc_name: str, given: Input | None, field: str) -> Input:
    if given is not None:
        return given
    pair = getattr(get_accelerator(acc_name), field)
    if pair is None:
        return 0.0
    return pair[0] if pair[0] == pair[1] else Dist(low=pair[0], high=pair[1])


def plan_train(
    *,
    params_active: Input,
    tokens: Input,
    accelerator: str = "h100-sxm",
    precision: str = "bf16",
    num_gpus: int = 1024,
    mfu: Input | None = None,
    tflops_per_gpu: Input | None = None,
    goodput: Input = 0.9,
    attn_flops_per_token: Input = 0.0,
    pue: Input = 1.2,
    price_per_gpu_hour: Input | None = None,
    capex_per_gpu: Input | None = None,
    life_years: Input = 5.0,
    price_per_mwh: Input = 80.0,
    memory: dict[str, Any] | None = None,
    draws: int = 100_000,
    seed: int = 0,
) -> dict[str, Any]:
    """A training-run estimate with uncertainty, tornado data and a memory check."""
    _check_draws(draws, seed)
    peak = accelerator_peak(accelerator, precision)
    acc = get_accelerator(accelerator)
    inputs: dict[str, Input] = {
        "params_active": params_active,
        "tokens": tokens,
        "attn_flops_per_token": attn_flops_per_token,
        "goodput": goodput,
        "pue": pue,
        "price_per_gpu_hour": _price(accelerator, price_per_gpu_hour, "rent_usd_per_hour"),
        "capex_per_gpu": _price(accelerator, capex_per_gpu, "price_usd"),
        "life_years": life_years,
        "price_per_mwh": price_per_mwh,
    }
    if tflops_per_gpu is not None:  # throughput at this precision, MFU derived
        inputs["tflops_per_gpu"] = tflops_per_gpu
    else:
        inputs["mfu"] = 0.4 if mfu is None else mfu
    power = acc.all_in_power_w()

    def model(**kw: Any) -> dict[str, Any]:
        tflops = kw.pop("tflops_per_gpu", None)
        kw["mfu"] = kw.pop("mfu", None) if tflops is None else tflops / peak
        out = training_outputs(peak_tflops=peak, num_gpus=num_gpus, power_per_gpu_w=power, **kw)
        out["mfu"] = kw["mfu"]
        return out

    result: dict[str, Any] = {
        "accelerator": accelerator,
        "precision": precision,
        "peak_tflops": peak,
        "num_gpus": num_gpus,
        "power_per_gpu_w": power,
        "inputs": _describe(inputs),
        "outputs": simulate(model, inputs, draws, seed),
        "tornado": {k: tornado(model, inputs, k) for k in ("gpu_hours", "cost_usd")},
        "draws": draws,
        "seed": seed,
    }
    if memory:
        layout = Layout(**memory.pop("layout"))
        result["memory"] = training_memory(layout=layout, memory_gb=acc.memory_gb, **memory)
        result["memory"]["layout"] = layout.model_dump()
    return result


def plan_serve(
    *,
    accelerator: str = "h100-sxm",
    precision: str = "bf16",
    disaggregated: bool = False,
    draws: int = 100_000,
    seed: int = 0,
    **inputs: Any,
) -> dict[str, Any]:
    """A serving-fleet estimate with uncertainty and tornado data.

    ``disaggregated``: separate prefill and decode pools (``serving`` module docstring).
    Weights take 1 byte per parameter at fp8 and 2 at bf16; the KV cache stays 16-bit.
    """
    _check_draws(draws, seed)
    acc = get_accelerator(accelerator)
    fixed = {
        "peak_tflops": accelerator_peak(accelerator, precision),
        "bandwidth_tb_s": acc.bandwidth_tb_s,
        "memory_gb": acc.memory_gb,
        "power_per_gpu_w": acc.all_in_power_w(),
        "bytes_per_param": 1.0 if precision == "fp8" else 2.0,
        "disaggregated": disaggregated,
    }
    inputs = {k: v for k, v in inputs.items() if v is not None}
    inputs.setdefault("price_per_gpu_hour", _price(accelerator, None, "rent_usd_per_hour"))

    def model(**kw: Any) -> dict[str, Any]:
        return serving_outputs(**fixed, **kw)

    return {
        "accelerator": accelerator,
        "precision": precision,
        "disaggregated": disaggregated,
        "inputs": _describe(inputs),
        "outputs": simulate(model, inputs, draws, seed),
        "tornado": {k: tornado(model, inputs, k) for k in ("gpus", "gpus_avg")},
        "draws": draws,
        "seed": seed,
    }


def plan_fleet(path: Path, draws: int = 20_000, seed: int = 0) -> dict[str, Any]:
    """Every fleet output by quarter and year, with p10/p50/p90, and tornado data."""
    _check_draws(draws, seed)
    scenario = load_scenario(path)
    inputs = uncertain_inputs(scenario)
    model = fleet_model(scenario)
    outputs = simulate(model, inputs, draws, seed)
    # A tornado only for outputs that vary (a fixed output has nothing to attribute):
    # months of capex a financing covers, and free cash flow by year.
    targets = [
        k
        for k, v in outputs.items()
        if (k.endswith("months_of_capex_covered") or (k.endswith(".fcf_b") and "Q" not in k))
        and v["p90"] > v["p10"]
    ]
    return {
        "scenario": scenario.name,
        "as_of": scenario.as_of,
        "units": scenario.units,
        "inputs": _describe(inputs),
        "outputs": outputs,
        "tornado": {k: tornado(model, inputs, k) for k in targets},
        "draws": draws,
        "seed": seed,
    }


def _check_draws(draws: int, seed: int) -> None:
    """``--draws`` in [1, 10M] and ``--seed`` >= 0, else PlanInputError naming the option."""
    check(float(draws), "--draws", DRAWS)
    check(float(seed), "--seed", SEED)


def _describe(inputs: dict[str, Any]) -> dict[str, Any]:
    """Inputs as JSON: a number, or the distribution with its p10/p50/p90."""
    out: dict[str, Any] = {}
    for k, v in inputs.items():
        if isinstance(v, Dist):
            out[k] = {**v.model_dump(), **{f"p{q}": quantile(v, q / 100) for q in (10, 50, 90)}}
        else:
            out[k] = quantile(v, 0.5)
    return out
