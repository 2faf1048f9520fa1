"""``plan train`` counts attention FLOPs from ``--layers``/``--d-model``/``--seq-len`` (item 4).

Before, without a recipe it counted 0 attention FLOPs though its help said ``--seq-len``
is for attention. The count is ``superlab.model.counts``' formula, not a second copy.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from superlab.cli_plan import plan_app
from superlab.plan import commands
from superlab.plan.estimate import attention_flops_per_token
from superlab.plan.published_runs import causal_attn_flops

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def attn_of(args: list[str]) -> float:
    res = runner.invoke(plan_app, ["train", *args, "--draws", "100", "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)["inputs"]["attn_flops_per_token"]


def test_shape_without_recipe_counts_attention() -> None:
    shape = ["--layers", "32", "--d-model", "4096", "--seq-len", "4096"]
    got = attn_of(["--params", "7e9", "--tokens", "1e12", *shape])
    # 12 x L x d x (T + 1) / 2, causal full attention (Kaplan et al. 2020, x 3 for training)
    assert got == pytest.approx(12 * 32 * 4096 * 4097 / 2)
    assert got == attention_flops_per_token(32, 4096, 4096) == causal_attn_flops(32, 4096, 4096)
    # it moves GPU-hours: 6N + attention
    res = runner.invoke(
        plan_app, ["train", "--params", "7e9", "--tokens", "1e12", *shape, "--json"]
    )
    flops = json.loads(res.stdout)["outputs"]["flops_per_token"]["p50"]
    assert flops == pytest.approx(6 * 7e9 + got)


def test_default_seq_len_and_explicit_override() -> None:
    base = ["--params", "7e9", "--tokens", "1e12", "--layers", "32", "--d-model", "4096"]
    assert attn_of(base) == pytest.approx(12 * 32 * 4096 * 8193 / 2)  # the 8,192 default
    assert attn_of([*base, "--attn-flops", "0"]) == 0.0  # an explicit value wins


def test_same_count_as_a_recipe_of_that_shape() -> None:
    """The tiny recipe (full attention, 4 layers, d 128, 4 heads) through both paths."""
    recipe = ROOT / "recipes" / "tiny.yaml"
    shape = commands.recipe_shape(recipe, 256)
    args = ["--params", "1e6", "--tokens", "1e9", "--layers", "4", "--d-model", "128"]
    assert attn_of([*args, "--heads", "4", "--seq-len", "256"]) == pytest.approx(
        shape["attn_flops_per_token"]
    )
