"""Causal grouped-query attention (Ainslie et al. 2023) with three kinds of visibility.

Every kind is causal; a query at position t may see key position s <= t and, by kind:

- ``full``: every earlier token.
- ``sliding`` (window w, Beltagy et al. 2020; Mistral): ``t - s < w``, itself and the
  w-1 previous tokens.
- ``chunked`` (chunk c, Llama 4's local layers): ``t // c == s // c``, only earlier tokens
  of its own fixed chunk, so nothing crosses a chunk boundary.

With ``doc_ids_BT`` a query also sees only keys of its own document (packed sequences).
This is the reference path: a boolean mask and ``F.scaled_dot_product_attention``, with
the ``is_causal=True`` fast path for plain full attention.

Legend: B batch, T query positions, S key positions, D model dim, H query heads,
G key/value heads, C head dim.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from superlab.config.recipe import AttentionConfig, ModelConfig
from superlab.model.rope import apply_rope


def attention_mask(
    cfg: AttentionConfig,
    seq_len: int,
    doc_ids_BT: torch.Tensor | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Boolean visibility, True = may attend: ``(T, S)``, or ``(B, 1, T, S)`` with doc ids."""
    t_T1 = torch.arange(seq_len, device=device)[:, None]
    s_1S = torch.arange(seq_len, device=device)[None, :]
    mask_TS = s_1S <= t_T1
    if cfg.kind == "sliding":
        assert cfg.window is not None
        mask_TS = mask_TS & (t_T1 - s_1S < cfg.window)
    elif cfg.kind == "chunked":
        assert cfg.chunk_size is not None
        mask_TS = mask_TS & (t_T1 // cfg.chunk_size == s_1S // cfg.chunk_size)
    if doc_ids_BT is None:
        return mask_TS
    same_doc_BTS = doc_ids_BT[:, :, None] == doc_ids_BT[:, None, :]
    return (mask_TS & same_doc_BTS)[:, None]


class Attention(nn.Module):
    """Multi-head attention with G <= H shared key/value heads and RoPE on q and k."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.attn_cfg = cfg.attention
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.kv_heads, cfg.head_dim
        self.wq = nn.Linear(cfg.d_model, self.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(cfg.d_model, self.n_kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(cfg.d_model, self.n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(self.n_heads * self.head_dim, cfg.d_model, bias=False)

    def forward(
        self,
        x_BTD: torch.Tensor,
        cos_TC: torch.Tensor,
        sin_TC: torch.Tensor,
        doc_ids_BT: torch.Tensor | None = None,
    ) -> torch.Tensor:
        B, T, _ = x_BTD.shape
        H, G, C = self.n_heads, self.n_kv_heads, self.head_dim
        q_BHTC = self.wq(x_BTD).view(B, T, H, C).transpose(1, 2)
        k_BGTC = self.wk(x_BTD).view(B, T, G, C).transpose(1, 2)
        v_BGTC = self.wv(x_BTD).view(B, T, G, C).transpose(1, 2)
        q_BHTC = apply_rope(q_BHTC, cos_TC, sin_TC)
        k_BGTC = apply_rope(k_BGTC, cos_TC, sin_TC)
        # Each group of H/G query heads shares one key/value head.
        k_BHSC = k_BGTC.repeat_interleave(H // G, dim=1)
        v_BHSC = v_BGTC.repeat_interleave(H // G, dim=1)
        if self.attn_cfg.kind == "full" and doc_ids_BT is None:
            y_BHTC = F.scaled_dot_product_attention(q_BHTC, k_BHSC, v_BHSC, is_causal=True)
        else:
            mask = attention_mask(self.attn_cfg, T, doc_ids_BT, device=x_BTD.device)
            y_BHTC = F.scaled_dot_product_attention(q_BHTC, k_BHSC, v_BHSC, attn_mask=mask)
        return self.wo(y_BHTC.transpose(1, 2).reshape(B, T, H * C))
