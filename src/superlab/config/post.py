"""The ``sft`` and ``pref`` sections: post-training stages on the pre-training loop.

Each holds its own ``train`` settings (a ``TrainConfig``: steps, batch, lr, schedule,
clipping, accumulation, precision, parallelism, checkpoints), with defaults meant for
fine-tuning rather than pre-training. ``init`` names the model to start from: ``run``
(this run's newest pre-training checkpoint), ``sft`` (this run's newest SFT checkpoint),
or a path to a local Hugging Face folder (``config.json`` + safetensors + ``tokenizer.json``)
or to another superlab run directory.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from superlab.config.section import FieldError, Section
from superlab.config.train import TrainConfig


def _post_train(**overrides: object) -> TrainConfig:
    base: dict[str, object] = {
        "steps": 100,
        "batch_size": 8,
        "lr": 1e-4,
        "warmup_steps": 10,
        "weight_decay": 0.0,
        "eval_every": 25,
        "ckpt_every": 25,
    }
    return TrainConfig.model_validate(base | overrides)


class SFTConfig(Section):
    """Supervised fine-tuning on chat rows in TRL's formats (JSONL or Parquet)."""

    init: str = Field(default="run", min_length=1, description="run, or a path (HF or run dir)")
    data: list[str] = Field(
        default_factory=list,
        description="JSONL(.gz) or Parquet files of messages or prompt/completion",
    )
    # arithmetic: also write generate_rows rows of the project's arithmetic task
    # (<run>/sft/arithmetic.jsonl: "What is a + b?" answered with the sum).
    generate: Literal["none", "arithmetic"] = "none"
    generate_rows: int = Field(default=1000, ge=1, le=1_000_000)
    heldout_every: int = Field(
        default=20, ge=0, description="every n-th valid row is held out for the chat loss; 0 none"
    )
    # all: every assistant turn is a target; last: only the final assistant turn.
    loss_on: Literal["all", "last"] = "all"
    packing: bool = Field(default=True, description="pack rows with document masking")
    # A row longer than train.seq_len + 1 tokens: reject it (rejects.jsonl, "longer than
    # allowed"), or keep_start: keep its first seq_len + 1 tokens (counted as truncated;
    # rejected when no assistant token is left).
    truncation: Literal["reject", "keep_start"] = "reject"
    train: TrainConfig = Field(default_factory=_post_train)

    @model_validator(mode="after")
    def _has_rows(self) -> SFTConfig:
        if not self.data and self.generate == "none":
            raise FieldError("data", "no SFT rows: list files in data or set generate")
        return self


class PrefConfig(Section):
    """Preference optimisation on prompt/chosen/rejected rows (TRL's format)."""

    init: str = Field(default="sft", min_length=1, description="sft, run, or a path")
    data: list[str] = Field(
        default_factory=list, description="JSONL(.gz) or Parquet files of prompt/chosen/rejected"
    )
    # arithmetic: also make on-policy pairs from the project's arithmetic task (chosen =
    # the correct answer, rejected = the starting model's own wrong sample).
    generate: Literal["none", "arithmetic"] = "none"
    generate_pairs: int = Field(default=64, ge=1, le=100_000)
    loss: Literal["dpo", "ipo", "simpo"] = "dpo"
    beta: float = Field(default=0.1, gt=0)
    label_smoothing: float = Field(default=0.0, ge=0, lt=0.5, description="dpo and simpo")
    simpo_gamma: float = Field(default=0.5, ge=0, description="SimPO's target reward margin")
    # The reference model for dpo/ipo: None = the starting model (init) itself; else a
    # path (HF folder or run directory) whose tokenizer must equal the policy's.
    reference: str | None = None
    heldout_every: int = Field(default=20, ge=0)
    truncation: Literal["reject", "keep_start"] = "reject"
    train: TrainConfig = Field(
        default_factory=lambda: _post_train(lr=5e-6, steps=50, batch_size=4, warmup_steps=5)
    )

    @model_validator(mode="after")
    def _has_pairs(self) -> PrefConfig:
        if not self.data and self.generate == "none":
            raise FieldError("data", "no preference pairs: list files in data or set generate")
        return self
