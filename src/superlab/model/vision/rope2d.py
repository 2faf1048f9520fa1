"""2-D rotary position embedding over a square grid of patches (Llama 4's vision RoPE).

Each head's C dims form C/2 adjacent pairs (2i, 2i+1), rotated as complex numbers. The
first C/4 pairs turn by the patch's column, the last C/4 by its row, both counted from 1,
at frequencies ``theta^(-4k/C)`` for k < C/4 (transformers'
``Llama4VisionRotaryEmbedding``, the same axial RoPE as Pixtral's). The class token,
appended after the patches, is not rotated (angle 0).

Legend: N images, H heads, L positions (patches + class token), C head dim, K = C/2 pairs.
"""

from __future__ import annotations

import torch


def angles(grid: int, head_dim: int, theta: float) -> torch.Tensor:
    """(L, K) rotation angles, L = grid^2 patches in row-major order + the class token."""
    quarter = head_dim // 4
    freq_K = 1.0 / theta ** (torch.arange(quarter, dtype=torch.float32) * 4 / head_dim)
    idx_P = torch.arange(grid * grid)
    col_P, row_P = (idx_P % grid + 1).float(), (idx_P // grid + 1).float()
    angle_PC = torch.cat([col_P[:, None] * freq_K, row_P[:, None] * freq_K], dim=1)
    return torch.cat([angle_PC, angle_PC.new_zeros(1, 2 * quarter)])  # class token: 0


def rotate(x_NHLC: torch.Tensor, rot_LK: torch.Tensor) -> torch.Tensor:
    """Rotate each adjacent pair (2i, 2i+1) of ``x`` by its position's angle: one complex
    multiply by ``rot_LK = exp(i * angle)`` (K = C/2 pairs), in float32."""
    x_NHLK = torch.view_as_complex(x_NHLC.float().unflatten(-1, (-1, 2)))
    return torch.view_as_real(x_NHLK * rot_LK).flatten(-2).to(x_NHLC.dtype)
