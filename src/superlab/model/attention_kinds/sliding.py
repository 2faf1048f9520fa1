"""``sliding`` (window w; Beltagy et al. 2020, Longformer; Mistral): ``t - s < w``.

A query sees itself and the w - 1 previous tokens, so the cache keeps the last w - 1 keys
and a query sees ``min(t + 1, w)`` keys.
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


class Sliding(AttentionKind):
    """A window of the w latest tokens; block-wise kernel past ``MASKED_MAX_T``."""

    name = "sliding"
    needs = ("window",)

    def visible(self, cfg: AttentionConfig, t: Any, s: Any) -> Any:
        return (s <= t) & (t - s < self.setting(cfg, "window"))

    def keys_seen(self, cfg: AttentionConfig, seq_len: int) -> int:
        w = min(self.setting(cfg, "window"), seq_len)  # sum of min(t + 1, w)
        return triangle(w) + (seq_len - w) * w

    def first_needed(self, cfg: AttentionConfig, next_B: torch.Tensor) -> torch.Tensor:
        return next_B - self.setting(cfg, "window") + 1

    def bound(self, cfg: AttentionConfig) -> int | None:
        return self.setting(cfg, "window")

    def kernel(
        self, cfg: AttentionConfig, T: int, doc_ids_BT: torch.Tensor | None
    ) -> Kernel | None:
        from superlab.model.attention_kinds import kernels

        if T <= kernels.MASKED_MAX_T:  # short: the mask, one SDPA call
            return None
        return partial(
            kernels.sliding_attention, window=self.setting(cfg, "window"), doc_ids_BT=doc_ids_BT
        )


register_kind(Sliding())
