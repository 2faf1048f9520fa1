"""What a stage hands the training loop: its batches, its loss and where it checkpoints.

The loop (``superlab.train.trainer.Trainer``) owns everything a stage shares: AdamW and
its decay groups, the schedule, clipping, accumulation, bf16 autocast, DDP/FSDP2, the
NaN guard, checkpoints with exact resume and ``metrics.jsonl``. A stage supplies a
``Job``: a loader with a resumable position, an ``Objective`` that turns one batch into
a loss, the model's config and (for a fresh start) its initial weights. Pre-training is
the ``Job`` the trainer builds itself (``NextToken`` on the packed shards); ``post``'s
stages (sft, pref) build theirs from the recipe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from superlab.config.recipe import ModelConfig, TrainConfig
from superlab.model.transformer import Transformer


class Loader(Protocol):
    """Batches in a resumable order: ``state()`` saved in checkpoints, ``load_state`` restores."""

    def next_batch(self) -> Any: ...

    def state(self) -> dict[str, int]: ...

    def load_state(self, state: dict[str, int]) -> None: ...

    def reset(self) -> None: ...


@dataclass
class StepOut:
    """One micro-batch's result: the loss to minimise and what to log about it."""

    loss: torch.Tensor  # scalar, the objective
    aux_loss: torch.Tensor  # added to the loss for the backward (MoE balance); logged apart
    tokens: int  # tokens this rank processed (inputs), for tokens/s
    moe_stats: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)  # scalars, averaged


class Objective(Protocol):
    """The loss of one batch (already on the model's device, inside autocast)."""

    def loss(self, model: nn.Module, batch: Any) -> StepOut: ...


class NextToken:
    """Pre-training: mean next-token cross-entropy over every target of the window."""

    def loss(self, model: nn.Module, batch: Any) -> StepOut:
        x_BT, y_BT, doc_ids_BT = batch
        out = model(x_BT, y_BT, doc_ids_BT=doc_ids_BT)
        assert out.loss is not None
        return StepOut(out.loss, out.aux_loss, x_BT.numel(), out.moe_stats)


@dataclass
class Job:
    """A stage's side of the loop (see the module docstring)."""

    name: str  # progress bar; post-training rows in metrics.jsonl carry it as "stage"
    ckpt: Path  # this stage's step-N directories
    model_cfg: ModelConfig
    loader: Loader
    heldout: Loader | None
    objective: Objective
    # The model before step 0 when ``ckpt`` holds no checkpoint yet (None: random init).
    init: Callable[[], Transformer] | None = None


class PostStage(Protocol):
    """A stage that trains on the loop: its loop settings, and its ``Job`` for this rank."""

    name: str
    tc: TrainConfig

    def build(self, rank: int, world_size: int, device: torch.device) -> Job: ...
