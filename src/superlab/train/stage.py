"""The ``train`` stage: train the recipe's model on the run's shards, resuming if it can."""

from __future__ import annotations

import os
from typing import Any

import torch

from superlab.common import StageContext
from superlab.train.trainer import Trainer


def run(ctx: StageContext) -> dict[str, Any]:
    """Train to ``train.steps`` (resuming from the newest checkpoint); return the summary."""
    torch.set_num_threads(ctx.recipe.train.threads or os.cpu_count() or 1)
    trainer = Trainer(ctx.recipe, ctx.run, ctx)
    ctx.log.info(
        "train: %s on %s, %d parameters",
        ctx.recipe.name,
        trainer.device,
        trainer.model.num_params(),
    )
    return trainer.train()
