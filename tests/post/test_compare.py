"""`superlab compare RUN_DIR`: a run's base and SFT checkpoints on the same held-out items."""

from __future__ import annotations

import json
import math

import yaml
from typer.testing import CliRunner

from superlab.cli import app
from superlab.common import StageContext
from superlab.post.compare import compare_checkpoints
from superlab.post.sft import run

from .conftest import chat_rows, make_pretrained, sft_recipe, write_jsonl


def test_base_and_sft_are_scored_alike_and_match_the_stage_eval(tmp_path):
    run_dir = make_pretrained(tmp_path / "run")
    data = write_jsonl(tmp_path / "sft.jsonl", chat_rows())
    arithmetic = {"generate": "arithmetic", "generate_rows": 30}
    recipe = sft_recipe([str(data)], arithmetic, steps=4, ckpt_every=4, lr=1e-2)
    run(StageContext(recipe=recipe, run=run_dir))
    (run_dir.root / "recipe.yaml").write_text(yaml.safe_dump(recipe.resolved()))

    figures = compare_checkpoints(recipe, run_dir)
    assert list(figures) == ["base", "sft"]  # no pref checkpoint: left out
    assert figures["base"]["checkpoint"].endswith("ckpt/step-10")
    assert figures["sft"]["checkpoint"].endswith("ckpt/sft/step-4")
    # the same items, seed and sampling as the stage's own eval.json
    stage_eval = json.loads((run_dir.root / "sft" / "eval.json").read_text())
    assert figures["sft"]["arithmetic"] == stage_eval["arithmetic"]
    base, sft = figures["base"]["heldout_chat_loss"], figures["sft"]["heldout_chat_loss"]
    assert math.isfinite(base) and math.isfinite(sft)
    assert sft < base  # four steps at lr 1e-2 on the chat rows learn the format

    shown = CliRunner().invoke(app, ["compare", str(run_dir.root)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "held-out chat loss" in shown.output and "sums pass@4" in shown.output
    assert f"{base:.4f}" in shown.output and f"{sft:.4f}" in shown.output


def test_one_path_that_is_not_a_run_is_refused_in_one_line(tmp_path):
    shown = CliRunner().invoke(app, ["compare", str(tmp_path)])
    assert shown.exit_code == 2
    assert "not a run directory" in shown.output
