"""Attention kinds, one module each, registered by name (``get_kind(cfg.kind)``).

Shape of a kind (``base.AttentionKind``): ``visible`` (the rule), ``first_needed`` /
``bound`` (the KV cache), ``keys_seen`` / ``select_flops`` (FLOPs), ``kernel`` (a faster
training kernel, run by ``attend``; ``decode`` is the cached step, replaying ``attend`` for
a kind that ``chooses_keys``), ``segment`` (chunk edges), ``needs`` (required config fields).
Shipped: ``full``, ``sliding``, ``chunked``, ``sparse``. A new kind is one module with an
``AttentionKind`` subclass and ``register_kind(Kind())``; a shipped one is also imported
below and named in ``superlab.config.attention_kinds.KIND_NEEDS`` (so a recipe naming it
validates without torch). Worked example: docs/architecture.md, "Adding an attention kind".

Importing this package imports no torch.
"""

from __future__ import annotations

from superlab.model.attention_kinds import chunked, full, sliding, sparse  # noqa: F401  registers
from superlab.model.attention_kinds.base import AttentionKind
from superlab.model.attention_kinds.registry import KINDS, get_kind, register_kind, unregister_kind

__all__ = ["KINDS", "AttentionKind", "get_kind", "register_kind", "unregister_kind"]
