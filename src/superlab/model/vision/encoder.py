"""The ViT of Llama 4's vision tower: patches in, one vector per patch out.

Patch embedding (a bias-free linear over each patch's C x p x p pixels, channel-major like
``torch.nn.Unfold``), a learned class token appended after the patches, a learned absolute
position table, LayerNorm, then pre-norm blocks of bidirectional attention with 2-D RoPE
(``rope2d``) and a GELU MLP, all with biases; a last LayerNorm, and the class token
dropped (transformers' ``Llama4VisionModel`` up to its ``vision_adapter``).

Legend: N images, P patches, L = P + 1 positions, D vision width, H heads, C head dim.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from superlab.config.vision import VisionConfig
from superlab.model.vision.rope2d import angles, rotate

# LayerNorm eps: transformers' nn.LayerNorm default, which Llama 4's vision tower keeps
# (its config's norm_eps is never read).
EPS = 1e-5


class VisionAttention(nn.Module):
    """Multi-head self-attention over all positions (no mask), 2-D RoPE on q and k."""

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.wq = nn.Linear(cfg.d_model, cfg.d_model)
        self.wk = nn.Linear(cfg.d_model, cfg.d_model)
        self.wv = nn.Linear(cfg.d_model, cfg.d_model)
        self.wo = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, x_NLD: torch.Tensor, rot_LK: torch.Tensor) -> torch.Tensor:
        def heads(t_NLD: torch.Tensor) -> torch.Tensor:
            return t_NLD.unflatten(-1, (self.n_heads, -1)).transpose(1, 2)  # (N, H, L, C)

        q_NHLC = rotate(heads(self.wq(x_NLD)), rot_LK)
        k_NHLC = rotate(heads(self.wk(x_NLD)), rot_LK)
        y_NHLC = F.scaled_dot_product_attention(q_NHLC, k_NHLC, heads(self.wv(x_NLD)))
        return self.wo(y_NHLC.transpose(1, 2).flatten(2))


class VisionBlock(nn.Module):
    """Pre-norm residual block: attention, then fc1 -> GELU -> fc2."""

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.d_model, eps=EPS)
        self.attn = VisionAttention(cfg)
        self.norm2 = nn.LayerNorm(cfg.d_model, eps=EPS)
        self.fc1 = nn.Linear(cfg.d_model, cfg.ffn_hidden)
        self.fc2 = nn.Linear(cfg.ffn_hidden, cfg.d_model)

    def forward(self, x_NLD: torch.Tensor, rot_LK: torch.Tensor) -> torch.Tensor:
        x_NLD = x_NLD + self.attn(self.norm1(x_NLD), rot_LK)
        return x_NLD + self.fc2(F.gelu(self.fc1(self.norm2(x_NLD))))


class VisionEncoder(nn.Module):
    """Pixels (N, C, H, W) -> patch vectors (N, P, D), class token dropped."""

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        D, L = cfg.d_model, cfg.grid**2 + 1
        self.patch_emb = nn.Linear(cfg.channels * cfg.patch_size**2, D, bias=False)
        self.cls_D = nn.Parameter(torch.zeros(D))
        self.pos_LD = nn.Parameter(torch.zeros(L, D))
        self.norm_pre = nn.LayerNorm(D, eps=EPS)
        self.blocks = nn.ModuleList(VisionBlock(cfg) for _ in range(cfg.n_layers))
        self.norm_post = nn.LayerNorm(D, eps=EPS)
        angle_LK = angles(cfg.grid, D // cfg.n_heads, cfg.rope_theta)
        # Real buffers (Module.to(dtype) would drop a complex one's imaginary part).
        self.register_buffer("cos_LK", angle_LK.cos(), persistent=False)
        self.register_buffer("sin_LK", angle_LK.sin(), persistent=False)

    def patches(self, pixels_NCHW: torch.Tensor) -> torch.Tensor:
        """(N, P, C*p*p): each patch's pixels, channel-major, patches row-major."""
        N, C, _, _ = pixels_NCHW.shape
        g, p = self.cfg.grid, self.cfg.patch_size
        x = pixels_NCHW.reshape(N, C, g, p, g, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(N, g * g, C * p * p)

    def forward(self, pixels_NCHW: torch.Tensor) -> torch.Tensor:
        x_NPD = self.patch_emb(self.patches(pixels_NCHW))
        cls_N1D = self.cls_D.to(x_NPD.dtype).expand(x_NPD.shape[0], 1, -1)
        x_NLD = self.norm_pre(torch.cat([x_NPD, cls_N1D], dim=1) + self.pos_LD.to(x_NPD.dtype))
        rot_LK = torch.complex(self.cos_LK.float(), self.sin_LK.float())
        for block in self.blocks:
            x_NLD = block(x_NLD, rot_LK)
        return self.norm_post(x_NLD)[:, :-1]

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Weights N(0, 0.02) (residual outputs / sqrt(2 n_layers)), biases 0, norms 1;
        class token and positions N(0, D^-1/2) as transformers initialises them."""
        residual_std = 0.02 / math.sqrt(2 * self.cfg.n_layers)
        for name, p in self.named_parameters():
            if name in ("cls_D", "pos_LD"):
                nn.init.normal_(p, std=self.cfg.d_model**-0.5)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
            elif p.dim() == 1:
                nn.init.ones_(p)
            elif name.endswith(("wo.weight", "fc2.weight")):
                nn.init.normal_(p, std=residual_std)
            else:
                nn.init.normal_(p, std=0.02)
