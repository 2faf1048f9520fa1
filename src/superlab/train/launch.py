"""``superlab train``'s policy, without torch: resume or refuse, and the ranks under torchrun.

Without ``--resume`` a run whose train stage left checkpoints (and is not complete) is
refused with the way out in the message, rather than continued or overwritten: the
user says which. ``superlab run`` always resumes (a pipeline is restartable by
construction). Under ``torchrun`` rank 0 runs the stage through the runner (lock,
``run.log``, completion marker, progress bars); every other rank calls ``train_worker``,
which trains alongside it and writes nothing.
"""

from __future__ import annotations

import logging
import os

from superlab.common import RunDir, StageContext
from superlab.common.ckpt import list_checkpoints
from superlab.config.recipe import Recipe


class ResumeRefused(RuntimeError):
    """The train stage would start over a run that has checkpoints, or cannot start."""


def rank() -> int:
    """This process's rank under torchrun (``RANK``), 0 when launched alone."""
    return int(os.environ.get("RANK", "0"))


def check_resume(run: RunDir, resume: bool) -> None:
    """Raise ``ResumeRefused`` when checkpoints exist, training is unfinished and not ``resume``."""
    if resume or run.marker("train").exists():
        return
    found = list_checkpoints(run.ckpt)
    if found:
        step = found[-1][0]
        raise ResumeRefused(
            f"{run.ckpt} holds checkpoints up to step-{step}: pass --resume to continue from "
            f"step {step}, or remove {run.ckpt} and {run.metrics} to train from scratch"
        )


def train_worker(recipe: Recipe, run: RunDir) -> None:
    """A rank other than 0 under torchrun: train in step with rank 0, writing nothing."""
    if run.marker("train").exists():
        return  # rank 0 finds the stage complete and trains nothing
    if not run.marker("data").exists():
        raise ResumeRefused(f"stage train needs data, which is not complete in {run.root}")
    from superlab.train.stage import run as train_stage

    train_stage(StageContext(recipe=recipe, run=run, log=logging.getLogger("superlab.rank")))
