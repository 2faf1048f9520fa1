"""The SwiGLU feed-forward block (Shazeer 2020, "GLU Variants Improve Transformer").

Legend: D model dim, F hidden dim; ``...`` any leading dims.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SwiGLU(nn.Module):
    """``w2(silu(w1 x) * w3 x)``, no biases."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)  # gate
        self.w3 = nn.Linear(dim, hidden, bias=False)  # up
        self.w2 = nn.Linear(hidden, dim, bias=False)  # down (a residual projection)

    def forward(self, x_D: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x_D)) * self.w3(x_D))
