"""Expert parallelism under torchrun with gloo on CPU, against one process on the same batch.

One torchrun launch per world size checks several things: for each router (token choice
with capacity, aux-free with its sequence-wise loss, expert choice over the batch) EP
training matches one process on the same global batch within 1e-5 in loss, grad norm
and final weights, with the same MoE statistics; world 2 (EP 2) also loads a
one-process checkpoint and resumes, runs a layer with every token on one expert (so the
other rank's experts are empty), and checks that a dead peer gives an error naming the
rank. A separate test kills an EP 2 ``superlab train`` with SIGKILL and resumes it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from superlab.common import RunDir, StageError, atomic_write_json
from superlab.config.recipe import Recipe
from superlab.model.hf import export_hf, import_hf
from superlab.model.io import WEIGHTS, load_model
from superlab.train.expert_parallel import Layout, check_layout
from superlab.train.metrics import read_rows
from superlab.train.trainer import Trainer

from .conftest import tiny_recipe, write_shards

TOL = 1e-5
STEPS = 10
SPLITS = {"train": [3000, 2000], "heldout": [700]}
ROUTERS = {
    "token_choice": {"capacity_factor": 1.0},
    "aux_free": {"router": "aux_free", "seq_aux_loss_coef": 0.01, "bias_update_rate": 0.01},
    "expert_choice": {"router": "expert_choice", "expert_choice_mode": "batch"},
    # Two MoE layers, no capacity: a Mixtral, so its EP checkpoint goes through the HF export.
    "mixtral": {"every": 1},
}
# Two micro-batches a step: gradients and aux-free loads accumulate before the sync.
ROUTER_TRAIN = {"aux_free": {"grad_accum": 2}}

SCRIPT = """
import os, shutil, sys
from pathlib import Path

import torch
import torch.distributed as dist

from superlab.common import RunDir
from superlab.config.recipe import Recipe
from superlab.train.trainer import Trainer

torch.set_num_threads(1)
root = Path(sys.argv[1])
names = sys.argv[2].split(",")
from superlab.train import expert_parallel as ep_mod

for name in names:
    trainer = Trainer(Recipe.load(root / f"{name}.yaml"), RunDir(root / name))
    trainer.train()
    if name == "fsdp":  # resume from step 5: the sharded load of a consolidated checkpoint
        dist.barrier()
        if dist.get_rank() == 0:
            shutil.rmtree(root / name / "ckpt" / "step-10")
        dist.barrier()
        resumed = Trainer(Recipe.load(root / f"{name}.yaml"), RunDir(root / name))
        assert resumed.step == 5, resumed.step
        resumed.train()
        continue
    # Per-rank parameter and AdamW bytes (DDP): the planner's formula within 10%.
    plan = ep_mod.planned_bytes(trainer.model_cfg, 2, dist.get_world_size())
    got = ep_mod.param_bytes(trainer.model), ep_mod.optimizer_bytes(trainer.optimizer)
    assert abs(got[0] / plan["param_bytes"] - 1) < 0.1, (got, plan)
    assert abs(got[1] / plan["optimizer_bytes"] - 1) < 0.1, (got, plan)
    experts = sum(p.numel() for p in trainer.experts.expert_params())
    assert experts * 2 == ep_mod.routed_expert_params(trainer.model_cfg)  # half each
dist.barrier()
if (root / "killed.yaml").exists():  # the run the test killed with SIGKILL, resumed
    from superlab.cli import app

    cmd = ["train", str(root / "killed.yaml"), "--runs-dir", str(root / "runs"), "-q"]
    app([*cmd, "--resume"], standalone_mode=False)
if dist.get_world_size() == 4:
    dist.destroy_process_group()
    sys.exit(0)

# A one-process checkpoint (copied to from-one/ by the test) resumes under EP 2.
resumed = Trainer(Recipe.load(root / "from-one.yaml"), RunDir(root / "from-one"))
assert resumed.step == 5, resumed.step
resumed.train()

# Every token on two experts held by one rank (equal logits: top-2 breaks the tie), so
# the other rank's experts get nothing and it sends all its slots away.
from superlab.model.moe import MoE
from superlab.train.expert_parallel import ExpertParallel, ExpertParallelError, Layout
from superlab.train.parallel import World

