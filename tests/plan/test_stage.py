"""The plan stage against a fake ``superlab.model.counts`` with fixed, hand-checkable counts."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import superlab.model
from superlab.common import RunDir, StageContext, StageError
from superlab.config import ModelConfig, Recipe
from superlab.plan.stage import run

# The fake model: MoE-like, a quarter of the parameters active per token.
TOTAL, ACTIVE, MATMUL, ATTN = 1e9, 2.5e8, 2e8, 1e6


@pytest.fixture
def fake_counts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Install a fake counts module with the real one's API and record its calls."""
    calls: list[tuple[str, Any]] = []

    def param_count(cfg: ModelConfig) -> dict[str, float]:
        calls.append(("param_count", cfg.vocab_size))
        return {"total": TOTAL, "active": ACTIVE, "embedding": 1e7, "non_embedding": TOTAL - 1e7}

    def flops_per_token(cfg: ModelConfig, seq_len: int) -> dict[str, float]:
        calls.append(("flops_per_token", (seq_len, cfg.vocab_size)))
        return {
            "params_matmul": MATMUL,
            "matmul": 6 * MATMUL,
            "attention": ATTN,
            "forward": 2 * MATMUL + ATTN / 3,
            "total": 6 * MATMUL + ATTN,
        }

    fake = types.ModuleType("superlab.model.counts")
    fake.param_count = param_count  # type: ignore[attr-defined]
    fake.flops_per_token = flops_per_token  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "superlab.model.counts", fake)
    monkeypatch.setattr(superlab.model, "counts", fake, raising=False)
    return calls


def _ctx(tmp_path: Path, **sections: Any) -> StageContext:
    return StageContext(recipe=Recipe(name="t", **sections), run=RunDir(tmp_path))


def test_plan_json_pins_both_estimates(tmp_path: Path, fake_counts: list) -> None:
    ctx = _ctx(tmp_path, train={"steps": 100, "batch_size": 8, "grad_accum": 2, "seq_len": 128})
    summary = run(ctx)
    plan = json.loads(ctx.run.plan.read_text())

    # this run: 100 steps x 8 x 2 x 128 = 204,800 tokens
    assert plan["this_run"]["tokens"] == 204_800
    # at scale: 20 x 1e9 total params = 2e10 tokens (Chinchilla)
    assert plan["at_scale"]["tokens"] == 2e10
    assert "Chinchilla" in plan["at_scale"]["tokens_source"]
    # 6N uses the active matmul weights: (6 x 2e8 + 1e6) x 2e10 = 2.402e19 FLOPs on
    # h100-sxm bf16 (989 TFLOP/s) at the default MFU 0.4 and goodput 0.9:
    # 2.402e19 / 3.956e14 = 60,717.9 s; / 0.9 / 3600 = 18.7401 GPU-hours
    assert plan["at_scale"]["total_flops"] == pytest.approx(2.402e19)
    assert plan["at_scale"]["gpu_hours"] == pytest.approx(18.7401, rel=1e-5)
    assert plan["at_scale"]["cost_usd"] == pytest.approx(18.7401 * 2.5, rel=1e-5)
    assert plan["inputs"]["accelerator"]["source"]
    assert plan["inputs"]["params"]["active"] == ACTIVE
    assert plan["at_scale"]["params_active"] == MATMUL
    assert summary["scale_gpu_hours"] == pytest.approx(18.7401, rel=1e-5)
    assert summary["accelerator"] == "h100-sxm x 8 (bf16)"
    assert fake_counts[1] == ("flops_per_token", (128, 4096))


def test_target_tokens_override(tmp_path: Path, fake_counts: list) -> None:
    ctx = _ctx(tmp_path, plan={"target_tokens": 1e12, "num_gpus": 64})
    assert run(ctx)["scale_tokens"] == 1e12
    plan = json.loads(ctx.run.plan.read_text())
    assert plan["at_scale"]["tokens_source"] == "plan.target_tokens"
    assert plan["at_scale"]["num_gpus"] == 64


def test_every_hardware_assumption_of_the_plan_section_reaches_both_estimates(
    tmp_path: Path, fake_counts: list
) -> None:
    given = {
        "precision": "fp8",
        "num_gpus": 16,
        "mfu": 0.3,
        "goodput": 0.8,
        "pue": 1.4,
        "price_per_gpu_hour": 3.0,
    }
    ctx = _ctx(tmp_path, plan=given)
    run(ctx)
    plan = json.loads(ctx.run.plan.read_text())
    for estimate in ("this_run", "at_scale"):
        assert {k: plan[estimate][k] for k in given} == given


def test_vocab_size_resolution_order(tmp_path: Path, fake_counts: list) -> None:
    run(_ctx(tmp_path, model={"vocab_size": 5000}))
    assert fake_counts[-2] == ("param_count", 5000)
    ctx = _ctx(tmp_path)
    run(ctx)
    assert fake_counts[-2] == ("param_count", 4096)  # tokenizer.vocab_size
    ctx.run.shards.mkdir(parents=True)
    (ctx.run.shards / "index.json").write_text(json.dumps({"vocab_size": 3000}))
    run(ctx)
    assert fake_counts[-2] == ("param_count", 3000)
    assert json.loads(ctx.run.plan.read_text())["inputs"]["vocab_source"].endswith("index.json")


def test_unknown_accelerator_is_a_stage_error(tmp_path: Path, fake_counts: list) -> None:
    with pytest.raises(StageError, match=r"known accelerators: .*h100-sxm"):
        run(_ctx(tmp_path, plan={"accelerator": "v100"}))
    with pytest.raises(StageError, match="no 'fp8'"):
        run(_ctx(tmp_path, plan={"accelerator": "tpu-v5p", "precision": "fp8"}))
    assert not RunDir(tmp_path).plan.exists()


@pytest.mark.skipif(
    importlib.util.find_spec("superlab.model.counts") is None,
    reason="superlab.model.counts is not written yet",
)
def test_with_real_counts(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    summary = run(ctx)
    assert 0 < summary["params_active"] <= summary["params_total"]
    assert json.loads(ctx.run.plan.read_text())["this_run"]["gpu_hours"] > 0


def test_a_vision_model_reports_its_tower_per_image(tmp_path: Path) -> None:
    from superlab.config.vision import VisionConfig
    from superlab.model.counts import vision_flops_per_image, vision_params

    vision = VisionConfig(
        image_size=16, patch_size=4, d_model=32, n_layers=1, n_heads=2, ffn_hidden=64,
        projector_dim=32, image_token_id=3, image_start_id=2, image_end_id=4,
    )  # fmt: skip
    model = {"d_model": 64, "n_layers": 2, "n_heads": 4, "vision": vision.model_dump()}
    ctx = _ctx(tmp_path, model=model)
    run(ctx)
    reported = json.loads(ctx.run.plan.read_text())["inputs"]["vision"]
    assert reported["params"] == vision_params(vision, 64)
    assert reported["flops_per_image"] == vision_flops_per_image(vision, 64)
    assert reported["tokens_per_image"] == 4
    text_only = _ctx(tmp_path / "text")
    run(text_only)
    assert json.loads(text_only.run.plan.read_text())["inputs"]["vision"] is None
