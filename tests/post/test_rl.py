"""The rl stage: GRPO's metrics rows, the reference, a failing reward, SIGKILL resume."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from superlab.cli import app
from superlab.common import StageContext
from superlab.common.ckpt import list_checkpoints
from superlab.post.rl import run
from superlab.train.metrics import read_rows

from .conftest import make_pretrained
from .kill import kill_then_resume, rows
from .rl_helpers import reward_module, rl_recipe

RL_NAMES = (
    "reward",
    "reward_std",
    "frac_reward_zero_std",
    "rewards/rl_test_rewards:by_length/mean",
    "rewards/rl_test_rewards:by_length/std",
    "rewards/format/mean",
    "rewards/format/std",
    "completions/mean_length",
    "completions/max_length",
    "completions/clipped_ratio",
    "entropy",
    "clip_ratio/region_mean",
)


def test_grpo_rows_checkpoints_reference_and_eval(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(reward_module(tmp_path)))
    run_dir = make_pretrained(tmp_path / "run")
    recipe = rl_recipe({"num_iterations": 2, "beta": 0.1})
    summary = run(StageContext(recipe=recipe, run=run_dir))
    steps = [r for r in read_rows(run_dir.metrics) if r.get("stage") == "rl"]
    assert [r["step"] for r in steps] == list(range(1, 7))
    assert all(name in r for r in steps for name in (*RL_NAMES, "kl", "time/generation_s"))
    # a rollout serves two updates: generation only on odd steps, the same rewards after
    assert [r["time/generation_s"] > 0 for r in steps] == [True, False] * 3
    assert steps[0]["reward"] == steps[1]["reward"]
    assert steps[0]["kl"] == 0.0 and steps[0]["clip_ratio/region_mean"] == 0.0  # policy = ref
    assert steps[-1]["kl"] > 0
    assert [s for s, _ in list_checkpoints(run_dir.ckpt / "rl")] == [4, 6]
    assert sorted(p.name for p in (run_dir.root / "rl" / "rollouts").iterdir())[-1] == (
        "rollout-000002.rank-0.pt"
    )
    reference = json.loads((run_dir.root / "rl" / "reference.json").read_text())
    assert reference["source"] == str(run_dir.ckpt / "step-10") == summary["reference"]
    evaluated = json.loads((run_dir.root / "rl" / "eval.json").read_text())
    assert evaluated["items"] == 4 and {"pass@1", "pass@2"} <= set(evaluated["rl"])
    assert summary["task_items_dropped_as_heldout"] >= 0 and summary["prompts"] > 0


def test_beta_zero_holds_no_reference(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(reward_module(tmp_path)))
    run_dir = make_pretrained(tmp_path / "run")
    recipe = rl_recipe({"beta": 0.0, "eval_items": 0, "loss_type": "token_mean"}, steps=2)
    summary = run(StageContext(recipe=recipe, run=run_dir))
    assert summary["reference"] is None
    assert not (run_dir.root / "rl" / "reference.json").exists()
    steps = [r for r in read_rows(run_dir.metrics) if r.get("stage") == "rl"]
    assert len(steps) == 2 and not any("kl" in r for r in steps)


def test_a_raising_reward_stops_after_a_checkpoint_and_logs_the_prompt(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(reward_module(tmp_path)))
    run_dir = make_pretrained(tmp_path / "runs" / "tiny")
    recipe = rl_recipe({"rewards": [{"name": "rl_test_rewards:boom_third_call"}]}, ckpt_every=5)
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(json.dumps(recipe.resolved()))
    result = CliRunner().invoke(
        app, ["rl", str(recipe_file), "--runs-dir", str(run_dir.root.parent)]
    )
    assert result.exit_code == 1, result.output
    # the third group is the first prompt of step 2: step 1 was saved
    assert [s for s, _ in list_checkpoints(run_dir.ckpt / "rl")] == [1]
    log = run_dir.log.read_text()
    assert "reward 'rl_test_rewards:boom_third_call' raised on prompt 'sums-train-" in log
    assert "Traceback" in log and "ValueError: cannot score this sample" in log
    assert "checkpoint saved" in " ".join(result.output.split())


def test_sigkill_at_a_random_step_then_resume_is_exact(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(reward_module(tmp_path)))
    monkeypatch.syspath_prepend(str(tmp_path))
    # two updates per rollout and checkpoints every 3 steps: a resume lands inside a rollout
    recipe = rl_recipe(
        {"num_iterations": 2, "beta": 0.1, "eval_items": 0}, steps=8, ckpt_every=3, threads=1
    )
    reference = make_pretrained(tmp_path / "reference")
    run(StageContext(recipe=recipe, run=reference))

    run_dir = make_pretrained(tmp_path / "runs" / "tiny")
    where = kill_then_resume(tmp_path, recipe, "rl", run_dir, 8)
    names = (*RL_NAMES, "kl")
    assert rows(run_dir, names) == rows(reference, names), where


def test_grpo_raises_a_reward(tmp_path, monkeypatch):
    # the reward counts the letter "a": sampled text with more of it must become likelier
    monkeypatch.syspath_prepend(str(reward_module(tmp_path)))
    run_dir = make_pretrained(tmp_path / "run")
    rl = {
        "rewards": [{"name": "rl_test_rewards:a_count"}],
        "beta": 0.0,
        "eval_items": 0,
        "max_new_tokens": 12,
        "stop": [],
    }
    run(StageContext(recipe=rl_recipe(rl, steps=20, lr=1e-2, ckpt_every=100), run=run_dir))
    rewards = [r["reward"] for r in read_rows(run_dir.metrics) if r.get("stage") == "rl"]
    assert sum(rewards[-5:]) > 3 * sum(rewards[:5]) > 0, rewards
