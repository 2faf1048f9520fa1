"""SIGKILL a ``superlab sft|pref`` process at a random step, resume it, compare every row."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from typer.testing import CliRunner

from superlab.cli import app
from superlab.common import RunDir
from superlab.common.ckpt import list_checkpoints
from superlab.config.recipe import Recipe
from superlab.train.metrics import read_rows

KEYS = ("stage", "step", "loss", "aux_loss", "lr", "grad_norm", "tokens", "heldout_loss")


def rows(run: RunDir, extra: tuple[str, ...] = ()) -> list[dict]:
    return [{k: r.get(k) for k in KEYS + extra} for r in read_rows(run.metrics)]


def _logged_steps(run: RunDir) -> int:
    if not run.metrics.is_file():
        return 0
    return len([line for line in run.metrics.read_text().splitlines() if '"loss"' in line])


def kill_then_resume(tmp_path: Path, recipe: Recipe, stage: str, run: RunDir, steps: int) -> str:
    """Kill ``superlab <stage>`` at a random step after its first checkpoint and at least 2
    before the end, check the refusal without --resume, resume; return where it was killed
    (for assertion messages)."""
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump(recipe.resolved()))
    runs = run.root.parent
    cmd = (stage, str(recipe_file), "--runs-dir", str(runs), "-q")
    env = {**os.environ, "COLUMNS": "200"}
    first_ckpt = getattr(recipe, stage).train.ckpt_every
    assert first_ckpt + 1 <= steps - 2, "too few steps to kill between checkpoints"
    kill_at = random.randint(first_ckpt + 1, steps - 2)
    first = subprocess.Popen(
        [sys.executable, "-m", "superlab", *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    deadline = time.time() + 180
    while _logged_steps(run) < kill_at:
        assert first.poll() is None, f"ended before step {kill_at}:\n{first.stdout.read()}"
        assert time.time() < deadline, "no progress within 180 s"
        time.sleep(0.002)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed = _logged_steps(run)
    where = f"killed at step {killed} (aimed at {kill_at})"
    assert first.returncode == -signal.SIGKILL and killed < steps, where
    saved = [s for s, _ in list_checkpoints(run.ckpt / stage)]
    assert saved and max(saved) <= killed, where

    refused = CliRunner().invoke(app, list(cmd))
    assert refused.exit_code == 2 and "pass --resume" in refused.output, refused.output

    resumed = subprocess.run(
        [sys.executable, "-m", "superlab", *cmd, "--resume"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resumed from {run.ckpt / stage / f'step-{max(saved)}'}" in run.log.read_text(), where
    return where
