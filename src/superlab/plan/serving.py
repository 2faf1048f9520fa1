"""Serving estimate: accelerators, power and cost for a day's input and output tokens.

The formulas (elementwise over numpy arrays, so any input may be a distribution):

- demand: D daily users x Q queries x (input, output) tokens per query, or input and
  output tokens per day given directly (DeepSeek publishes those); tokens/s = per day
  / 86,400. A share h of the input tokens hits a prefix (KV) cache and is not computed:
  prefill computes input x (1 - h) tokens.
- prefill tokens/s per GPU = peak FLOP/s x prefill MFU / (2 x N_active): prefill is
  compute-bound, 2 FLOPs per active parameter per computed token (forward only;
  attention over the prompt is left out, small for prompts under ~8k tokens). A
  measured throughput (per GPU, or per node / GPUs per node) may count cache hits:
  measured at hit share h0, it computes throughput x (1 - h0) tokens/s, and that is
  what the GPU count divides by. (A cache hit costs a disk read, not prefill compute;
  the read is left out.)
- decode is bandwidth-bound: one step of a replica of G GPUs reads all weights
  once plus every running sequence's KV cache, so step time =
  (weight bytes + B x KV bytes per sequence) / (G x bandwidth x MBU), or the compute
  time B x 2 N_active / (G x peak x MFU) if longer; decode tokens/s per GPU = B /
  step time / G. MoE weights are all read (a big batch touches every expert).
- the batch B is the largest that fits: KV memory = G x HBM x 0.9 - weights,
  KV bytes per sequence = 2 (K, V) x layers x kv_heads x head_dim x bytes x
  (input + output / 2) tokens (the mean context while decoding). B < 1 = KV check fails.
- GPUs busy on average: prefill = computed input tokens/s / prefill per GPU, decode =
  output tokens/s / decode per GPU; their sum (fractional) is the average fleet, what
  a fleet that follows the load (DeepSeek's: fewer nodes at night) holds on average.
- provisioned for the peak (average x peak-to-average), in whole replicas: co-located,
  ceil(busy GPUs x peak / G) replicas of G GPUs doing both; disaggregated, separate
  prefill and decode pools, each ceil(pool GPUs x peak / its replica size) replicas.
  Power and rented cost per year follow the training formulas for that peak fleet,
  powered all year; cost per day on average is the average fleet x 24 h x price.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from superlab.plan.memory import USABLE_FRACTION
from superlab.plan.montecarlo import Draws

SECONDS_PER_DAY = 86_400.0
HOURS_PER_YEAR = 8_766.0  # 365.25 days
# Default efficiencies (assumptions, override with --prefill-mfu / --decode-mbu):
# prefill matmuls run at about half of peak and decode streams memory at about
# 60-70% of peak bandwidth in tuned engines (vLLM/SGLang-class; order of magnitude).
PREFILL_MFU = 0.5
DECODE_MBU = 0.6
DECODE_MFU = 0.5
MAX_BATCH = 256  # engine cap on concurrent sequences per replica (vLLM's default max_num_seqs)


def serving_outputs(
    *,
    # demand: per query (also the KV cache a sequence holds), and how many
    input_tokens: Draws,
    output_tokens: Draws,
    daily_users: Draws | None = None,
    queries_per_user: Draws | None = None,
    input_tokens_per_day: Draws | None = None,
    output_tokens_per_day: Draws | None = None,
    cache_hit_rate: Draws = 0.0,
    peak_to_average: Draws = 2.0,
    # the model's weights (params_total x bytes_per_param) and compute (params_active)
    params_total: Draws,
    params_active: Draws,
    bytes_per_param: Draws = 2.0,
    # its KV cache per token: 2 (K, V) x layers x kv_heads x head_dim x kv_bytes
    layers: Draws,
    kv_heads: Draws,
    head_dim: Draws,
    kv_bytes: Draws = 2.0,
    # the accelerator
    peak_tflops: Draws,
    bandwidth_tb_s: Draws,
    memory_gb: Draws,
    # the fleet's layout
    gpus_per_replica: Draws = 8,
    disaggregated: bool = False,
    prefill_gpus_per_replica: Draws | None = None,
    decode_gpus_per_replica: Draws | None = None,
    gpus_per_node: Draws = 8,
    # the engine's efficiency, or measured throughputs instead
    prefill_mfu: Draws = PREFILL_MFU,
    decode_mbu: Draws = DECODE_MBU,
    decode_mfu: Draws = DECODE_MFU,
    max_batch: Draws = MAX_BATCH,
    prefill_tok_s_per_gpu: Draws | None = None,
    decode_tok_s_per_gpu: Draws | None = None,
    prefill_tok_s_per_node: Draws | None = None,
    decode_tok_s_per_node: Draws | None = None,
    prefill_measured_hit_rate: Draws = 0.0,
    # power and price
    power_per_gpu_w: Draws | None = None,
    pue: Draws = 1.2,
    price_per_gpu_hour: Draws = 0.0,
) -> dict[str, Any]:
    """Every derived number of a serving fleet; formulas in the module docstring.

    Demand is ``daily_users`` x ``queries_per_user`` x tokens per query, or
    ``input_tokens_per_day`` and ``output_tokens_per_day``; ``input_tokens`` and
    ``output_tokens`` per query also set the KV cache a sequence holds.
    """
    per_day = input_tokens_per_day is not None or output_tokens_per_day is not None
    if per_day and (input_tokens_per_day is None or output_tokens_per_day is None):
        raise ValueError("give both input_tokens_per_day and output_tokens_per_day")
    if not per_day and (daily_users is None or queries_per_user is None):
        raise ValueError("give daily_users and queries_per_user, or tokens per day")
    if per_day:
        in_tok_s = np.asarray(input_tokens_per_day, dtype=float) / SECONDS_PER_DAY
        out_tok_s = np.asarray(output_tokens_per_day, dtype=float) / SECONDS_PER_DAY
        qps_avg = out_tok_s / output_tokens
    else:
        qps_avg = np.asarray(daily_users, dtype=float) * queries_per_user / SECONDS_PER_DAY
        in_tok_s, out_tok_s = qps_avg * input_tokens, qps_avg * output_tokens
    computed_in_tok_s = in_tok_s * (1.0 - np.asarray(cache_hit_rate))
    g = np.asarray(gpus_per_replica, dtype=float)
    g_prefill = g if prefill_gpus_per_replica is None else np.asarray(prefill_gpus_per_replica)
    g_decode = g if decode_gpus_per_replica is None else np.asarray(decode_gpus_per_replica)
    weights = np.asarray(params_total) * bytes_per_param
    kv_per_seq = (
        2.0
        * layers
        * kv_heads
        * head_dim
        * kv_bytes
        * (np.asarray(input_tokens) + np.asarray(output_tokens) / 2.0)
    )
    kv_free = g_decode * memory_gb * 1e9 * USABLE_FRACTION - weights
    batch_fit = np.floor(np.maximum(kv_free, 0.0) / kv_per_seq)
    batch = np.maximum(np.minimum(batch_fit, max_batch), 1.0)
    if prefill_tok_s_per_node is not None:
        prefill_tok_s_per_gpu = np.asarray(prefill_tok_s_per_node) / gpus_per_node
    if prefill_tok_s_per_gpu is None:  # compute-bound: FLOP/s over 2 N per computed token
        prefill_computed = np.asarray(peak_tflops) * 1e12 * prefill_mfu / (2 * params_active)
    else:  # a measured rate that counts cache hits at share h0 computes (1 - h0) of it
        prefill_computed = np.asarray(prefill_tok_s_per_gpu) * (1.0 - prefill_measured_hit_rate)
    if decode_tok_s_per_node is not None:
        decode_tok_s_per_gpu = np.asarray(decode_tok_s_per_node) / gpus_per_node
    if decode_tok_s_per_gpu is None:
        mem_time = (weights + batch * kv_per_seq) / (g_decode * bandwidth_tb_s * 1e12 * decode_mbu)
        flop_time = (
            batch * 2 * params_active / (g_decode * np.asarray(peak_tflops) * 1e12 * decode_mfu)
        )
        decode_tok_s_per_gpu = batch / np.maximum(mem_time, flop_time) / g_decode
    prefill_gpus_avg = computed_in_tok_s / prefill_computed
    decode_gpus_avg = out_tok_s / decode_tok_s_per_gpu
    gpus_avg = prefill_gpus_avg + decode_gpus_avg
    out: dict[str, Any] = {
        "queries_per_s_avg": qps_avg,
        "queries_per_s_peak": qps_avg * peak_to_average,
        "input_tok_s_avg": in_tok_s,
        "computed_input_tok_s_avg": computed_in_tok_s,
        "output_tok_s_avg": out_tok_s,
        "kv_gb_per_sequence": kv_per_seq / 1e9,
        "batch_per_replica": batch,
        "kv_fits": batch_fit >= 1,
        "prefill_tok_s_per_gpu": np.asarray(prefill_computed, dtype=float),
        "decode_tok_s_per_gpu": np.asarray(decode_tok_s_per_gpu, dtype=float),
        "prefill_gpus_avg": prefill_gpus_avg,
        "decode_gpus_avg": decode_gpus_avg,
        "gpus_avg": gpus_avg,
        "nodes_avg": gpus_avg / gpus_per_node,
    }
    if disaggregated:
        prefill_replicas = np.maximum(np.ceil(prefill_gpus_avg * peak_to_average / g_prefill), 1)
        decode_replicas = np.maximum(np.ceil(decode_gpus_avg * peak_to_average / g_decode), 1)
        gpus = prefill_replicas * g_prefill + decode_replicas * g_decode
        out["prefill_replicas"] = prefill_replicas
        out["decode_replicas"] = decode_replicas
    else:
        replicas = np.maximum(np.ceil(gpus_avg * peak_to_average / g), 1.0)
        gpus = replicas * g
        out["replicas"] = replicas
    out_tokens_year = out_tok_s * SECONDS_PER_DAY * 365.25
    cost_year = gpus * HOURS_PER_YEAR * price_per_gpu_hour
    out.update(
        {
            "gpus": gpus,
            "nodes": gpus / gpus_per_node,
            "rented_cost_usd_per_day_avg": gpus_avg * 24.0 * price_per_gpu_hour,
            "rented_cost_usd_per_year": cost_year,
            "cost_per_million_output_tokens": cost_year / out_tokens_year * 1e6,
            "it_power_mw": None,
            "facility_power_mw": None,
            "energy_mwh_per_year": None,
        }
    )
    if power_per_gpu_w is not None:
        out["it_power_mw"] = gpus * power_per_gpu_w / 1e6
        out["facility_power_mw"] = out["it_power_mw"] * pue
        out["energy_mwh_per_year"] = out["facility_power_mw"] * HOURS_PER_YEAR
    return out