base = Recipe.load(root / "token_choice.yaml").model
world = World(dist.get_rank(), 2)
rows = slice(2 * world.rank, 2 * world.rank + 2)
variants = [{}, {"gate_on": "input", "num_shared_experts": 1, "score_func": "sigmoid"}]
for variant in variants:
    cfg = base.model_copy(update={"moe": base.moe.model_copy(update=variant)})
    torch.manual_seed(0)
    full = MoE(cfg)
    for w in (full.w1_EFD, full.w3_EFD, full.w2_EDF):
        torch.nn.init.normal_(w, std=0.1)
    torch.nn.init.zeros_(full.router.weight)
    x = torch.randn(4, 8, cfg.d_model, generator=torch.Generator().manual_seed(1))
    x_full = x.clone().requires_grad_(True)
    full(x_full).square().sum().backward()
    ep = ExpertParallel(Layout(2, 2, world.rank), cfg.moe.num_experts, timeout_s=60)
    part = MoE(cfg)
    part.load_state_dict(full.state_dict())
    ep.shard(part)
    x_part = x[rows].clone().requires_grad_(True)
    y = part(x_part)
    assert torch.allclose(y, full(x)[rows], atol=1e-5)
    counts = part.stats["tokens_per_expert"]
    assert counts in ([32, 32, 0, 0], [0, 0, 32, 32]), counts
    idle = 1 if counts[0] else 0  # the rank whose experts got no token
    y.square().sum().backward()
    ep.sync_grads()  # sums over the (single-rank) replica group, / world
    assert torch.allclose(x_part.grad, x_full.grad[rows], atol=1e-5)
    w_grad = full.w1_EFD.grad[2 * world.rank : 2 * world.rank + 2] / 2
    assert torch.allclose(part.w1_EFD.grad, w_grad, atol=1e-5)
    if world.rank == idle:
        assert part.w1_EFD.grad.abs().sum() == 0  # empty experts: zeros, not None
    router_grad = part.router.weight.grad.clone()
    dist.all_reduce(router_grad)  # each rank's share of the router gradient
    assert torch.allclose(router_grad, full.router.weight.grad, atol=1e-5)

# A peer that dies: the survivor's next collective fails with an error naming its rank.
dist.barrier()
if world.rank == 1:
    os._exit(0)
try:
    part(x_part)
except ExpertParallelError as e:
    (root / "peer-error.txt").write_text(str(e))
