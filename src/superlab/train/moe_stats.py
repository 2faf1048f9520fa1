"""Per MoE layer statistics over a whole optimizer step: every micro-batch, every rank.

Each forward leaves one dict per MoE layer (``superlab.model.routers.load_stats``):
``tokens_per_expert`` (slots routed to each expert), ``max_load`` (max / mean count),
``mean_load``, ``load_cv`` (std / mean of the counts), ``router_entropy``,
``balance_loss``, ``z_loss``, ``dropped_fraction`` and router-specific extras.
``merge`` combines several: counts are summed and the three load figures recomputed from
the sums (so they describe the step, not an average of ratios); every other number is the
mean, exact because micro-batches and ranks hold equally many tokens.
"""

from __future__ import annotations

import math
from typing import Any

COUNTS = "tokens_per_expert"


def load_spread(counts: list[int]) -> dict[str, float]:
    """``max_load``, ``mean_load`` and ``load_cv`` of per-expert counts (as the routers)."""
    mean = sum(counts) / len(counts)
    std = math.sqrt(sum((c - mean) ** 2 for c in counts) / len(counts))
    return {
        "max_load": max(counts) / mean if mean else 0.0,
        "mean_load": mean,
        "load_cv": std / mean if mean else 0.0,
    }


def merge(samples: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One dict per layer from ``samples`` (each a list over layers, from one forward)."""
    merged = []
    for layer in zip(*samples, strict=True):
        counts = [sum(c) for c in zip(*(d[COUNTS] for d in layer), strict=True)]
        spread = load_spread(counts)
        out: dict[str, Any] = {}
        for key in layer[0]:
            if key == COUNTS:
                out[key] = counts
            elif key in spread:
                out[key] = spread[key]
            else:
                out[key] = sum(d[key] for d in layer) / len(layer)
        merged.append(out)
    return merged
