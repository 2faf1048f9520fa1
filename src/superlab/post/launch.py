"""``superlab sft|pref``'s policy, without torch: resume or refuse, and the other ranks."""

from __future__ import annotations

import logging

from superlab.common import RunDir, StageContext
from superlab.common.ckpt import list_checkpoints
from superlab.config.recipe import Recipe


class PostResumeRefused(RuntimeError):
    """The stage would start over checkpoints it left, without ``--resume``."""


def check_resume(run: RunDir, stage: str, resume: bool) -> None:
    """Raise ``PostResumeRefused`` when ``ckpt/<stage>/`` has checkpoints, the stage is not
    complete and ``resume`` is off (as ``superlab train``)."""
    if resume or run.marker(stage).exists():
        return
    found = list_checkpoints(run.ckpt / stage)
    if found:
        step = found[-1][0]
        raise PostResumeRefused(
            f"{run.ckpt / stage} holds checkpoints up to step-{step}: pass --resume to continue "
            f"from step {step}, or remove {run.ckpt / stage} to start {stage} over"
        )


def worker(recipe: Recipe, run: RunDir, stage: str) -> None:
    """A rank other than 0 under torchrun: train in step with rank 0, writing nothing."""
    if run.marker(stage).exists():
        return
    ctx = StageContext(recipe=recipe, run=run, log=logging.getLogger("superlab.rank"))
    if stage == "sft":
        from superlab.post.sft import run as run_stage
    elif stage == "rl":
        from superlab.post.rl import run as run_stage
    else:
        from superlab.post.pref import run as run_stage
    run_stage(ctx)
