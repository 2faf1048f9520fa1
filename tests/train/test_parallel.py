"""Two gloo ranks under torchrun (DDP through the CLI, FSDP2 with a resume) against one process.

A rank's share of a micro-batch is what one micro-batch is on one process: the MoE
balance loss is computed over the tokens a forward sees (Switch's f_e, per rank as per
micro-batch, as Megatron-Core does by default). So two ranks with a global micro-batch
of 2 rows and 2 accumulation steps (one row per rank and forward, gradient sync skipped
on the first) equal one process with 1 row x 4 accumulation steps, balance loss
included; with the balance loss off, two ranks x 2 rows equal one process with all 4
rows in one forward.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from superlab.common import RunDir, atomic_write_json
from superlab.train.metrics import read_rows
from superlab.train.trainer import Trainer

from .conftest import tiny_recipe, write_shards

TOL = 1e-5
STEPS = 5
SPLITS = {"train": [3000, 2000], "heldout": [700]}

SCRIPT = """
import shutil, sys
from pathlib import Path

import torch
import torch.distributed as dist

from superlab.cli import app
from superlab.common import RunDir
from superlab.config.recipe import Recipe
from superlab.train.trainer import Trainer

torch.set_num_threads(1)
root = Path(sys.argv[1])
# DDP through the real command: rank 0 via the runner, rank 1 via train_worker.
app(["train", str(root / "ddp.yaml"), "--runs-dir", str(root / "runs"), "-q"],
    standalone_mode=False)
assert dist.is_initialized() and dist.get_world_size() == 2

def recipe(name):
    return Recipe.load(root / f"{name}.yaml")

# FSDP2: train to the end, drop the last checkpoint, resume from step 3 (sharded load).
fsdp = RunDir(root / "fsdp")
Trainer(recipe("fsdp"), fsdp).train()
dist.barrier()
if dist.get_rank() == 0:
    shutil.rmtree(fsdp.ckpt / "step-5")
dist.barrier()
resumed = Trainer(recipe("fsdp"), fsdp)
assert resumed.step == 3, resumed.step
resumed.train()
# DDP with the balance loss off: equal to one forward over the whole global batch.
Trainer(recipe("noaux"), RunDir(root / "noaux")).train()
dist.destroy_process_group()
"""


def _recipe(**train: object):
    return tiny_recipe(steps=STEPS, ckpt_every=3, threads=1, eval_every=STEPS, **train)


def _no_balance(recipe):
    assert recipe.model.moe is not None
    recipe.model.moe.aux_loss_coef = 0.0
    return recipe


def _rows(run: RunDir) -> dict[int, dict]:
    return {r["step"]: r for r in read_rows(run.metrics) if "loss" in r}


def _assert_close(got: RunDir, want: RunDir) -> None:
    a, b = _rows(got), _rows(want)
    assert sorted(a) == sorted(b) == list(range(1, STEPS + 1))
    for step in b:
        assert abs(a[step]["loss"] - b[step]["loss"]) < TOL, (step, a[step], b[step])
        assert abs(a[step]["grad_norm"] - b[step]["grad_norm"]) < 10 * TOL, step


def _one_process(root: Path, recipe) -> RunDir:
    run = RunDir(root)
    write_shards(root, SPLITS)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        Trainer(recipe, run).train()
    finally:
        torch.set_num_threads(threads)
    return run


def test_ddp_and_fsdp_match_one_process(tmp_path):
    recipes = {
        "ddp": _recipe(distributed="ddp", batch_size=2, grad_accum=2),
        "fsdp": _recipe(distributed="fsdp", batch_size=2, grad_accum=2),
        "noaux": _no_balance(_recipe(distributed="ddp")),
    }
    for name, recipe in recipes.items():
        recipe.name = name
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(recipe.resolved()))
    ddp = RunDir(tmp_path / "runs" / "ddp")
    write_shards(ddp.root, SPLITS)
    atomic_write_json(ddp.marker("data"), {"stage": "data", "summary": {}})
    for name in ("fsdp", "noaux"):
        write_shards(tmp_path / name, SPLITS)
    script = tmp_path / "ranks.py"
    script.write_text(textwrap.dedent(SCRIPT))
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    proc = subprocess.run(
        [*launch, "--nproc-per-node", "2", str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # One process, the same 4 rows per step as four micro-batches of one.
    micro = _one_process(tmp_path / "one", _recipe(batch_size=1, grad_accum=4))
    _assert_close(ddp, micro)
    _assert_close(RunDir(tmp_path / "fsdp"), micro)  # steps 4, 5 after the sharded resume
    assert json.loads((ddp.marker("train")).read_text())["summary"]["world_size"] == 2
    # MoE counts summed over ranks = summed over micro-batches.
    assert (
        _rows(ddp)[1]["moe"][0]["tokens_per_expert"]
        == _rows(micro)[1]["moe"][0]["tokens_per_expert"]
    )
    # Balance loss off: the same as one forward over all 4 rows.
    whole = _one_process(tmp_path / "whole", _no_balance(_recipe()))
    _assert_close(RunDir(tmp_path / "noaux"), whole)

    # A checkpoint written by two ranks resumes on one.
    single = RunDir(tmp_path / "from-ddp")
    shutil.copytree(ddp.root, single.root)
    shutil.rmtree(single.ckpt / "step-5")
    resumed = Trainer(_recipe(batch_size=1, grad_accum=4), single)
    assert resumed.step == 3
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        resumed.train()
    finally:
        torch.set_num_threads(threads)
    _assert_close(single, micro)


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_one_rank_ignores_the_strategy(run_dir, strategy):
    trainer = Trainer(tiny_recipe(distributed=strategy, steps=1), run_dir)
    assert trainer.world.size == 1 and trainer.train_model is trainer.model
