"""Serving estimate: accelerators, power and cost for D daily users at Q queries each.

The formulas (elementwise over numpy arrays, so any input may be a distribution):

- peak queries/s = D x Q / 86,400 x peak-to-average ratio.
- prefill tokens/s per GPU = peak FLOP/s x prefill MFU / (2 x N_active): prefill is
  compute-bound, 2 FLOPs per active parameter per token (forward only; attention
  over the prompt is left out, small for prompts under ~8k tokens).
- decode is bandwidth-bound: one step of a replica of G GPUs reads all weights
  once plus every running sequence's KV cache, so step time =
  (weight bytes + B x KV bytes per sequence) / (G x bandwidth x MBU), or the compute
  time B x 2 N_active / (G x peak x MFU) if longer; decode tokens/s per GPU = B /
  step time / G. MoE weights are all read (a big batch touches every expert).
- the batch B is the largest that fits: KV memory = G x HBM x 0.9 - weights,
  KV bytes per sequence = 2 (K, V) x layers x kv_heads x head_dim x bytes x
  (input + output / 2) tokens (the mean context while decoding). B < 1 = KV check fails.
- GPUs = ceil(prefill tokens/s / prefill per GPU + decode tokens/s / decode per GPU),
  rounded up to whole replicas; power and cost follow the training formulas for a
  fleet provisioned for the peak and powered all year.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from superlab.plan.memory import USABLE_FRACTION

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
    daily_users: Any,
    queries_per_user: Any,
    input_tokens: Any,
    output_tokens: Any,
    peak_to_average: Any = 2.0,
    params_total: Any,
    params_active: Any,
    layers: Any,
    kv_heads: Any,
    head_dim: Any,
    peak_tflops: Any,
    bandwidth_tb_s: Any,
    memory_gb: Any,
    gpus_per_replica: Any = 8,
    bytes_per_param: Any = 2.0,
    kv_bytes: Any = 2.0,
    prefill_mfu: Any = PREFILL_MFU,
    decode_mbu: Any = DECODE_MBU,
    decode_mfu: Any = DECODE_MFU,
    max_batch: Any = MAX_BATCH,
    prefill_tok_s_per_gpu: Any = None,
    decode_tok_s_per_gpu: Any = None,
    power_per_gpu_w: Any = None,
    pue: Any = 1.2,
    price_per_gpu_hour: Any = 0.0,
) -> dict[str, Any]:
    """Every derived number of a serving fleet; formulas in the module docstring."""
    qps_avg = np.asarray(daily_users) * queries_per_user / SECONDS_PER_DAY
    qps_peak = qps_avg * peak_to_average
    g = np.asarray(gpus_per_replica, dtype=float)
    weights = np.asarray(params_total) * bytes_per_param
    kv_per_seq = (
        2.0
        * layers
        * kv_heads
        * head_dim
        * kv_bytes
        * (np.asarray(input_tokens) + np.asarray(output_tokens) / 2.0)
    )
    kv_free = g * memory_gb * 1e9 * USABLE_FRACTION - weights
    batch_fit = np.floor(np.maximum(kv_free, 0.0) / kv_per_seq)
    batch = np.maximum(np.minimum(batch_fit, max_batch), 1.0)
    if prefill_tok_s_per_gpu is None:
        prefill_tok_s_per_gpu = np.asarray(peak_tflops) * 1e12 * prefill_mfu / (2 * params_active)
    if decode_tok_s_per_gpu is None:
        mem_time = (weights + batch * kv_per_seq) / (g * bandwidth_tb_s * 1e12 * decode_mbu)
        flop_time = batch * 2 * params_active / (g * np.asarray(peak_tflops) * 1e12 * decode_mfu)
        decode_tok_s_per_gpu = batch / np.maximum(mem_time, flop_time) / g
    busy = (
        qps_peak * input_tokens / prefill_tok_s_per_gpu
        + qps_peak * output_tokens / decode_tok_s_per_gpu
    )
    gpus = np.maximum(np.ceil(busy / g), 1.0) * g
    out_tokens_year = qps_avg * output_tokens * SECONDS_PER_DAY * 365.25
    cost_year = gpus * HOURS_PER_YEAR * price_per_gpu_hour
    out: dict[str, Any] = {
        "queries_per_s_avg": qps_avg,
        "queries_per_s_peak": qps_peak,
        "kv_gb_per_sequence": kv_per_seq / 1e9,
        "batch_per_replica": batch,
        "kv_fits": batch_fit >= 1,
        "prefill_tok_s_per_gpu": np.asarray(prefill_tok_s_per_gpu, dtype=float),
        "decode_tok_s_per_gpu": np.asarray(decode_tok_s_per_gpu, dtype=float),
        "gpus": gpus,
        "rented_cost_usd_per_year": cost_year,
        "cost_per_million_output_tokens": cost_year / out_tokens_year * 1e6,
        "it_power_mw": None,
        "facility_power_mw": None,
        "energy_mwh_per_year": None,
    }
    if power_per_gpu_w is not None:
        out["it_power_mw"] = gpus * power_per_gpu_w / 1e6
        out["facility_power_mw"] = out["it_power_mw"] * pue
        out["energy_mwh_per_year"] = out["facility_power_mw"] * HOURS_PER_YEAR
    return out
