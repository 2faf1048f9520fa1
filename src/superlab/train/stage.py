"""The ``train`` stage: train the recipe's model on the run's shards, resuming if it can.

With ``data.images`` the run's data is the image task instead (``superlab.train.vision``).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from superlab.common import StageContext
from superlab.train.trainer import Trainer


def cpu_threads(configured: int) -> int:
    """``train.threads``, or the cores shared out among this machine's ranks (torchrun)."""
    if configured:
        return configured
    ranks_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, (os.cpu_count() or 1) // ranks_here)


def run(ctx: StageContext) -> dict[str, Any]:
    """Train to ``train.steps`` (resuming from the newest checkpoint); return the summary."""
    torch.set_num_threads(cpu_threads(ctx.recipe.train.threads))
    if ctx.recipe.data.images is not None:  # the image task (and its text-only control)
        from superlab.train.vision import run as run_image_task

        return run_image_task(ctx)
    trainer = Trainer(ctx.recipe, ctx.run, ctx)
    ctx.log.info(
        "train: %s on %s x %d (%s, %s), %d parameters",
        ctx.recipe.name,
        trainer.device,
        trainer.world.size,
        "bf16 autocast" if trainer.bf16 else "fp32",
        ctx.recipe.train.distributed if trainer.world.size > 1 else "one process",
        trainer.model.num_params(),
    )
    return trainer.train()
