"""Where one forward's tokens sit: what every layer of that forward shares.

``Transformer.forward`` builds one ``Positions`` per call and hands it, with each layer's
own cache (``kv``), to every ``Block`` and its ``Attention``: ``block(x_BTD, positions, kv)``.
In training the rotary tables are (T, C), one row per position 0..T-1; with a KV cache
each row sits at its own positions and the tables are (B, 1, T, C), broadcast over heads.

Legend: B batch, T positions, C head dim.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Positions:
    """The rotary tables, documents and absolute positions of one forward's tokens."""

    cos_TC: torch.Tensor
    sin_TC: torch.Tensor
    doc_ids_BT: torch.Tensor | None = None  # packed documents: None unless packed
    pos_BT: torch.Tensor | None = None  # cached decoding (-1: padding): None without a cache
