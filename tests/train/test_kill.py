"""Acceptance: real processes killed with SIGKILL resume to exactly the uninterrupted run.

``superlab train`` runs in a subprocess on a tiny run directory (shards written in the
data contract's format, the data stage marked complete), is killed with SIGKILL at a
random step, refused without ``--resume``, then resumed with it; every metrics row
(loss, grad norm, lr, MoE statistics, held-out loss) must equal an uninterrupted run's
bit for bit. A second process is killed in the middle of writing a checkpoint.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from superlab.cli import app
from superlab.common import RunDir, atomic_write_json
from superlab.common.ckpt import list_checkpoints
from superlab.train.metrics import read_rows
from superlab.train.trainer import Trainer

from .conftest import tiny_recipe, write_shards

SPLITS = {"train": [3000, 2000], "heldout": [700]}
KEYS = ("step", "loss", "aux_loss", "lr", "grad_norm", "tokens", "heldout_loss", "moe")


def _recipe():
    # ckpt_every 4 with kills between checkpoints: the resumed run redoes some steps.
    return tiny_recipe(steps=40, ckpt_every=4, eval_every=10, threads=1, tensorboard=False)


def _rows(run: RunDir) -> list[dict]:
    return [{k: r.get(k) for k in KEYS} for r in read_rows(run.metrics)]


def _uninterrupted(root: Path) -> RunDir:
    run = RunDir(root)
    write_shards(root, SPLITS)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # as the subprocess (train.threads = 1): same kernels
        Trainer(_recipe(), run).train()
    finally:
        torch.set_num_threads(threads)
    return run


def _superlab(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "superlab", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def _last_step(run: RunDir) -> int:
    if not run.metrics.is_file():
        return 0
    lines = run.metrics.read_text().splitlines()
    return len([line for line in lines if '"loss"' in line])


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    return _uninterrupted(tmp_path_factory.mktemp("uninterrupted"))


def test_sigkill_at_a_random_step_then_resume_is_exact(tmp_path, reference):
    recipe_file = tmp_path / "tiny.yaml"
    recipe_file.write_text(yaml.safe_dump(_recipe().resolved()))
    run = RunDir(tmp_path / "runs" / "tiny")
    write_shards(run.root, SPLITS)
    atomic_write_json(run.marker("data"), {"stage": "data", "summary": {}})
    cmd = ("train", str(recipe_file), "--runs-dir", str(tmp_path / "runs"), "-q")

    kill_at = random.randint(5, 30)  # after the first checkpoint (step 4) is surely written
    first = _superlab(*cmd)
    deadline = time.time() + 120
    while _last_step(run) < kill_at:
        assert first.poll() is None, f"ended before step {kill_at}:\n{first.stdout.read()}"
        assert time.time() < deadline, "no progress within 120 s"
        time.sleep(0.002)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = _last_step(run)
    where = f"killed at step {killed_at} (aimed at {kill_at})"
    assert first.returncode == -signal.SIGKILL and killed_at < 40, where
    saved = [s for s, _ in list_checkpoints(run.ckpt)]
    assert saved and max(saved) <= killed_at, where

    refused = CliRunner().invoke(app, list(cmd))  # in-process: a fresh interpreter adds nothing
    assert refused.exit_code == 2 and "pass --resume" in refused.output, refused.output
    assert _last_step(run) == killed_at  # refused before touching anything

    resumed = _superlab(*cmd, "--resume")
    out, _ = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, out
    assert f"resumed from {run.ckpt / f'step-{max(saved)}'}" in run.log.read_text(), where
    assert _rows(run) == _rows(reference), where  # floats compared exactly


KILL_MID_WRITE = """
import os, signal, sys
from pathlib import Path

import torch

import superlab.train.checkpoint as checkpoint
from superlab.common import RunDir
from superlab.config.recipe import Recipe
from superlab.train.trainer import Trainer

torch.set_num_threads(1)
real_save = torch.save

def save_then_die(obj, path, *a, **kw):
    real_save(obj, path, *a, **kw)
    if Path(path).parent.name.startswith(".step-12."):  # weights and optimizer written,
        os.kill(os.getpid(), signal.SIGKILL)             # state.json not, not renamed

checkpoint.torch.save = save_then_die
Trainer(Recipe.load(sys.argv[1]), RunDir(Path(sys.argv[2]))).train()
"""


def test_a_checkpoint_cut_off_mid_write_is_never_loaded(tmp_path, reference):
    run = RunDir(tmp_path / "run")
    write_shards(run.root, SPLITS)
    recipe_file = tmp_path / "tiny.yaml"
    recipe_file.write_text(yaml.safe_dump(_recipe().resolved()))
    script = tmp_path / "die.py"
    script.write_text(textwrap.dedent(KILL_MID_WRITE))
    proc = subprocess.run(
        [sys.executable, str(script), str(recipe_file), str(run.root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    (partial,) = run.ckpt.glob(".step-12.*.tmp")
    assert {p.name for p in partial.iterdir()} == {
        "model.safetensors",
        "model_config.json",
        "optim.pt",
    }
    # A step-N directory cut off by a copy: the name, truncated weights, no state.json.
    cut = run.ckpt / "step-16"
    cut.mkdir()
    weights = (partial / "model.safetensors").read_bytes()
    (cut / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    assert [s for s, _ in list_checkpoints(run.ckpt)] == [4, 8]  # keep_last 2

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        resumed = Trainer(_recipe(), run)
        assert resumed.step == 8 and not partial.exists()
        resumed.train()
    finally:
        torch.set_num_threads(threads)
    assert _rows(run) == _rows(reference)
    assert [s for s, _ in list_checkpoints(run.ckpt)] == [36, 40]
