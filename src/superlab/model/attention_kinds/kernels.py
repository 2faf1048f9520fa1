"""The kernels the kinds run, in one namespace: the reference mask + SDPA path, and the
block-wise kernels (``attention_blockwise``, ``attention_sparse``) that never build T x T.

Kinds call them as ``kernels.<name>`` at run time, so a test may swap one (or
``MASKED_MAX_T``) on this module and every kind follows.

Legend: B batch, H query heads, G key/value heads, T query positions, S key positions,
C head dim.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from superlab.config.recipe import AttentionConfig
from superlab.model.attention_blockwise import chunked_attention, sliding_attention
from superlab.model.attention_kinds.registry import get_kind
from superlab.model.attention_sparse import select_blocks, sparse_attention, sparse_mask

__all__ = [
    "MASKED_MAX_T",
    "attention_mask",
    "chunked_attention",
    "sdpa",
    "select_blocks",
    "sliding_attention",
    "sparse_attention",
    "sparse_mask",
    "visible",
]

# Up to this many positions, sliding and sparse attention use the T x T mask: the scores
# are small there, and the block loops' per-block overhead would dominate the step.
MASKED_MAX_T = 256


def visible(cfg: AttentionConfig, pos_T: torch.Tensor, pos_S: torch.Tensor) -> torch.Tensor:
    """Boolean ``(..., T, S)``: may the query at position ``pos_T[t]`` see key ``pos_S[s]``.

    Leading dims broadcast: ``(B, T)`` and ``(B, S)`` positions give one mask per row.
    """
    return get_kind(cfg.kind).visible(cfg, pos_T[..., :, None], pos_S[..., None, :])


def attention_mask(
    cfg: AttentionConfig,
    seq_len: int,
    doc_ids_BT: torch.Tensor | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Boolean visibility, True = may attend: ``(T, S)``, or ``(B, 1, T, S)`` with doc ids."""
    pos_T = torch.arange(seq_len, device=device)
    mask_TS = visible(cfg, pos_T, pos_T)
    if doc_ids_BT is None:
        return mask_TS
    same_doc_BTS = doc_ids_BT[:, :, None] == doc_ids_BT[:, None, :]
    return (mask_TS & same_doc_BTS)[:, None]


def sdpa(
    q_BHTC: torch.Tensor, k_BGSC: torch.Tensor, v_BGSC: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """SDPA with each group of H/G query heads sharing one key/value head; None = causal."""
    # ``enable_gqa`` shares each key/value head among its query heads without copying it
    # (a copy of every cached key per step was most of a decode step's time).
    gqa = q_BHTC.shape[1] != k_BGSC.shape[1]
    return F.scaled_dot_product_attention(
        q_BHTC, k_BGSC, v_BGSC, attn_mask=mask, is_causal=mask is None, enable_gqa=gqa
    )
