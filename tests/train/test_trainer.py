import json
import os
import signal

import pytest
import torch

from superlab.common import RunDir, StageError
from superlab.common.ckpt import list_checkpoints
from superlab.train.metrics import read_rows
from superlab.train.trainer import NonFiniteLossError, Trainer, TrainingInterrupted

from .conftest import tiny_recipe, write_shards


def _losses(run_dir):
    return {r["step"]: r["loss"] for r in read_rows(run_dir.metrics) if "loss" in r}


def test_trains_logs_and_checkpoints(run_dir):
    summary = Trainer(tiny_recipe(), run_dir).train()
    assert summary["steps"] == 12 and summary["tokens"] == 12 * 4 * 32
    assert summary["params_total"] > summary["params_active"]
    rows = read_rows(run_dir.metrics)
    train_rows = [r for r in rows if "loss" in r]
    assert [r["step"] for r in train_rows] == list(range(1, 13))
    assert train_rows[-1]["loss"] < train_rows[0]["loss"]
    assert {"lr", "grad_norm", "tokens_per_s", "elapsed"} <= set(train_rows[0])
    moe = train_rows[0]["moe"]
    assert [m["layer"] for m in moe] == [1] and sum(moe[0]["tokens_per_expert"]) == 4 * 32 * 2
    assert [r["step"] for r in rows if "heldout_loss" in r] == [5, 10, 12]
    assert summary["heldout_loss"] == rows[-1]["heldout_loss"]
    # Checkpoints at 4, 8, 12; keep_last = 2.
    assert [s for s, _ in list_checkpoints(run_dir.ckpt)] == [8, 12]
    state = json.loads((run_dir.ckpt / "step-12" / "state.json").read_text())
    assert state["step"] == 12 and state["loader"] == {"epoch": 0, "index": 48}


class Crash(Exception):
    pass


def test_resume_is_bitwise_identical(run_dir, tmp_path_factory):
    straight = RunDir(tmp_path_factory.mktemp("uninterrupted"))
    write_shards(straight.root, {"train": [3000, 2000], "heldout": [700]})
    Trainer(tiny_recipe(), straight).train()

    # Crash after step 6: the newest checkpoint is step 4, metrics run to step 6.
    first = Trainer(tiny_recipe(), run_dir)
    step = first._train_step

    def step_then_crash():
        step()
        if first.step == 6:
            raise Crash

    first._train_step = step_then_crash
    with pytest.raises(Crash):
        first.train()
    assert max(_losses(run_dir)) == 6
    (run_dir.ckpt / ".step-8.abc.tmp").mkdir()  # a checkpoint half-written at the crash

    resumed = Trainer(tiny_recipe(), run_dir)
    assert resumed.step == 4 and max(r["step"] for r in read_rows(run_dir.metrics)) == 4
    assert not (run_dir.ckpt / ".step-8.abc.tmp").exists()
    resumed.train()

    keys = ("step", "loss", "aux_loss", "lr", "grad_norm", "heldout_loss", "moe")
    rows = [{k: r.get(k) for k in keys} for r in read_rows(run_dir.metrics)]
    assert rows == [{k: r.get(k) for k in keys} for r in read_rows(straight.metrics)]
    assert len(_losses(run_dir)) == 12  # float equality above: bitwise
    a = torch.load(run_dir.ckpt / "step-12" / "optim.pt")
    b = torch.load(straight.ckpt / "step-12" / "optim.pt")
    assert all(torch.equal(a["state"][0][k], b["state"][0][k]) for k in ("exp_avg", "exp_avg_sq"))


def test_resume_without_a_checkpoint_drops_all_rows(run_dir):
    first = Trainer(tiny_recipe(), run_dir)
    first._train_step()
    first._train_step()
    assert len(_losses(run_dir)) == 2
    assert Trainer(tiny_recipe(), run_dir).step == 0
    assert read_rows(run_dir.metrics) == []


def test_nonfinite_steps_are_skipped_then_raise(run_dir):
    trainer = Trainer(tiny_recipe(), run_dir)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    with torch.no_grad():
        trainer.model.norm.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="5 steps in a row"):
        trainer.train()
    rows = read_rows(run_dir.metrics)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5] and all(r["skipped"] for r in rows)
    for p, q in zip(trainer.model.parameters(), before, strict=True):
        if p is not trainer.model.norm.weight:
            assert torch.equal(p, q)  # no update was applied


def test_sigterm_saves_a_checkpoint_then_raises(run_dir):
    trainer = Trainer(tiny_recipe(ckpt_every=100), run_dir)
    step = trainer._train_step

    def step_then_signal():
        step()
        if trainer.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    trainer._train_step = step_then_signal
    before = signal.getsignal(signal.SIGTERM)  # not always SIG_DFL: ray.init installs one
    with pytest.raises(TrainingInterrupted, match="SIGTERM at step 3"):
        trainer.train()
    assert [s for s, _ in list_checkpoints(run_dir.ckpt)] == [3]
    assert signal.getsignal(signal.SIGTERM) is before  # the trainer put the old handler back
    assert Trainer(tiny_recipe(), run_dir).step == 3


def test_resume_refuses_a_different_model(run_dir):
    Trainer(tiny_recipe(steps=4), run_dir).train()
    recipe = tiny_recipe()
    recipe.model.d_model = 64
    with pytest.raises(StageError, match="different model config"):
        Trainer(recipe, run_dir)
