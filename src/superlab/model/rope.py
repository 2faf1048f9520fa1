"""Rotary position embedding (Su et al. 2021, RoFormer), the rotate-half layout of Llama.

Dimension i is paired with i + C/2 (HF Llama's layout). Checkpoints that pair adjacent
dimensions (2i, 2i+1), like Meta's and llama2.c's, are converted by permuting the rows
of ``wq`` and ``wk`` on import (``superlab.model.llama2c.interleaved_to_half``).

Scaling (``model.rope_scaling``) changes the frequencies to reach past the trained context:
``linear`` divides positions by ``factor`` (Chen et al. 2023, position interpolation),
``ntk`` raises the base to ``theta * factor^(C/(C-2))`` (bloc97's NTK-aware scaling,
r/LocalLLaMA 2023), ``llama3`` is Llama 3.1's piecewise rule (transformers'
``_compute_llama3_parameters``): wavelengths longer than ``original_max / low_freq_factor``
are stretched by ``factor``, those shorter than ``original_max / high_freq_factor`` kept,
and those between interpolated smoothly.

Legend: B batch, H heads, T positions, C head dim (even).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from superlab.config.recipe import RopeScalingConfig


def inv_freq(head_dim: int, theta: float, scaling: RopeScalingConfig | None = None) -> torch.Tensor:
    """Angle per position of each of the C/2 rotated pairs, after ``scaling`` (float32, as HF)."""
    half = head_dim // 2
    if scaling is not None and scaling.type == "ntk":
        theta = theta * scaling.factor ** (head_dim / (head_dim - 2))
    freq_c = 1.0 / (theta ** (torch.arange(half, dtype=torch.float32) / half))
    if scaling is None or scaling.type == "ntk":
        return freq_c
    if scaling.type == "linear":  # angle(t / factor) = t * (freq / factor)
        return freq_c / scaling.factor
    assert scaling.original_max_seq_len is not None
    orig, lo, hi = scaling.original_max_seq_len, scaling.low_freq_factor, scaling.high_freq_factor
    wavelen_c = 2 * math.pi / freq_c
    smooth_c = (orig / wavelen_c - lo) / (hi - lo)  # 0 at the low edge, 1 at the high edge
    mixed_c = (1 - smooth_c) * freq_c / scaling.factor + smooth_c * freq_c
    out_c = torch.where(wavelen_c > orig / lo, freq_c / scaling.factor, mixed_c)
    out_c = torch.where(wavelen_c < orig / hi, freq_c, out_c)
    return out_c


class RotaryEmbedding(nn.Module):
    """Cached cos/sin tables for positions ``0..max_seq_len-1``; grown on demand."""

    def __init__(
        self,
        head_dim: int,
        max_seq_len: int,
        theta: float = 10_000.0,
        scaling: RopeScalingConfig | None = None,
    ) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.theta = theta
        self.scaling = scaling
        # Not persistent: derived from the config, so never stored in a checkpoint.
        self.register_buffer("cos_TC", torch.empty(0), persistent=False)
        self.register_buffer("sin_TC", torch.empty(0), persistent=False)
        self._build(max_seq_len)

    def _build(self, seq_len: int) -> None:
        device = self.cos_TC.device
        inv_freq_c = inv_freq(self.head_dim, self.theta, self.scaling).to(device)
        t_T = torch.arange(seq_len, dtype=torch.float32, device=device)
        angles_Tc = torch.outer(t_T, inv_freq_c)
        angles_TC = torch.cat([angles_Tc, angles_Tc], dim=-1)
        self.cos_TC = angles_TC.cos()
        self.sin_TC = angles_TC.sin()

    def forward(self, seq_len: int, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cos_TC, sin_TC)`` for positions ``start..start+seq_len-1``."""
        end = start + seq_len
        if end > self.cos_TC.shape[0]:
            self._build(max(end, 2 * self.cos_TC.shape[0]))  # doubling: O(1) amortised
        return self.cos_TC[start:end], self.sin_TC[start:end]


def _rotate_half(x_BHTC: torch.Tensor) -> torch.Tensor:
    x1, x2 = x_BHTC.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x_BHTC: torch.Tensor, cos_TC: torch.Tensor, sin_TC: torch.Tensor) -> torch.Tensor:
    """Rotate each (i, i + C/2) pair of ``x`` by its position's angle."""
    x32_BHTC = x_BHTC.float()
    out_BHTC = x32_BHTC * cos_TC + _rotate_half(x32_BHTC) * sin_TC
    return out_BHTC.type_as(x_BHTC)
