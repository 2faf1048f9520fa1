"""``chunked`` (chunk c; Llama 4's local layers): ``t // c == s // c``.

A query sees only the earlier tokens of its own fixed chunk, so nothing crosses a chunk
boundary: the cache keeps the current chunk's keys (empty at each boundary) and a query
sees ``t mod c + 1`` keys.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from superlab.model.attention_kinds.base import AttentionKind, triangle
from superlab.model.attention_kinds.registry import register_kind

if TYPE_CHECKING:
    import torch

    from superlab.config.recipe import AttentionConfig
    from superlab.model.attention_kinds.base import Kernel


def _chunk(cfg: AttentionConfig) -> int:
    assert cfg.chunk_size is not None, "kind 'chunked' needs 'chunk_size' (checked by config)"
    return cfg.chunk_size


class Chunked(AttentionKind):
    """Causal attention inside fixed chunks; always the block-wise kernel in training."""

    name = "chunked"
    needs = ("chunk_size",)

    def visible(self, cfg: AttentionConfig, t: Any, s: Any) -> Any:
        c = _chunk(cfg)
        return (s <= t) & (t // c == s // c)

    def keys_seen(self, cfg: AttentionConfig, seq_len: int) -> int:
        full, rest = divmod(seq_len, _chunk(cfg))  # sum of t mod c + 1
        return full * triangle(_chunk(cfg)) + triangle(rest)

    def first_needed(self, cfg: AttentionConfig, next_B: torch.Tensor) -> torch.Tensor:
        c = _chunk(cfg)
        return next_B // c * c

    def bound(self, cfg: AttentionConfig) -> int | None:
        return _chunk(cfg)

    def segment(self, cfg: AttentionConfig) -> int | None:
        return _chunk(cfg)

    def kernel(
        self, cfg: AttentionConfig, T: int, doc_ids_BT: torch.Tensor | None
    ) -> Kernel | None:
        from superlab.model.attention_kinds import kernels

        return partial(kernels.chunked_attention, chunk=_chunk(cfg), doc_ids_BT=doc_ids_BT)


register_kind(Chunked())
