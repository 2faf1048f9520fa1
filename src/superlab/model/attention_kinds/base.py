"""``AttentionKind``: everything that depends on which keys a query may see, in one object.

A kind owns five things, and nothing else in superlab tests a kind's name:

- ``visible(cfg, t, s)``: the rule, may the query at position t see the key at s (always
  ``s <= t``: every kind is causal). Tensors broadcast (a ``(T, 1)`` and a ``(1, S)`` give
  a ``(T, S)`` mask), plain ints give a bool; masks, the decode path and the tests use it.
- ``first_needed(cfg, next_B)``: the earliest key position a query at ``next_B`` or later
  may still see; the KV cache (``superlab.model.cache``) drops every older key. ``bound``
  is the most slots a layer's cache then holds (None: it grows with the sequence), and
  ``bounded`` says whether there is one (``Transformer.bounded_context``).
- ``keys_seen(cfg, seq_len)``: keys seen by queries 0..seq_len-1 together, the context
  term of the attention FLOPs (``superlab.model.counts``), plus ``select_flops`` for any
  work a kind does to choose its keys.
- ``attend(cfg, q, k, v, doc_ids)``: the training step (no cache): the kind's ``kernel``
  for this length, or the reference, an explicit T x T mask from ``visible`` and one SDPA
  call. ``decode`` is the cached step: queries at absolute positions against the cached
  keys, masked by ``visible``; a kind that ``chooses_keys`` (``visible`` is then only the
  causal bound) replays ``attend`` instead.
- ``segment(cfg)``: the size of fixed segments nothing crosses (a chunk), or None; smeared
  keys never carry a token across a segment start, and the probes eval scores by it.

``needs`` names the ``AttentionConfig`` fields the kind requires (``setting`` reads one);
registering a kind declares it to ``superlab.config.attention_kinds`` so recipes may name it.

This module and the kind modules import no torch at module level (``model.counts`` and
``plan`` use ``keys_seen`` without torch); the kernels are imported where they run.

Legend: B batch, H query heads, G key/value heads, T query positions, S key positions,
C head dim.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch

    from superlab.config.recipe import AttentionConfig, ModelConfig

    # A training kernel with the kind's settings bound: ``(q_BHTC, k_BGTC, v_BGTC) -> y_BHTC``.
    Kernel = Callable[..., torch.Tensor]


class AttentionKind(ABC):
    """One attention kind's visibility, cache bound, FLOP count and kernels."""

    name: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ()
    # True when which keys a query sees depends on the keys: ``visible`` is only the bound.
    chooses_keys: ClassVar[bool] = False

    def setting(self, cfg: AttentionConfig, field: str) -> int:
        """``cfg.<field>``, one of ``needs``: set whenever this kind is (config checks it)."""
        value = getattr(cfg, field)
        assert value is not None, f"kind {self.name!r} needs {field!r} (checked by config)"
        return value

    @abstractmethod
    def visible(self, cfg: AttentionConfig, t: Any, s: Any) -> Any:
        """May the query at position ``t`` see the key at ``s`` (tensors broadcast)."""

    @abstractmethod
    def keys_seen(self, cfg: AttentionConfig, seq_len: int) -> int:
        """Keys seen by queries 0..seq_len-1 together (closed form: plan asks at long lengths)."""

    def first_needed(self, cfg: AttentionConfig, next_B: torch.Tensor) -> torch.Tensor:
        """The earliest key position a query at ``next_B`` (or later) may see, per row."""
        return next_B * 0

    def bound(self, cfg: AttentionConfig) -> int | None:
        """Most key slots a layer's cache keeps between steps; None = every key so far."""
        return None

    def bounded(self, cfg: AttentionConfig) -> bool:
        """True when the cache stays bounded however long the sequence grows."""
        return self.bound(cfg) is not None

    def segment(self, cfg: AttentionConfig) -> int | None:
        """Size of the fixed segments no query sees across (chunks); None = no such edges."""
        return None

    def select_flops(self, model: ModelConfig, cfg: AttentionConfig, seq_len: int) -> float:
        """Per token and layer: FLOPs spent choosing keys (none for a fixed rule)."""
        return 0.0

    def kernel(
        self, cfg: AttentionConfig, T: int, doc_ids_BT: torch.Tensor | None
    ) -> Kernel | None:
        """A faster training kernel for T positions, ``(q, k, v) -> y`` with the kind's settings
        and ``doc_ids_BT`` bound; None: the reference (a mask from ``visible``, one SDPA call)."""
        return None

    def attend(
        self,
        cfg: AttentionConfig,
        q_BHTC: torch.Tensor,
        k_BGTC: torch.Tensor,
        v_BGTC: torch.Tensor,
        doc_ids_BT: torch.Tensor | None,
    ) -> torch.Tensor:
        """Training: each query's weighted sum of the values it may see (reference: a mask)."""
        from superlab.model.attention_kinds import kernels

        T = q_BHTC.shape[2]
        kernel = self.kernel(cfg, T, doc_ids_BT)
        if kernel is not None:
            return kernel(q_BHTC, k_BGTC, v_BGTC)
        mask = kernels.attention_mask(cfg, T, doc_ids_BT, q_BHTC.device)
        return kernels.sdpa(q_BHTC, k_BGTC, v_BGTC, mask)

    def decode(
        self,
        cfg: AttentionConfig,
        q_BHTC: torch.Tensor,
        k_BGSC: torch.Tensor,
        v_BGSC: torch.Tensor,
        pos_BT: torch.Tensor,
        pos_BS: torch.Tensor,
    ) -> torch.Tensor:
        """A cached step: queries at ``pos_BT`` (-1 padding) against keys at ``pos_BS``.

        A kind that ``chooses_keys`` replays ``attend`` on every cached key. A query's output
        depends only on itself and the keys up to it (a causal kernel), so padding the earlier
        query rows with zeros and keeping the last T rows gives exactly the full forward's
        outputs. Rows of different lengths (or with padding) run one at a time on their own
        keys, positions 0..n-1.
        """
        from superlab.model.attention_kinds import kernels

        if not self.chooses_keys:
            mask_BTS = self.visible(cfg, pos_BT[:, :, None], pos_BS[:, None, :])
            mask_BTS = mask_BTS & (pos_BS >= 0)[:, None, :]  # empty slots are never attended
            # A padding query sees every slot: its output is never used, only kept finite.
            mask_B1TS = (mask_BTS | (pos_BT < 0)[:, :, None])[:, None]
            return kernels.sdpa(q_BHTC, k_BGSC, v_BGSC, mask_B1TS)
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


def triangle(n: int) -> int:
    """``1 + 2 + ... + n``: keys seen by n queries of causal attention together."""
    return n * (n + 1) // 2
