"""Training estimates pinned by hand calculation; bad inputs fail with the field's name."""

from __future__ import annotations

import subprocess
import sys

import pytest

from superlab.plan import EstimateError, estimate_training, get_accelerator


def test_7b_dense_2t_tokens_on_1024_h100() -> None:
    est = estimate_training(
        params_active=7e9,
        tokens=2e12,
        attn_flops_per_token=0.0,
        accelerator="h100-sxm",
        precision="bf16",
        num_gpus=1024,
        mfu=0.4,
        goodput=1.0,
        pue=1.2,
        price_per_gpu_hour=2.0,
    )
    # 6 x 7e9 x 2e12 = 8.4e22 FLOPs; 989e12 x 0.4 = 3.956e14 FLOP/s per GPU;
    # 8.4e22 / 3.956e14 = 2.12336e8 GPU-seconds = 58,982.1 GPU-hours.
    assert est.total_flops == pytest.approx(8.4e22)
    assert est.effective_tflops_per_gpu == pytest.approx(395.6)
    assert est.gpu_hours == pytest.approx(58_982.14, rel=1e-6)
    # 58,982.14 / 1024 GPUs = 57.600 h = 2.400 days
    assert est.wall_clock_days == pytest.approx(2.39999, rel=1e-5)
    # 700 W x 1.82 x 1.14 x 1024 = 1.48722 MW IT; x 1.2 PUE = 1.78466 MW
    assert est.it_power_mw == pytest.approx(1.487217, rel=1e-6)
    assert est.facility_power_mw == pytest.approx(1.784660, rel=1e-6)
    # 1.78466 MW x 57.600 h = 102.796 MWh; 58,982.14 GPU-h x $2 = $117,964
    assert est.energy_mwh == pytest.approx(102.796, rel=1e-5)
    assert est.cost_usd == pytest.approx(117_964.27, rel=1e-6)


def test_attention_goodput_and_fp8() -> None:
    est = estimate_training(
        params_active=1e9,
        tokens=1e10,
        attn_flops_per_token=2e9,
        accelerator=get_accelerator("b200"),
        precision="fp8",
        num_gpus=8,
        mfu=0.5,
        goodput=0.8,
    )
    # (6e9 + 2e9) x 1e10 = 8e19; / (4500e12 x 0.5) = 35,555.6 s; / 0.8 / 3600 = 12.3457 h
    assert est.flops_per_token == 8e9
    assert est.gpu_hours == pytest.approx(8e19 / 2.25e15 / 0.8 / 3600)
    assert est.gpu_hours == pytest.approx(12.3457, rel=1e-5)
    assert est.wall_clock_days == pytest.approx(12.3457 / 8 / 24, rel=1e-5)


def test_no_tdp_leaves_power_empty() -> None:
    est = estimate_training(1e9, 1e10, 0.0, "tpu-v5p")
    assert est.it_power_mw is None and est.energy_mwh is None
    assert est.cost_usd > 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("params_active", 0.0, "params_active must be > 0"),
        ("tokens", -1.0, "tokens must be > 0"),
        ("tokens", float("nan"), "tokens must be a finite number"),
        ("attn_flops_per_token", -1.0, "attn_flops_per_token must be >= 0"),
        ("num_gpus", 0, "num_gpus must be an integer >= 1"),
        ("num_gpus", 2.5, "num_gpus must be an integer >= 1"),
        ("mfu", 0.0, r"mfu must be in \(0, 1\]"),
        ("mfu", 1.5, r"mfu must be in \(0, 1\]"),
        ("goodput", 0.0, r"goodput must be in \(0, 1\]"),
        ("pue", 0.9, "pue must be >= 1"),
        ("price_per_gpu_hour", -2.0, "price_per_gpu_hour must be >= 0"),
    ],
)
def test_invalid_inputs(field: str, value: float, message: str) -> None:
    kwargs = {"params_active": 1e9, "tokens": 1e10, "attn_flops_per_token": 0.0}
    kwargs[field] = value
    with pytest.raises(EstimateError, match=message):
        estimate_training(accelerator="h100-sxm", **kwargs)


def test_unsupported_precision_and_unknown_accelerator() -> None:
    with pytest.raises(ValueError, match="no 'fp8'"):
        estimate_training(1e9, 1e10, 0.0, "tpu-v5p", precision="fp8")
    with pytest.raises(ValueError, match=r"known accelerators: a100, b200, .*h100-sxm"):
        estimate_training(1e9, 1e10, 0.0, "v100")


def test_import_plan_does_not_import_torch() -> None:
    code = (
        "import sys, superlab.plan, superlab.plan.stage, superlab.plan.commands; "
        "import superlab.cli_plan; "
        "assert 'torch' not in sys.modules, 'plan imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
