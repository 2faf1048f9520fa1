"""Learning-rate schedules: linear warmup, then cosine decay or warmup-stable-decay (WSD).

Warmup as in GPT-3 (Brown et al. 2020). ``cosine``: Loshchilov & Hutter 2017 without
restarts, decaying to ``min_lr_ratio * lr`` (10% of the peak follows Chinchilla,
Hoffmann et al. 2022). ``wsd``: the peak held until the last ``decay_fraction`` of the
steps, then a "1-sqrt" cooldown to ``min_lr_ratio * lr``; Hägele et al. 2024 ("Scaling
Laws and Compute-Optimal Training Beyond Fixed Training Durations", sec. 3) find 1-sqrt
over 20% of the steps matches cosine, and a stable phase lets a run be extended.
"""

from __future__ import annotations

import math
from typing import Literal

from superlab.config.recipe import TrainConfig


def lr_at(
    step: float,
    *,
    lr: float,
    warmup_steps: int,
    total_steps: int,
    min_lr_ratio: float,
    schedule: Literal["cosine", "wsd"] = "cosine",
    decay_fraction: float = 0.2,
) -> float:
    """The learning rate for 0-based optimizer step ``step`` of ``total_steps``."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    last = total_steps - 1  # the final step reaches the minimum
    if schedule == "wsd":
        decay_start = max(warmup_steps, last - round(decay_fraction * total_steps))
        if step <= decay_start:
            return lr
        progress = min(1.0, (step - decay_start) / max(1, last - decay_start))
        return lr * (min_lr_ratio + (1.0 - min_lr_ratio) * (1.0 - math.sqrt(progress)))
    if schedule != "cosine":
        raise ValueError(f"train.schedule {schedule!r}: expected 'cosine' or 'wsd'")
    progress = min(1.0, (step - warmup_steps) / max(1, last - warmup_steps))
    return lr * (min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def lr_for(tc: TrainConfig, step: int) -> float:
    """``lr_at`` with every setting taken from ``train``."""
    return lr_at(
        step,
        lr=tc.lr,
        warmup_steps=tc.warmup_steps,
        total_steps=tc.steps,
        min_lr_ratio=tc.min_lr_ratio,
        schedule=tc.schedule,
        decay_fraction=tc.decay_fraction,
    )
