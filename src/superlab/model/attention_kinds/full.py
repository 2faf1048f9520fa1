"""``full``: every earlier token, ``s <= t``; the cache keeps every key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from superlab.model.attention_kinds.base import AttentionKind, triangle
from superlab.model.attention_kinds.registry import register_kind

if TYPE_CHECKING:
    import torch

    from superlab.config.recipe import AttentionConfig


class Full(AttentionKind):
    """Causal attention over the whole prefix (SDPA's ``is_causal`` path in training)."""

    name = "full"

    def visible(self, cfg: AttentionConfig, t: Any, s: Any) -> Any:
        return s <= t

    def keys_seen(self, cfg: AttentionConfig, seq_len: int) -> int:
        return triangle(seq_len)  # (T + 1) / 2 per query: PaLM's "halved" causal term

    def attend(
        self,
        cfg: AttentionConfig,
        q_BHTC: torch.Tensor,
        k_BGTC: torch.Tensor,
        v_BGTC: torch.Tensor,
        doc_ids_BT: torch.Tensor | None,
    ) -> torch.Tensor:
        if doc_ids_BT is not None:  # packed documents: the explicit mask
            return super().attend(cfg, q_BHTC, k_BGTC, v_BGTC, doc_ids_BT)
        from superlab.model.attention_kinds import kernels

        return kernels.sdpa(q_BHTC, k_BGTC, v_BGTC, None)  # None: the is_causal fast path


register_kind(Full())
