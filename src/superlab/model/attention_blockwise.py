"""Sliding-window and chunked causal attention, block by block, never building T×T.

Same visibility as ``attention.attention_mask`` (query t, key s, always s <= t):

- sliding (window w; Beltagy et al. 2020, Longformer; Mistral): ``t - s < w``. Queries go in
  blocks of b; a block [t0, t1) only needs keys [t0 - w + 1, t1), so all blocks are one
  batched SDPA call over overlapping key windows with a (b, b + w - 1) mask each:
  memory O(T·(w + b)).
- chunked (chunk c; Llama 4's local attention layers): ``t // c == s // c``. T is padded to
  a multiple of c and folded into T/c independent chunks, one batched causal SDPA call:
  memory O(T·c).

With ``doc_ids_BT`` a query also sees only keys of its own document; the document test is
folded into the small per-block mask. Gradients flow through SDPA, no custom backward.

GPU: on CUDA the fast path would be ``torch.nn.attention.flex_attention`` with a
``create_block_mask`` for the same predicates (it skips empty blocks and never builds T×T).
It is not implemented here because it cannot be tested without a GPU.

Legend: B batch, H query heads, G key/value heads (H % G == 0), T positions, C head dim,
N chunks or query blocks, Q queries in a block (or chunk), S keys for that block.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _repeat_kv(q_BHTC: torch.Tensor, kv_BGTC: torch.Tensor) -> torch.Tensor:
    """Share each key/value head among H/G query heads (GQA, Ainslie et al. 2023)."""
    H, G = q_BHTC.shape[1], kv_BGTC.shape[1]
    assert H % G == 0, f"{H} query heads are not a multiple of {G} kv heads"
    return kv_BGTC.repeat_interleave(H // G, dim=1)


def sliding_attention(
    q_BHTC: torch.Tensor,
    k_BGTC: torch.Tensor,
    v_BGTC: torch.Tensor,
    window: int,
    doc_ids_BT: torch.Tensor | None = None,
    block: int = 128,
) -> torch.Tensor:
    """Causal attention where query t sees keys t-window+1..t, in query blocks of ``block``."""
    assert window >= 1 and block >= 1
    B, H, T, C = q_BHTC.shape
    N, S = -(-T // block), block + window - 1
    pad = N * block - T
    k_BHTC, v_BHTC = _repeat_kv(q_BHTC, k_BGTC), _repeat_kv(q_BHTC, v_BGTC)
    q_BHNQC = F.pad(q_BHTC, (0, 0, 0, pad)).view(B, H, N, block, C)
    # Query block n needs keys [n·block - window + 1, (n + 1)·block): overlapping windows of S
    # keys, one strided view of K padded by window - 1 in front, so one batched SDPA call and
    # one unfold backward (slicing per block would cost a full-size gradient per block).
    k_BHNSC, v_BHNSC = (
        F.pad(x_BHTC, (0, 0, window - 1, pad)).unfold(2, S, block).transpose(-1, -2)
        for x_BHTC in (k_BHTC, v_BHTC)
    )
    t_NQ1 = torch.arange(N * block, device=q_BHTC.device).view(N, block, 1)
    s_N1S = (torch.arange(N, device=q_BHTC.device) * block - window + 1).view(N, 1, 1) + (
        torch.arange(S, device=q_BHTC.device).view(1, 1, S)
    )
    mask = (s_N1S >= 0) & (s_N1S <= t_NQ1) & (t_NQ1 - s_N1S < window)  # (N, Q, S)
    if doc_ids_BT is not None:
        doc_BNQ = F.pad(doc_ids_BT, (0, pad), value=-1).view(B, N, block)
        doc_BNS = F.pad(doc_ids_BT, (window - 1, pad), value=-1).unfold(1, S, block)
        mask = (mask & (doc_BNQ[..., :, None] == doc_BNS[..., None, :]))[:, None]
    out_BHNQC = F.scaled_dot_product_attention(q_BHNQC, k_BHNSC, v_BHNSC, attn_mask=mask)
    return out_BHNQC.reshape(B, H, N * block, C)[:, :, :T]


def chunked_attention(
    q_BHTC: torch.Tensor,
    k_BGTC: torch.Tensor,
    v_BGTC: torch.Tensor,
    chunk: int,
    doc_ids_BT: torch.Tensor | None = None,
) -> torch.Tensor:
    """Causal attention inside fixed chunks of ``chunk`` tokens: one batched SDPA over chunks."""
    assert chunk >= 1
    B, H, T, C = q_BHTC.shape
    N = -(-T // chunk)
    pad = N * chunk - T
    k_BHTC, v_BHTC = _repeat_kv(q_BHTC, k_BGTC), _repeat_kv(q_BHTC, v_BGTC)
    # Padding goes after the last real token, so causality already hides it from real queries.
    q_BHNQC, k_BHNQC, v_BHNQC = (
        F.pad(x_BHTC, (0, 0, 0, pad)).view(B, H, N, chunk, C) for x_BHTC in (q_BHTC, k_BHTC, v_BHTC)
    )
    if doc_ids_BT is None:
        out_BHNQC = F.scaled_dot_product_attention(q_BHNQC, k_BHNQC, v_BHNQC, is_causal=True)
    else:
        doc_BNQ = F.pad(doc_ids_BT, (0, pad), value=-1).view(B, N, chunk)
        causal_QQ = torch.ones(chunk, chunk, dtype=torch.bool, device=q_BHTC.device).tril()
        mask_B1NQQ = (causal_QQ & (doc_BNQ[..., :, None] == doc_BNQ[..., None, :]))[:, None]
        out_BHNQC = F.scaled_dot_product_attention(q_BHNQC, k_BHNQC, v_BHNQC, attn_mask=mask_B1NQQ)
    return out_BHNQC.reshape(B, H, N * chunk, C)[:, :, :T]
