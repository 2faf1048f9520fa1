"""``full``: every earlier token, ``s <= t``; the cache keeps every key."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from superlab.model.attention_kinds.base import AttentionKind, triangle
from superlab.model.attention_kinds.registry import register_kind

if TYPE_CHECKING:
    import torch

    from superlab.config.recipe import AttentionConfig
    from superlab.model.attention_kinds.base import Kernel


class Full(AttentionKind):
    """Causal attention over the whole prefix (SDPA's ``is_causal`` path in training)."""

    name = "full"

    def visible(self, cfg: AttentionConfig, t: Any, s: Any) -> Any:
        return s <= t

    def keys_seen(self, cfg: AttentionConfig, seq_len: int) -> int:
        return triangle(seq_len)  # (T + 1) / 2 per query: PaLM's "halved" causal term

    def kernel(
        self, cfg: AttentionConfig, T: int, doc_ids_BT: torch.Tensor | None
    ) -> Kernel | None:
        if doc_ids_BT is not None:  # packed documents: the explicit mask
            return None
        from superlab.model.attention_kinds import kernels

        return partial(kernels.sdpa, mask=None)  # None: the is_causal fast path


register_kind(Full())
