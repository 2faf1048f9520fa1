"""Key/value cache for incremental decoding: each layer keeps only the keys a later query can see.

A query at position t sees key s by the attention kind's rule (``attention.visible``).
Visibility only shrinks as t grows, so after a step at positions ``start..next-1`` a layer
keeps exactly the keys that the next query, at ``next``, may see:

- ``full`` (and ``sparse``, which may select any earlier block): every key.
- ``sliding`` (window w): the last w - 1 keys, so never more than w.
- ``chunked`` (chunk c): the keys of the current chunk; empty at each chunk boundary.

Stored keys are contiguous positions ``first..first+S-1``, already rotated by RoPE, with
the G key/value heads of grouped-query attention (not repeated to H). All sequences of
a batch share one position (batched decode of equal-length prompts).

Legend: B batch, G key/value heads, T new positions, S cached (+ new) positions, C head dim.
"""

from __future__ import annotations

import torch

from superlab.config.recipe import AttentionConfig, ModelConfig


class LayerKV:
    """One attention layer's cached keys and values, and the position of the first."""

    def __init__(self, cfg: AttentionConfig) -> None:
        self.cfg = cfg
        self.k_BGSC: torch.Tensor | None = None
        self.v_BGSC: torch.Tensor | None = None
        self.first = 0  # absolute position of k_BGSC[:, :, 0]

    def __len__(self) -> int:
        return 0 if self.k_BGSC is None else self.k_BGSC.shape[2]

    def update(
        self, k_BGTC: torch.Tensor, v_BGTC: torch.Tensor, start: int
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Append keys/values at ``start..``; return cached + new ones and the first's position."""
        if self.k_BGSC is None or self.v_BGSC is None:
            self.first = start
            k_BGSC, v_BGSC = k_BGTC, v_BGTC
        else:
            if self.first + len(self) != start:
                raise ValueError(
                    f"cache holds positions {self.first}..{self.first + len(self) - 1}; "
                    f"new keys must start at {self.first + len(self)}, not {start}"
                )
            k_BGSC = torch.cat([self.k_BGSC, k_BGTC], dim=2)
            v_BGSC = torch.cat([self.v_BGSC, v_BGTC], dim=2)
        first = self.first
        drop = _first_needed(self.cfg, start + k_BGTC.shape[2]) - first
        drop = min(max(drop, 0), k_BGSC.shape[2])
        self.k_BGSC, self.v_BGSC = k_BGSC[:, :, drop:], v_BGSC[:, :, drop:]
        self.first = first + drop
        return k_BGSC, v_BGSC, first


def _first_needed(cfg: AttentionConfig, next_pos: int) -> int:
    """The earliest key position that a query at ``next_pos`` (or later) may see."""
    if cfg.kind == "sliding":
        assert cfg.window is not None
        return next_pos - cfg.window + 1
    if cfg.kind == "chunked":
        assert cfg.chunk_size is not None
        return next_pos // cfg.chunk_size * cfg.chunk_size
    return 0


class KVCache:
    """Per-layer caches plus ``pos``, the number of positions decoded so far."""

    def __init__(self, cfg: ModelConfig) -> None:
        self.layers = [LayerKV(cfg.attention) for _ in range(cfg.n_layers)]
        self.pos = 0

    def __len__(self) -> int:
        """Keys held by the largest layer (bounded by window / chunk for local kinds)."""
        return max((len(layer) for layer in self.layers), default=0)
