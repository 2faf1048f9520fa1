"""Learning-rate schedule: linear warmup, then cosine decay to ``min_lr_ratio * lr``.

Warmup as in GPT-3 (Brown et al. 2020), cosine as in Loshchilov & Hutter 2017 without
restarts; decaying to 10% of the peak follows Chinchilla (Hoffmann et al. 2022).
"""

from __future__ import annotations

import math


def lr_at(
    step: int, *, lr: float, warmup_steps: int, total_steps: int, min_lr_ratio: float
) -> float:
    """The learning rate for 0-based optimizer step ``step`` of ``total_steps``."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - 1 - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    ratio = min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return lr * ratio
