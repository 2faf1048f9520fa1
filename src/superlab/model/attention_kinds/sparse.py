"""``sparse`` (MoBA / NSA selection; kernels in ``superlab.model.attention_sparse``).

A query in block i = t // P (P = ``block_size``) sees, causally, its own block, the
``local_blocks`` before it and the ``top_k_blocks`` older blocks whose mean key best
matches the query. The choice depends on the keys, so ``visible`` is only the causal bound
(the mask is built from the chosen blocks) and the cache keeps every key.

FLOPs: a query at t sees ``t mod P + 1`` keys of its own block, P keys of each of the
``min(local_blocks, i)`` blocks before it and P keys of each of its
``min(top_k_blocks, max(0, i - local_blocks))`` selected older blocks. Choosing them costs,
forward only (the hard top-k has no backward), ``2 * C`` per head for each of the
``max(0, i - local_blocks)`` candidate blocks (the query against the block's mean key),
plus one add per element of each complete block's keys for the mean (G heads). Activation
checkpointing recomputes the gathers in backward; like every recomputation that is
hardware work, not model FLOPs, and is not counted.

Legend: B batch, H query heads, G key/value heads, T query positions, S key positions,
C head dim.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from superlab.model.attention_kinds.base import AttentionKind, triangle
from superlab.model.attention_kinds.registry import register_kind

if TYPE_CHECKING:
    import torch

    from superlab.config.recipe import AttentionConfig, ModelConfig


def _sum_min(n: int, cap: int) -> int:
    """``sum(min(i, cap) for i in range(n))`` in closed form."""
    if n <= cap + 1:
        return n * (n - 1) // 2
    return triangle(cap) + (n - cap - 1) * cap


def sparse_counts(a: AttentionConfig, seq_len: int) -> tuple[int, int]:
    """(keys seen, candidate blocks scored) by queries 0..seq_len-1 together.

    ``full`` blocks of P queries, then ``rest`` queries in a partial block; block i's
    queries see min(local, i) local blocks and choose among max(0, i - local) older ones.
    """
    P, local, k = a.block_size, a.local_blocks, a.top_k_blocks
    full, rest = divmod(seq_len, P)
    older = max(0, full - local)  # full blocks with at least one candidate older block ...
    own = full * triangle(P) + triangle(rest)
    near = P * P * _sum_min(full, local) + rest * P * min(local, full)
    chosen = P * P * _sum_min(older, k) + rest * P * min(k, older)
    candidates = P * older * (older - 1) // 2 + rest * older  # ... their candidates 0..older-1
    return own + near + chosen, candidates


class Sparse(AttentionKind):
    """Block-sparse attention: local blocks plus the top-k older blocks per query."""

    name = "sparse"

    def visible(self, cfg: AttentionConfig, t: Any, s: Any) -> Any:
        return s <= t  # the causal bound; which blocks are seen depends on the keys

    def keys_seen(self, cfg: AttentionConfig, seq_len: int) -> int:
        return sparse_counts(cfg, seq_len)[0]

    def select_flops(self, model: ModelConfig, cfg: AttentionConfig, seq_len: int) -> float:
        C = model.head_dim
        pooled = model.kv_heads * C * (seq_len // cfg.block_size * cfg.block_size)  # block means
        scored = 2 * model.n_heads * C * sparse_counts(cfg, seq_len)[1]
        return (pooled + scored) / seq_len

    def attend(
        self,
        cfg: AttentionConfig,
        q_BHTC: torch.Tensor,
        k_BGTC: torch.Tensor,
        v_BGTC: torch.Tensor,
        doc_ids_BT: torch.Tensor | None,
    ) -> torch.Tensor:
        from superlab.model.attention_kinds import kernels

        P, top_k, local = cfg.block_size, cfg.top_k_blocks, cfg.local_blocks
        if q_BHTC.shape[2] <= kernels.MASKED_MAX_T:  # short: the chosen blocks as one mask
            idx_BHTK = kernels.select_blocks(q_BHTC, k_BGTC, P, top_k, local, doc_ids_BT)
            mask = kernels.sparse_mask(idx_BHTK, P, local, doc_ids_BT)
            return kernels.sdpa(q_BHTC, k_BGTC, v_BGTC, mask)
        return kernels.sparse_attention(q_BHTC, k_BGTC, v_BGTC, P, top_k, local, doc_ids_BT)

    def decode(
        self,
        cfg: AttentionConfig,
        q_BHTC: torch.Tensor,
        k_BGSC: torch.Tensor,
        v_BGSC: torch.Tensor,
        pos_BT: torch.Tensor,
        pos_BS: torch.Tensor,
    ) -> torch.Tensor:
        """The T newest queries against every cached key (the cache keeps them all).

        A query's output depends only on itself and the keys up to it (its block choice uses
        complete older blocks), so padding the earlier query rows with zeros and keeping the
        last T rows gives exactly the full forward's outputs. Rows of different lengths (or
        with padding) run one at a time on their own keys, positions 0..n-1.
        """
        import torch

        B, H, T, C = q_BHTC.shape
        S = k_BGSC.shape[2]
        if bool((pos_BS >= 0).all()) and bool((pos_BT >= 0).all()):
            q_BHSC = torch.cat([q_BHTC.new_zeros(B, H, S - T, C), q_BHTC], dim=2)
            return self.attend(cfg, q_BHSC, k_BGSC, v_BGSC, None)[:, :, S - T :]
        out_BHTC = torch.zeros_like(q_BHTC)
        for b in range(B):
            keys_S, queries_T = pos_BS[b] >= 0, pos_BT[b] >= 0
            n, t = int(keys_S.sum()), int(queries_T.sum())
            if t == 0:
                continue
            q_1HnC = q_BHTC.new_zeros(1, H, n, C)
            q_1HnC[:, :, n - t :] = q_BHTC[b : b + 1, :, queries_T]
            k_1GnC, v_1GnC = k_BGSC[b : b + 1, :, keys_S], v_BGSC[b : b + 1, :, keys_S]
            y_1HnC = self.attend(cfg, q_1HnC, k_1GnC, v_1GnC, None)
            out_BHTC[b, :, queries_T] = y_1HnC[0, :, n - t :]
        return out_BHTC


register_kind(Sparse())
