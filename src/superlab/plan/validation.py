"""Published training and serving runs, reproduced from their own published inputs.

The runs (``RUNS``, ``SERVING_RUNS``) are data: ``published_runs.yaml``, each with its
source, loaded by ``published_runs``. Each training row holds what the run's authors
published (parameters, tokens, chips, throughput or MFU) and the figure we reproduce
(GPU-hours, or FLOPs for GPT-3). ``kind="gap"`` rows are runs whose published figures
disagree with each other: we report the throughput their GPU-hours imply and pin it.
``SERVING_RUNS`` reproduce a published serving fleet (DeepSeek's nodes) from its
published tokens and throughputs. ``FLEET_CHECKS`` are the meta-2025 scenario's checks.
"""

from __future__ import annotations

from superlab.plan.catalog import get_accelerator
from superlab.plan.estimate import training_outputs
from superlab.plan.montecarlo import simulate
from superlab.plan.published_runs import RUNS, SERVING_RUNS, Run, ServingRun
from superlab.plan.serving import serving_outputs

TOLERANCE = 0.15  # the acceptance bar on GPU-hours (and FLOPs)


def reproduce(run: Run, draws: int = 100_000, seed: int = 0) -> dict[str, object]:
    """Our p10/p50/p90 for the run's metric, the error vs published, and implied throughput."""
    peak = run.peak_tflops

    def model(mfu: object, goodput: object) -> dict[str, object]:
        return training_outputs(
            params_active=run.params_active,
            tokens=run.tokens,
            attn_flops_per_token=run.attn_flops_per_token,
            peak_tflops=peak,
            mfu=mfu,
            goodput=goodput,
            num_gpus=run.num_gpus,
        )

    result = simulate(model, {"mfu": run.mfu_input, "goodput": run.goodput}, draws, seed)
    ours = result[run.metric]
    total_flops = result["total_flops"]["p50"]
    row: dict[str, object] = {
        "name": run.name,
        "kind": run.kind,
        "metric": run.metric,
        "published": run.published,
        "p10": ours["p10"],
        "p50": ours["p50"],
        "p90": ours["p90"],
        "rel_error": ours["p50"] / run.published - 1,
        "source": run.source,
        "note": run.note,
    }
    if run.metric == "gpu_hours":
        implied = total_flops / (run.published * 3600) / 1e12
        row["implied_tflops_per_gpu"] = implied
        row["implied_mfu"] = implied / peak
    if run.kind == "gap":
        expected = run.implied_tflops_expected or 0.0
        row["implied_tflops_expected"] = expected
        row["pass"] = abs(row["implied_tflops_per_gpu"] / expected - 1) <= 0.01  # type: ignore[operator]
    else:
        row["pass"] = abs(row["rel_error"]) <= TOLERANCE  # type: ignore[arg-type]
    return row


def reproduce_serving(run: ServingRun, draws: int = 100_000, seed: int = 0) -> dict[str, object]:
    """Our p10/p50/p90 average nodes vs the published, other readings, and looser checks."""
    acc = get_accelerator(run.accelerator)
    fixed = {
        "peak_tflops": acc.peak_tflops(run.precision),
        "bandwidth_tb_s": acc.bandwidth_tb_s,
        "memory_gb": acc.memory_gb,
        **run.fixed,
    }

    def model(**kw: object) -> dict[str, object]:
        return serving_outputs(**fixed, **kw)  # type: ignore[arg-type]

    result = simulate(model, run.inputs, draws, seed)
    ours = result["nodes_avg"]
    readings = {}
    for label, change in run.readings.items():
        p50 = simulate(model, {**run.inputs, **change}, draws, seed)["nodes_avg"]["p50"]
        readings[label] = {"nodes_avg": p50, "rel_error": p50 / run.published - 1}
    also = {
        k: {"published": v, "p50": result[k]["p50"], "rel_error": result[k]["p50"] / v - 1}
        for k, v in run.also.items()
    }
    rel = ours["p50"] / run.published - 1
    per_node = float(run.inputs.get("gpus_per_node", 8))  # type: ignore[arg-type]
    return {
        "name": run.name,
        "kind": "reproduce",
        "metric": "nodes_avg",
        "published": run.published,
        "p10": ours["p10"],
        "p50": ours["p50"],
        "p90": ours["p90"],
        "rel_error": rel,
        "prefill_nodes_avg": result["prefill_gpus_avg"]["p50"] / per_node,
        "decode_nodes_avg": result["decode_gpus_avg"]["p50"] / per_node,
        "readings": readings,
        "also": also,
        "source": run.source,
        "note": run.note,
        "pass": abs(rel) <= TOLERANCE,
    }


def validate_all(draws: int = 100_000, seed: int = 0) -> list[dict[str, object]]:
    """Every published run, reproduced: training runs, then serving fleets."""
    rows = [reproduce(r, draws, seed) for r in RUNS]
    return rows + [reproduce_serving(r, draws, seed) for r in SERVING_RUNS]


# The meta-2025 scenario's checks: (label, output, low, high, where the range comes from).
FLEET_CHECKS: tuple[tuple[str, str, float, float, str], ...] = (
    (
        "2025 new-accelerator spend ($B)",
        "2025.new_accelerator_spend_b",
        32.5,
        47.5,
        "1.3-1.9M new H100e (1.9-2.5M end-2025 - 600k end-2024) x ~$25k",
    ),
    (
        "2025 new GPUs' power, chip TDP (GW)",
        "2025.new_chip_tdp_gw",
        0.8,
        1.5,
        "Zuckerberg 2025-01-24: '~1GW of compute' online in 2025",
    ),
    (
        "months of capex burn the Hyperion SPV (~$29B) covers",
        "financing.hyperion-spv.months_of_capex_covered",
        5.5,
        6.0,
        "issue brief: about 5.5-6 months",
    ),
)


def check_fleet(outputs: dict[str, dict[str, float]]) -> list[dict[str, object]]:
    """The FLEET_CHECKS rows against a fleet result's p10/p50/p90; pass = p50 in range."""
    rows: list[dict[str, object]] = []
    for label, key, low, high, source in FLEET_CHECKS:
        q = outputs[key]
        rows.append(
            {
                "check": label,
                "output": key,
                **{k: q[k] for k in ("p10", "p50", "p90")},
                "low": low,
                "high": high,
                "source": source,
                "pass": low <= q["p50"] <= high,
            }
        )
    return rows
