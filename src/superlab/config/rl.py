"""The ``rl`` section: GRPO with verifiable rewards, on the pre-training loop.

One optimizer step is one update on one rollout: ``train.batch_size`` prompts, each with
``group_size`` completions sampled through the serve engine. A rollout is reused for
``num_iterations`` steps (the clipped ratio keeps the later updates near the sampling
policy), as TRL's ``GRPOTrainer`` does. Rewards are built-in names or ``module:function``
paths with TRL's signature ``(prompts, completions, **row) -> list[float]``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from superlab.config.post import _post_train
from superlab.config.section import FieldError, Section
from superlab.config.train import TrainConfig

BUILTIN_REWARDS = ("exact_match", "numeric", "format")


class RewardSpec(Section):
    """One reward: a built-in name or ``module:function``, and its weight in the sum."""

    name: str = Field(min_length=1, description="exact_match, numeric, format or module:function")
    weight: float = 1.0

    @model_validator(mode="after")
    def _known(self) -> RewardSpec:
        if self.name not in BUILTIN_REWARDS and ":" not in self.name:
            raise FieldError(
                "name",
                f"{self.name!r} is not one of {', '.join(BUILTIN_REWARDS)} "
                "nor a 'module:function' path",
            )
        return self


class RLConfig(Section):
    """GRPO (Shao et al. 2024) on prompts with checkable answers."""

    init: str = Field(default="sft", min_length=1, description="sft, run, or a path")
    # Prompts: the project's sums task (superlab.post.tasks) and/or JSONL/Parquet rows with
    # a ``prompt`` (text or messages); every other column goes to the rewards as **row.
    task: Literal["none", "sums"] = "none"
    task_items: int = Field(default=2000, ge=1, le=1_000_000)
    data: list[str] = Field(default_factory=list)
    heldout_every: int = Field(default=0, ge=0, description="rows of data held out for eval")
    rewards: list[RewardSpec] = Field(
        default_factory=lambda: [RewardSpec(name="exact_match")], min_length=1
    )
    answer_field: str = Field(default="answer", description="the row's reference answer")
    # The answer is read from the last <tag>...</tag> of a completion (None: the whole text).
    answer_tag: str | None = "answer"
    group_size: int = Field(default=8, ge=2, description="completions per prompt (G)")
    num_iterations: int = Field(default=1, ge=1, description="updates per rollout")
    epsilon: float = Field(default=0.2, gt=0, lt=1, description="ratio clip, low side")
    epsilon_high: float | None = Field(default=None, gt=0, description="high side (DAPO)")
    beta: float = Field(default=0.04, ge=0, description="k3 KL weight; 0: no reference")
    # true: (r - mean) / (std + 1e-4) within the group (GRPO); false: r - mean (Dr. GRPO).
    scale_rewards: bool = True
    # seq_mean: mean over each completion's tokens, then over completions (GRPO);
    # token_mean: one mean over every completion token of the batch (DAPO, Dr. GRPO).
    loss_type: Literal["seq_mean", "token_mean"] = "seq_mean"
    temperature: float = Field(default=1.0, gt=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=1)
    max_new_tokens: int = Field(default=32, ge=1)
    stop: list[str] = Field(default_factory=lambda: ["<|end|>"])
    # None: the starting model (init); else a path whose tokenizer equals the policy's.
    reference: str | None = None
    eval_items: int = Field(default=128, ge=0, description="held-out items for pass@k; 0 none")
    eval_samples: int = Field(default=8, ge=1, description="samples per item for pass@k")
    train: TrainConfig = Field(
        default_factory=lambda: _post_train(
            lr=1e-5, steps=50, batch_size=8, warmup_steps=0, ckpt_every=10, log_every=1
        )
    )

    @model_validator(mode="after")
    def _has_prompts(self) -> RLConfig:
        if not self.data and self.task == "none":
            raise FieldError("data", "no prompts: list files in data or set task")
        if self.train.grad_accum != 1:
            raise FieldError(
                "train.grad_accum",
                "GRPO takes one rollout per update; raise train.batch_size instead",
            )
        return self