os._exit(0)
"""


def _recipe(router: str, **train: object) -> Recipe:
    defaults = {"steps": STEPS, "ckpt_every": 5, "eval_every": 5, "threads": 1}
    recipe = tiny_recipe(**{**defaults, **ROUTER_TRAIN.get(router, {}), **train})
    assert recipe.model.moe is not None
    for key, value in ROUTERS[router].items():
        setattr(recipe.model.moe, key, value)
    recipe.name = router
    return Recipe.model_validate(recipe.resolved())  # validated again with the changes


def _rows(run: RunDir) -> dict[int, dict]:
    return {r["step"]: r for r in read_rows(run.metrics) if "loss" in r}


def _assert_close(got: RunDir, want: RunDir, steps: range = range(1, STEPS + 1)) -> None:
    a, b = _rows(got), _rows(want)
    assert sorted(a) == sorted(b) == list(steps)
    for step in steps:
        assert abs(a[step]["loss"] - b[step]["loss"]) < TOL, (step, a[step], b[step])
        assert abs(a[step]["aux_loss"] - b[step]["aux_loss"]) < TOL, step
        assert abs(a[step]["grad_norm"] - b[step]["grad_norm"]) < 10 * TOL, step
        for la, lb in zip(a[step]["moe"], b[step]["moe"], strict=True):
            assert la["tokens_per_expert"] == lb["tokens_per_expert"], step
            assert abs(la["balance_loss"] - lb["balance_loss"]) < TOL, step
    final_a = load_file(str(got.ckpt / f"step-{STEPS}" / WEIGHTS))
    final_b = load_file(str(want.ckpt / f"step-{STEPS}" / WEIGHTS))
    assert final_a.keys() == final_b.keys()
    for key in final_b:  # consolidated: full expert tensors, as one process writes them
        assert final_a[key].shape == final_b[key].shape, key
        assert torch.allclose(final_a[key], final_b[key], atol=TOL), key


def _one_process(root: Path, recipe: Recipe) -> RunDir:
    run = RunDir(root)
    write_shards(root, SPLITS)
    Trainer(recipe, run).train()
    return run


def _torchrun(world: int, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    return subprocess.run(
        [*launch, "--nproc-per-node", str(world), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _launch(
    tmp_path: Path, world: int, ep: int, routers: list[str], fsdp: bool = False
) -> dict[str, RunDir]:
    """One-process runs of ``routers``, then the same recipes under torchrun, compared
    (with ``fsdp`` also token choice with FSDP2 for the replicated parameters)."""
    singles = {r: _one_process(tmp_path / "one" / r, _recipe(r)) for r in routers}
    runs = {r: _recipe(r, expert_parallel=ep) for r in routers}
    if fsdp:
        runs["fsdp"] = _recipe("token_choice", expert_parallel=ep, distributed="fsdp")
        runs["fsdp"].name = "fsdp"
    for name, recipe in runs.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(recipe.resolved()))
        write_shards(tmp_path / name, SPLITS)
    if world == 2:  # the one-process token-choice run, cut back to step 5, resumes under EP
        recipe = _recipe("token_choice", expert_parallel=ep)
        recipe.name = "from-one"
        (tmp_path / "from-one.yaml").write_text(yaml.safe_dump(recipe.resolved()))
        shutil.copytree(singles["token_choice"].root, tmp_path / "from-one")
        shutil.rmtree(tmp_path / "from-one" / "ckpt" / f"step-{STEPS}")
    script = tmp_path / "ranks.py"
    script.write_text(textwrap.dedent(SCRIPT))
    proc = _torchrun(world, str(script), str(tmp_path), ",".join(runs))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for router, single in singles.items():
        _assert_close(RunDir(tmp_path / router), single)
    if fsdp:
        _assert_close(RunDir(tmp_path / "fsdp"), singles["token_choice"])
    return singles


def _steps(run: RunDir) -> int:
    if not run.metrics.is_file():
        return 0
    return sum('"loss"' in line for line in run.metrics.read_text().splitlines())


def _kill_mid_run(tmp_path: Path) -> RunDir:
    """``superlab train`` under torchrun with EP 2, every process SIGKILLed mid-run."""
    recipe = _recipe("token_choice", expert_parallel=2, ckpt_every=2, tensorboard=False)
    recipe.name = "killed"
    (tmp_path / "killed.yaml").write_text(yaml.safe_dump(recipe.resolved()))
    run = RunDir(tmp_path / "runs" / "killed")
    write_shards(run.root, SPLITS)
    atomic_write_json(run.marker("data"), {"stage": "data", "summary": {}})
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd = ["--nproc-per-node", "2", "-m", "superlab", "train", str(tmp_path / "killed.yaml")]
    proc = subprocess.Popen(
        [*launch, *cmd, "--runs-dir", str(tmp_path / "runs"), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while _steps(run) < 3:
        assert proc.poll() is None and time.time() < deadline, "no progress"
        time.sleep(0.002)
    # The agent and its two workers (each in its own session): all of them, as a crash would.
    workers = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    for pid in [proc.pid, *map(int, workers)]:
        os.kill(pid, signal.SIGKILL)
    proc.wait()
    killed_at = _steps(run)
    saved = sorted(int(p.name.split("-")[1]) for p in run.ckpt.glob("step-*"))
    assert saved and max(saved) <= killed_at < STEPS, (saved, killed_at)
    return run


def test_ep2_matches_one_process_loads_its_checkpoints_and_survives_uneven_routing(tmp_path):
    killed = _kill_mid_run(tmp_path)
    singles = _launch(tmp_path, world=2, ep=2, routers=list(ROUTERS))
    # The HF export reads an EP checkpoint (consolidated: the one-process layout).
    ep_model = load_model(tmp_path / "mixtral" / "ckpt" / f"step-{STEPS}")
    export_hf(ep_model, tmp_path / "hf", "mixtral")
    exported = import_hf(tmp_path / "hf").state_dict()
    single = load_model(singles["mixtral"].ckpt / f"step-{STEPS}").state_dict()
    assert exported.keys() == single.keys()
    assert all(torch.allclose(exported[k], single[k], atol=TOL) for k in single)
    # Killed with SIGKILL and resumed under EP 2: the uninterrupted EP 2 run, bit for bit.
    keys = ("loss", "aux_loss", "grad_norm", "lr", "moe")
    got, want = _rows(killed), _rows(RunDir(tmp_path / "token_choice"))
    assert sorted(got) == sorted(want) == list(range(1, STEPS + 1))
    assert all({k: got[s][k] for k in keys} == {k: want[s][k] for k in keys} for s in want)
    # Steps 6..10 resumed under EP 2 from a one-process checkpoint equal the one-process run.
    _assert_close(RunDir(tmp_path / "from-one"), singles["token_choice"])
    # ... and an EP 2 checkpoint resumes in one process (the reverse direction).
    run = RunDir(tmp_path / "to-one")
    shutil.copytree(tmp_path / "token_choice", run.root)
    shutil.rmtree(run.ckpt / f"step-{STEPS}")
    resumed = Trainer(_recipe("token_choice"), run)
    assert resumed.step == 5
    resumed.train()
    _assert_close(run, singles["token_choice"])
    error = (tmp_path / "peer-error.txt").read_text()
    assert error.startswith("rank 0: expert-parallel") and "a peer died" in error, error


def test_ep2_dp2_matches_one_process(tmp_path):
    routers = ["token_choice", "aux_free", "expert_choice"]
    _launch(tmp_path, world=4, ep=2, routers=routers, fsdp=True)


def test_sizes_that_do_not_divide_are_refused():
    with pytest.raises(StageError, match=r"expert_parallel \(3\) must divide the world size \(4\)"):
        check_layout(3, 4, 6)
    with pytest.raises(StageError, match=r"must divide model.moe.num_experts \(6\)"):
        check_layout(4, 4, 6)
    with pytest.raises(StageError, match="needs a MoE model"):
        check_layout(2, 2, None)
    lay = Layout(ep=2, world=4, rank=3)
    assert (lay.dp, lay.ep_rank, lay.ep_ranks, lay.replica_ranks) == (2, 1, [2, 3], [1, 3])


def test_one_process_refuses_an_ep_recipe(run_dir):
    with pytest.raises(StageError, match=r"expert_parallel \(2\) must divide the world size \(1\)"):
        Trainer(tiny_recipe(expert_parallel=2), run_dir)
