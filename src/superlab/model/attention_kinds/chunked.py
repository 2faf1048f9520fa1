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


class Chunked(AttentionKind):
    """Causal attention inside fixed chunks; always the block-wise kernel in training."""

    name = "chunked"
    needs = ("chunk_size",)

    def visible(self, cfg: AttentionConfig, t: Any, s: Any) -> Any:
        c = self.setting(cfg, "chunk_size")
        return (s <= t) & (t // c == s // c)

    def keys_seen(self, cfg: AttentionConfig, seq_len: int) -> int:
        c = self.setting(cfg, "chunk_size")
        full, rest = divmod(seq_len, c)  # sum of t mod c + 1
        return full * triangle(c) + triangle(rest)

    def first_needed(self, cfg: AttentionConfig, next_B: torch.Tensor) -> torch.Tensor:
        c = self.setting(cfg, "chunk_size")
        return next_B // c * c

    def bound(self, cfg: AttentionConfig) -> int | None:
        return self.setting(cfg, "chunk_size")

    def segment(self, cfg: AttentionConfig) -> int | None:
        return self.setting(cfg, "chunk_size")

    def kernel(
        self, cfg: AttentionConfig, T: int, doc_ids_BT: torch.Tensor | None
    ) -> Kernel | None:
        from superlab.model.attention_kinds import kernels

        return partial(
            kernels.chunked_attention, chunk=self.setting(cfg, "chunk_size"), doc_ids_BT=doc_ids_BT
        )


register_kind(Chunked())
