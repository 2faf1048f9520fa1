"""RMSNorm (Zhang & Sennrich 2019): scale by the root mean square, no mean subtraction.

Legend: D model dim; ``...`` any leading dims.
"""

from __future__ import annotations

import torch
from torch import nn


class RMSNorm(nn.Module):
    """``x / rms(x) * weight``, computed in float32 and cast back."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x_D: torch.Tensor) -> torch.Tensor:
        x32_D = x_D.float()
        y_D = x32_D * torch.rsqrt(x32_D.pow(2).mean(-1, keepdim=True) + self.eps)
        return y_D.type_as(x_D) * self.weight
