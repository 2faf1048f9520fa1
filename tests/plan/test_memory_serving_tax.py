"""Memory, serving and tax formulas pinned by hand calculation."""

from __future__ import annotations

import pytest

from superlab.plan.memory import Layout, training_memory
from superlab.plan.serving import serving_outputs
from superlab.plan.tax import TaxState, period_tax


def test_memory_zero_stages_and_activations() -> None:
    kw = dict(params=8e9, layers=32, d_model=4096, n_heads=32, seq_len=4096, memory_gb=80)
    # ZeRO-1 over 8 GPUs: weights 16 GB, grads 16 GB, optimizer 96 / 8 = 12 GB
    m = training_memory(layout=Layout(dp=8, zero=1), **kw)
    assert (m["weights_gb"], m["gradients_gb"], m["optimizer_gb"]) == pytest.approx((16, 16, 12))
    # activations, selective recompute, no TP: s b h 34 L = 4096 x 4096 x 34 x 32 bytes
    assert m["activations_gb"] == pytest.approx(4096 * 4096 * 34 * 32 / 1e9)
    assert m["total_gb"] == pytest.approx(44 + 18.254, rel=1e-4) and m["fits"]  # <= 72 GB usable
    full = training_memory(layout=Layout(dp=8, zero=3, recompute="full"), **kw)
    assert full["weights_gb"] == pytest.approx(2.0) and full["gradients_gb"] == pytest.approx(2.0)
    assert full["activations_gb"] == pytest.approx(2 * 4096 * 4096 * 32 / 1e9)
    assert full["fits"]
    # expert params shard over EP; dense over TP x PP
    moe = training_memory(layout=Layout(tp=2, dp=8, ep=4, zero=0), expert_params=6e9, **kw)
    assert moe["weights_gb"] == pytest.approx((2e9 / 2 + 6e9 / 4) * 2 / 1e9)
    with pytest.raises(ValueError, match="ep"):
        Layout(dp=6, ep=4)


def test_serving_hand_check() -> None:
    out = serving_outputs(
        daily_users=8.64e6,
        queries_per_user=10,
        input_tokens=1000,
        output_tokens=500,
        peak_to_average=2.0,
        params_total=70e9,
        params_active=70e9,
        layers=80,
        kv_heads=8,
        head_dim=128,
        peak_tflops=989,
        bandwidth_tb_s=3.35,
        memory_gb=80,
    )
    assert out["queries_per_s_peak"] == pytest.approx(2000.0)  # 8.64e7 / 86400 x 2
    # KV per sequence: 2 x 80 x 8 x 128 x 2 bytes x 1250 tokens = 0.4096 GB
    assert out["kv_gb_per_sequence"] == pytest.approx(0.4096)
    assert out["batch_per_replica"] == 256  # 436 GB free fits 1,064; engine cap 256
    # prefill: 989e12 x 0.5 / 1.4e11 = 3,532 tokens/s per GPU
    assert out["prefill_tok_s_per_gpu"] == pytest.approx(3532.14, rel=1e-5)
    assert bool(out["kv_fits"])
    tight = serving_outputs(
        daily_users=1e6,
        queries_per_user=1,
        input_tokens=1000,
        output_tokens=500,
        params_total=400e9,
        params_active=400e9,
        layers=80,
        kv_heads=8,
        head_dim=128,
        peak_tflops=989,
        bandwidth_tb_s=3.35,
        memory_gb=80,
    )
    assert not bool(tight["kv_fits"])  # 800 GB of weights on 8 x 80 GB


def test_tax_interest_cap_and_minimum_tax() -> None:
    t, state = period_tax(
        ebitda=100.0, tax_depreciation=0.0, book_depreciation=0.0, interest=40.0, state=TaxState()
    )
    assert t["interest_deducted"] == 30.0  # 30% of EBITDA
    assert state.interest_carry == 10.0
    assert t["tax"] == pytest.approx(0.21 * 70)
    # full expensing wipes regular tax; the 15% floor on book income binds
    t2, _ = period_tax(
        ebitda=100.0,
        tax_depreciation=90.0,
        book_depreciation=20.0,
        interest=0.0,
        state=TaxState(),
        camt_tax_depreciation=False,
    )
    assert t2["regular_tax"] == pytest.approx(2.1)
    assert t2["tax"] == pytest.approx(12.0) and bool(t2["min_tax_binds"])
