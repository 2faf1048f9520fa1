"""Block-sparse causal attention: local blocks plus the top-k earlier blocks per query.

Keys are split into blocks of ``block_size``; each complete block is summarised by its mean
key (per kv head), as in MoBA (Lu et al. 2025) and NSA's selection branch (Yuan et al. 2025).
A query in block i always attends, causally, to its own block and the ``local_blocks``
before it; among the older blocks j < i - local_blocks it also attends to the
``top_k_blocks`` with the highest gate ``q · mean_key_j``.

Gating granularity: per query token and per query head, as in MoBA's gate
``s_i = <q, mean_pool(K[I_i])>``. A gate shared by a whole query block (mean of its queries)
would let a token's output depend on queries after it in the same block, which breaks
causality and cannot be reproduced token by token at decode time. Selection is causal: only
complete blocks strictly before the local window compete, so no future key or query is read.

With ``doc_ids_BT`` a block competes only if all its keys belong to the query's document, so
the choice never depends on another document (own and local blocks are masked by document
as usual). The gate is a hard top-k: no gradient flows through the selection.

``sparse_attention`` gathers the selected K/V blocks per query block under activation
checkpointing, so memory stays O(T·(top_k_blocks + local_blocks + 1)·block_size); with
``masked`` it builds the same visibility as a T×T mask for plain SDPA (``sparse_mask``).

Legend: B batch, H query heads, G key/value heads (H % G == 0), R = H/G query heads per kv
head, T positions, C head dim, N key blocks, P keys in a block, K selected blocks, Q queries
in a query block, S local keys of a query block, W = B·G·N key blocks as rows, F = P·C,
X = B·H·Q·K gathered rows, Y = K·P selected keys of a query.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


@torch.no_grad()
def select_blocks(
    q_BHTC: torch.Tensor,
    k_BGTC: torch.Tensor,
    block_size: int,
    top_k_blocks: int,
    local_blocks: int,
    doc_ids_BT: torch.Tensor | None = None,
    rows: int = 1024,
) -> torch.Tensor:
    """Indices of the selected earlier key blocks for every query and head, -1 = none."""
    B, H, T, C = q_BHTC.shape
    G = k_BGTC.shape[1]
    N = T // block_size  # complete blocks only; a partial block is never strictly earlier
    K = min(top_k_blocks, N)
    idx_BHTK = torch.full((B, H, T, K), -1, dtype=torch.long, device=q_BHTC.device)
    if K == 0:
        return idx_BHTK
    k_BGNPC = k_BGTC[:, :, : N * block_size].reshape(B, G, N, block_size, C)
    mean_k_BHNC = k_BGNPC.mean(dim=3).repeat_interleave(H // G, dim=1)
    query_block_T = torch.arange(T, device=q_BHTC.device) // block_size
    key_block_N = torch.arange(N, device=q_BHTC.device)
    # A block competes only if it is older than the query's own and local blocks.
    eligible_TN = key_block_N[None, :] < (query_block_T[:, None] - local_blocks)
    eligible = eligible_TN
    if doc_ids_BT is not None:
        doc_BNP = doc_ids_BT[:, : N * block_size].reshape(B, N, block_size)
        whole_BN = (doc_BNP == doc_BNP[:, :, :1]).all(dim=2)
        same_doc_BTN = doc_ids_BT[:, :, None] == doc_BNP[:, None, :, 0]
        eligible = (eligible_TN & same_doc_BTN & whole_BN[:, None, :])[:, None]  # (B, 1, T, N)
    # Gate scores are (T, N) per head; go through the queries in slices to keep them small.
    for t0 in range(0, T, rows):
        t1 = min(t0 + rows, T)
        score_BHTN = q_BHTC[:, :, t0:t1] @ mean_k_BHNC.transpose(-1, -2)
        score_BHTN = score_BHTN.masked_fill(~eligible[..., t0:t1, :], -math.inf)
        top_BHTK, top_idx_BHTK = score_BHTN.topk(K, dim=-1)
        idx_BHTK[:, :, t0:t1] = top_idx_BHTK.masked_fill(top_BHTK == -math.inf, -1)
    return idx_BHTK


def _query_block(
    q_BHQC: torch.Tensor,
    k_BGTC: torch.Tensor,
    v_BGTC: torch.Tensor,
    k_WF: torch.Tensor,
    v_WF: torch.Tensor,
    idx_BHQK: torch.Tensor,
    doc_ids_BT: torch.Tensor | None,
    t0: int,
    s0: int,
    block_size: int,
) -> torch.Tensor:
    """Attention of queries [t0, t0 + Q) to local keys [s0, t0 + Q) and their selected blocks."""
    B, H, Q, C = q_BHQC.shape
    G, t1 = k_BGTC.shape[1], t0 + Q
    R, N, P, K = H // G, k_BGTC.shape[2] // block_size, block_size, idx_BHQK.shape[-1]
    # Local keys are shared by the block: a GQA-grouped matmul, no repeat of K/V.
    q_BGRQC = q_BHQC.view(B, G, R, Q, C)
    k_loc_BG1SC, v_loc_BG1SC = k_BGTC[:, :, None, s0:t1], v_BGTC[:, :, None, s0:t1]
    logit_loc_BHQS = (q_BGRQC @ k_loc_BG1SC.transpose(-1, -2)).view(B, H, Q, -1)
    t_Q1 = torch.arange(t0, t1, device=q_BHQC.device)[:, None]
    s_1S = torch.arange(s0, t1, device=q_BHQC.device)[None, :]
    see_loc = s_1S <= t_Q1
    if doc_ids_BT is not None:
        same_doc_BQS = doc_ids_BT[:, t0:t1, None] == doc_ids_BT[:, None, s0:t1]
        see_loc = (see_loc & same_doc_BQS)[:, None]  # (B, 1, Q, S)
    # Selected blocks differ per query and head: gather them (this is what checkpointing frees).
    # index_select (backward: index_add_) is far faster on CPU than advanced indexing.
    g_1H11 = (torch.arange(H, device=q_BHQC.device) // R)[None, :, None, None]
    b_B111 = torch.arange(B, device=q_BHQC.device)[:, None, None, None]
    row_X = ((b_B111 * G + g_1H11) * N + idx_BHQK.clamp(min=0)).flatten()
    k_sel_BHQYC = k_WF.index_select(0, row_X).view(B, H, Q, K * P, C)
    v_sel_BHQYC = v_WF.index_select(0, row_X).view(B, H, Q, K * P, C)
    logit_sel_BHQKP = (k_sel_BHQYC @ q_BHQC[..., None]).view(B, H, Q, K, P)
    # Selected blocks are older than the query and, with doc ids, wholly of its document.
    see_sel_BHQKP = (idx_BHQK >= 0)[..., None].expand_as(logit_sel_BHQKP)
    logit_loc_BHQS = logit_loc_BHQS.masked_fill(~see_loc, -math.inf)
    logit_sel_BHQKP = logit_sel_BHQKP.masked_fill(~see_sel_BHQKP, -math.inf)
    S = logit_loc_BHQS.shape[-1]
    logit_BHQX = torch.cat([logit_loc_BHQS, logit_sel_BHQKP.flatten(3)], dim=-1)
    prob_BHQX = torch.softmax(logit_BHQX / math.sqrt(C), dim=-1)  # a query always sees itself
    prob_loc_BGRQS = prob_BHQX[..., :S].view(B, G, R, Q, S)
    prob_sel_BHQY = prob_BHQX[..., S:]
    out_BHQC = (prob_loc_BGRQS @ v_loc_BG1SC).view(B, H, Q, C)
    return out_BHQC + (prob_sel_BHQY[..., None, :] @ v_sel_BHQYC).view(B, H, Q, C)


def sparse_attention(
    q_BHTC: torch.Tensor,
    k_BGTC: torch.Tensor,
    v_BGTC: torch.Tensor,
    block_size: int,
    top_k_blocks: int,
    local_blocks: int,
    doc_ids_BT: torch.Tensor | None = None,
    masked: bool = False,
) -> torch.Tensor:
    """MoBA/NSA-style block-sparse causal attention, one query block at a time.

    ``masked``: the same visibility as one T×T mask and plain SDPA instead (the sparse
    kind's path for short sequences, and the tests' reference).
    """
    T, H, G = q_BHTC.shape[2], q_BHTC.shape[1], k_BGTC.shape[1]
    assert H % G == 0, f"{H} query heads are not a multiple of {G} kv heads"
    idx_BHTK = select_blocks(q_BHTC, k_BGTC, block_size, top_k_blocks, local_blocks, doc_ids_BT)
    if masked:
        mask_BHTS = sparse_mask(idx_BHTK, block_size, local_blocks, doc_ids_BT)
        k_BHTC, v_BHTC = (x.repeat_interleave(H // G, dim=1) for x in (k_BGTC, v_BGTC))
        return F.scaled_dot_product_attention(q_BHTC, k_BHTC, v_BHTC, attn_mask=mask_BHTS)
    B, C, N = q_BHTC.shape[0], q_BHTC.shape[3], T // block_size
    # Complete key blocks as rows, built once: W = B·G·N rows of F = block_size·C values.
    k_WF, v_WF = (
        x[:, :, : N * block_size].reshape(B * G * N, block_size * C) for x in (k_BGTC, v_BGTC)
    )
    out_blocks = []
    # split, not slicing: its backward is one concatenation, not a full-size grad per block.
    q_blocks = q_BHTC.split(block_size, dim=2)
    for i, t0 in enumerate(range(0, T, block_size)):
        t1 = min(t0 + block_size, T)
        s0 = max(0, i - local_blocks) * block_size
        args = (q_blocks[i], k_BGTC, v_BGTC, k_WF, v_WF, idx_BHTK[:, :, t0:t1], doc_ids_BT)
        if torch.is_grad_enabled():
            # Recompute the gathered K/V in backward instead of keeping T·K·P·C of them.
            out = checkpoint(_query_block, *args, t0, s0, block_size, use_reentrant=False)
        else:
            out = _query_block(*args, t0, s0, block_size)
        out_blocks.append(out)
    return torch.cat(out_blocks, dim=2)


def sparse_mask(
    idx_BHTK: torch.Tensor,
    block_size: int,
    local_blocks: int,
    doc_ids_BT: torch.Tensor | None = None,
) -> torch.Tensor:
    """The visibility of ``sparse_attention`` as an explicit ``(B, H, T, T)`` boolean mask."""
    B, H, T, _ = idx_BHTK.shape
    N = -(-T // block_size)
    pos_T = torch.arange(T, device=idx_BHTK.device)
    block_T = pos_T // block_size
    chosen_BHTN = torch.zeros(B, H, T, N + 1, dtype=torch.bool, device=idx_BHTK.device)
    chosen_BHTN.scatter_(-1, idx_BHTK.masked_fill(idx_BHTK < 0, N), True)  # N = "none"
    chosen_BHTS = chosen_BHTN[..., block_T]
    local_TS = (block_T[:, None] - block_T[None, :]) <= local_blocks
    mask_BHTS = (pos_T[None, :] <= pos_T[:, None]) & (local_TS | chosen_BHTS)
    if doc_ids_BT is not None:
        mask_BHTS = mask_BHTS & (doc_ids_BT[:, :, None] == doc_ids_BT[:, None, :])[:, None]
    return mask_BHTS
