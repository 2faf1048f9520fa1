"""``plan serve`` states a disaggregated deployment like DeepSeek's (issue 15, item 3).

Per-node prefill and decode throughputs, input and output tokens per day, separate
prefill and decode pools, cache hits, fractional average nodes beside whole replicas;
``plan validate`` reproduces DeepSeek's 226.75 average H800 nodes.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from superlab.cli_plan import plan_app
from superlab.plan.serving import serving_outputs
from superlab.plan.validation import SERVING_RUNS, reproduce_serving, validate_all

runner = CliRunner()
DEEPSEEK = [
    "serve", "--accelerator", "h800", "--precision", "fp8", "--disaggregated",
    "--input-tokens-per-day", "608e9", "--output-tokens-per-day", "168e9",
    "--cache-hit-rate", "0.5625", "--prefill-tok-s-per-node", "73.7e3",
    "--prefill-measured-hit-rate", "0.5625", "--decode-tok-s-per-node", "14.8e3",
    "--prefill-gpus-per-replica", "32", "--decode-gpus-per-replica", "144",
    "--peak-to-average", "1.226", "--price", "2", "--params", "671e9",
    "--active-params", "37e9", "--draws", "200", "--json",
]  # fmt: skip
# Hand check: 608e9 / 86,400 = 7.037e6 input tokens/s, all counted by the 73.7k/s a node
# prefills (hits included): 95.48 nodes; 168e9 / 86,400 / 14.8e3 = 131.38 decode nodes.
PREFILL_NODES = 608e9 / 86_400 / 73.7e3
DECODE_NODES = 168e9 / 86_400 / 14.8e3


def test_deepseek_deployment_from_the_cli() -> None:
    res = runner.invoke(plan_app, DEEPSEEK)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    o = {k: v["p50"] for k, v in data["outputs"].items()}
    assert data["disaggregated"] is True
    assert o["nodes_avg"] == pytest.approx(PREFILL_NODES + DECODE_NODES, rel=1e-6)
    assert o["nodes_avg"] == pytest.approx(226.75, rel=0.002)  # DeepSeek's average
    assert o["prefill_gpus_avg"] / 8 == pytest.approx(PREFILL_NODES, rel=1e-6)
    # whole replicas at the peak: ceil(95.48 x 1.226 / 4) = 30 prefill units of 4 nodes,
    # ceil(131.38 x 1.226 / 18) = 9 decode units of 18 nodes: 282 nodes (DeepSeek's peak: 278)
    assert (o["prefill_replicas"], o["decode_replicas"], o["nodes"]) == (30, 9, 282)
    assert o["rented_cost_usd_per_day_avg"] == pytest.approx(87_072, rel=0.002)
    # 56.25% of the input hits the cache; prefill computes the rest
    assert o["computed_input_tok_s_avg"] == pytest.approx(266e9 / 86_400, rel=1e-6)


def test_cache_hits_matter_only_when_the_throughput_counts_computed_tokens() -> None:
    base = dict(
        input_tokens=4000, output_tokens=1000, params_total=671e9, params_active=37e9,
        layers=61, kv_heads=1, head_dim=288, peak_tflops=1979, bandwidth_tb_s=3.35,
        memory_gb=80, input_tokens_per_day=608e9, output_tokens_per_day=168e9,
        prefill_tok_s_per_node=73.7e3, decode_tok_s_per_node=14.8e3, disaggregated=True,
    )  # fmt: skip
    hits = serving_outputs(**base, cache_hit_rate=0.5625, prefill_measured_hit_rate=0.5625)
    assert float(hits["prefill_gpus_avg"]) / 8 == pytest.approx(PREFILL_NODES)
    # the same 73.7k/s read as computed tokens only: 266B computed tokens, 41.8 nodes
    computed = serving_outputs(**base, cache_hit_rate=0.5625)
    assert float(computed["prefill_gpus_avg"]) / 8 == pytest.approx(266e9 / 86_400 / 73.7e3)
    # no cache at all, at the computed rate 73.7k x 0.4375 = 32.2k/s: 218 prefill nodes
    none = serving_outputs(**base, cache_hit_rate=0.0, prefill_measured_hit_rate=0.5625)
    assert float(none["prefill_gpus_avg"]) / 8 == pytest.approx(608e9 / 86_400 / (73.7e3 * 0.4375))


def test_colocated_reports_average_and_replicas() -> None:
    res = runner.invoke(plan_app, ["serve", "--draws", "200", "--json"])
    assert res.exit_code == 0, res.output
    o = {k: v["p50"] for k, v in json.loads(res.stdout)["outputs"].items()}
    # provisioned for the peak (2 x average) in whole replicas of 8, never below the average
    assert o["gpus"] == o["replicas"] * 8 >= 2 * o["gpus_avg"] > o["gpus"] - 8
    assert o["nodes_avg"] == pytest.approx(o["gpus_avg"] / 8)


def test_fp8_weights_take_one_byte() -> None:
    """At fp8 a decode step reads 70 GB of weights, not 140 GB (plus the same KV cache)."""
    args = ["serve", "--draws", "100", "--json"]
    bf16 = json.loads(runner.invoke(plan_app, args).stdout)["outputs"]
    fp8 = json.loads(runner.invoke(plan_app, [*args, "--precision", "fp8"]).stdout)["outputs"]
    kv = 256 * 2 * 80 * 8 * 128 * 2 * 1250  # batch 256 x 0.4096 GB per sequence
    ratio = fp8["decode_tok_s_per_gpu"]["p50"] / bf16["decode_tok_s_per_gpu"]["p50"]
    assert ratio == pytest.approx((140e9 + kv) / (70e9 + kv), rel=1e-6)


def test_validate_has_the_deepseek_serving_row() -> None:
    rows = {r["name"]: r for r in validate_all(draws=2_000)}
    row = rows["deepseek-v3-r1-serving"]
    assert row["metric"] == "nodes_avg" and row["published"] == 226.75
    assert abs(row["rel_error"]) < 0.005 and row["pass"]
    assert row["p10"] <= 226.75 <= row["p90"]  # rounding of ~73.7k and ~14.8k
    readings = row["readings"]
    assert readings["if 73.7k/s counted computed tokens only"]["rel_error"] < -0.2
    assert readings["same traffic with no cache hits"]["rel_error"] > 0.5
    assert "including cache hits" in row["source"] and "2025-03-01" in row["source"]
    again = reproduce_serving(SERVING_RUNS[0], draws=2_000)
    assert again["p50"] == row["p50"]
