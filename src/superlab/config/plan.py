"""The ``plan`` section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from superlab.config.section import Section


class PlanConfig(Section):
    """What training this recipe's model would cost at scale."""

    accelerator: str = "h100-sxm"
    precision: Literal["bf16", "fp8"] = "bf16"
    num_gpus: int = Field(default=8, ge=1)
    mfu: float = Field(default=0.4, gt=0, le=1)
    goodput: float = Field(default=0.9, gt=0, le=1)
    pue: float = Field(default=1.2, ge=1)
    price_per_gpu_hour: float = Field(default=2.5, ge=0)
    # Tokens for the scaled-up estimate; None = 20 x parameters (Chinchilla).
    target_tokens: float | None = Field(default=None, gt=0)
