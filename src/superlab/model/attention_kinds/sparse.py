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

from functools import partial
from typing import TYPE_CHECKING, Any

from superlab.model.attention_kinds.base import AttentionKind, triangle
from superlab.model.attention_kinds.registry import register_kind

if TYPE_CHECKING:
    import torch

    from superlab.config.recipe import AttentionConfig, ModelConfig
    from superlab.model.attention_kinds.base import Kernel


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
    chooses_keys = True

    def visible(self, cfg: AttentionConfig, t: Any, s: Any) -> Any:
        return s <= t  # the causal bound; which blocks are seen depends on the keys

    def keys_seen(self, cfg: AttentionConfig, seq_len: int) -> int:
        return sparse_counts(cfg, seq_len)[0]

    def select_flops(self, model: ModelConfig, cfg: AttentionConfig, seq_len: int) -> float:
        C = model.head_dim
        pooled = model.kv_heads * C * (seq_len // cfg.block_size * cfg.block_size)  # block means
        scored = 2 * model.n_heads * C * sparse_counts(cfg, seq_len)[1]
        return (pooled + scored) / seq_len

    def kernel(
        self, cfg: AttentionConfig, T: int, doc_ids_BT: torch.Tensor | None
    ) -> Kernel | None:
        from superlab.model.attention_kinds import kernels

        return partial(
            kernels.sparse_attention,
            block_size=cfg.block_size,
            top_k_blocks=cfg.top_k_blocks,
            local_blocks=cfg.local_blocks,
            doc_ids_BT=doc_ids_BT,
            masked=T <= kernels.MASKED_MAX_T,  # short: the chosen blocks as one mask
        )


register_kind(Sparse())
