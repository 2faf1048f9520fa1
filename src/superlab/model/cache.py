"""Key/value cache for incremental decoding: each layer keeps only the keys a later query can see.

Every row of the batch is its own sequence with its own length: ``KVCache.pos_B`` is the
next position of each row, and every stored key slot carries the absolute position of its
key (``pos_BS``, -1 for an empty slot: padding, never attended). A query at position t
sees key s by the attention kind's rule (``AttentionKind.visible``). Visibility only
shrinks as t grows, so after a step a layer keeps, per row, the keys from the kind's
``first_needed`` position for the row's next query on (``superlab.model.attention_kinds``):

- ``full`` (and ``sparse``, which may select any earlier block): every key.
- ``sliding`` (window w): the last w - 1 keys, so never more than w.
- ``chunked`` (chunk c): the keys of the current chunk; empty at each chunk boundary.

Layout: each row's keys are contiguous and right-aligned (empty slots first, then the
row's keys in position order), so all rows append their next key in the same column and
the empty slots that every row has at the front are cut off. A step whose rows add
different numbers of tokens (padding, marked by ``valid_BT`` in ``Transformer.forward``)
is re-packed to that layout. Continuous batching changes the rows between steps:
``extend`` appends the rows of another cache (new sequences, prefilled on their own) and
``select`` keeps a subset (finished sequences leave).

Keys are stored already rotated by RoPE, with the G key/value heads of grouped-query
attention (not repeated to H).

Legend: B batch, G key/value heads, T new positions, S cached (+ new) slots, C head dim.
"""

from __future__ import annotations

import torch

from superlab.config.recipe import AttentionConfig, ModelConfig
from superlab.model.attention_kinds import get_kind

# Per-row vectors of each row's last token, carried between decode steps.
LAST_SLOTS = ("last_BD", "last_k_BD")


class LayerKV:
    """One attention layer's cached keys and values and the position of each slot."""

    def __init__(self, cfg: AttentionConfig) -> None:
        self.cfg = cfg
        self.kind = get_kind(cfg.kind)
        self.k_BGSC: torch.Tensor | None = None
        self.v_BGSC: torch.Tensor | None = None
        self.pos_BS: torch.Tensor | None = None  # absolute position per slot, -1 = empty
        # model.token_shift: each row's last token's attention input (superlab.model.token_shift)
        self.last_BD: torch.Tensor | None = None
        # model.smear_keys: each row's last token's key before smearing and RoPE (G * C)
        self.last_k_BD: torch.Tensor | None = None

    def __len__(self) -> int:
        """Slots per row (the longest row's kept keys, plus the others' padding)."""
        return 0 if self.k_BGSC is None else self.k_BGSC.shape[2]

    def update(
        self, k_BGTC: torch.Tensor, v_BGTC: torch.Tensor, pos_BT: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Append keys/values at ``pos_BT`` (-1: padding); return cached + new ones and positions.

        The returned tensors are what this step's queries attend to; what is kept afterwards
        is only what each row's next query may see.
        """
        if self.k_BGSC is None or self.v_BGSC is None or self.pos_BS is None:
            k_BGSC, v_BGSC, pos_BS = k_BGTC, v_BGTC, pos_BT
        else:
            if self.k_BGSC.shape[0] != k_BGTC.shape[0]:
                raise ValueError(
                    f"cache holds {self.k_BGSC.shape[0]} rows, the step has {k_BGTC.shape[0]}"
                )
            k_BGSC = torch.cat([self.k_BGSC, k_BGTC], dim=2)
            v_BGSC = torch.cat([self.v_BGSC, v_BGTC], dim=2)
            pos_BS = torch.cat([self.pos_BS, pos_BT], dim=1)
        self._keep(k_BGSC, v_BGSC, pos_BS)
        return k_BGSC, v_BGSC, pos_BS

    def _keep(self, k_BGSC: torch.Tensor, v_BGSC: torch.Tensor, pos_BS: torch.Tensor) -> None:
        """Store the slots each row's next query may see, right-aligned, empty columns cut."""
        if pos_BS.shape[1] == 0:
            next_B = pos_BS.new_zeros(pos_BS.shape[0])
        else:
            next_B = pos_BS.max(dim=1).values + 1
        first_B = self.kind.first_needed(self.cfg, next_B)
        keep_BS = pos_BS >= first_B[:, None].clamp(min=0)
        if pos_BS.shape[1] > 1 and bool((keep_BS[:, :-1] & ~keep_BS[:, 1:]).any()):
            # A kept slot before an empty one: re-pack each row (stable: positions stay in
            # order), empty slots first.
            order_BS = torch.sort(keep_BS.to(torch.int8), dim=1, stable=True).indices
            keep_BS = keep_BS.gather(1, order_BS)
            pos_BS = pos_BS.gather(1, order_BS)
            _, G, _, C = k_BGSC.shape
            idx_BGSC = order_BS[:, None, :, None].expand(-1, G, -1, C)
            k_BGSC, v_BGSC = k_BGSC.gather(2, idx_BGSC), v_BGSC.gather(2, idx_BGSC)
        cut = int((~keep_BS).sum(dim=1).min()) if keep_BS.shape[0] else pos_BS.shape[1]
        self.k_BGSC, self.v_BGSC = k_BGSC[:, :, cut:], v_BGSC[:, :, cut:]
        self.pos_BS = torch.where(keep_BS, pos_BS, -1)[:, cut:]

    def select(self, rows_B: torch.Tensor) -> None:
        """Keep the rows ``rows_B`` (indices), then cut the columns empty in all of them."""
        for slot in LAST_SLOTS:
            kept = getattr(self, slot)
            if kept is not None:
                setattr(self, slot, kept[rows_B])
        if self.k_BGSC is None or self.v_BGSC is None or self.pos_BS is None:
            return
        k, v, pos = self.k_BGSC[rows_B], self.v_BGSC[rows_B], self.pos_BS[rows_B]
        cut = int((pos < 0).sum(dim=1).min()) if pos.shape[0] else pos.shape[1]
        self.k_BGSC, self.v_BGSC, self.pos_BS = k[:, :, cut:], v[:, :, cut:], pos[:, cut:]

    def extend(self, other: LayerKV, rows_self: int, rows_other: int) -> None:
        """Append ``other``'s rows below ours, padding the shorter side on the left."""
        for slot in LAST_SLOTS:
            ours, its = getattr(self, slot), getattr(other, slot)
            like = ours if ours is not None else its
            if like is None:
                continue
            mine_BD = ours if ours is not None else like.new_zeros(rows_self, like.shape[1])
            theirs_BD = its if its is not None else like.new_zeros(rows_other, like.shape[1])
            setattr(self, slot, torch.cat([mine_BD, theirs_BD]))
        mine = _tensors(self, rows_self, other)
        theirs = _tensors(other, rows_other, self)
        if mine is None or theirs is None:
            return  # neither side has seen a key yet
        S = max(mine[0].shape[2], theirs[0].shape[2])
        padded = [_left_pad(t, S) for t in (*mine, *theirs)]
        self.k_BGSC = torch.cat([padded[0], padded[3]], dim=0)
        self.v_BGSC = torch.cat([padded[1], padded[4]], dim=0)
        self.pos_BS = torch.cat([padded[2], padded[5]], dim=0)


def _tensors(
    kv: LayerKV, rows: int, like: LayerKV
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """``kv``'s tensors, or empty ones of ``rows`` rows shaped like ``like``'s (None: neither)."""
    if kv.k_BGSC is not None and kv.v_BGSC is not None and kv.pos_BS is not None:
        return kv.k_BGSC, kv.v_BGSC, kv.pos_BS
    if like.k_BGSC is None or like.pos_BS is None:
        return None
    _, G, _, C = like.k_BGSC.shape
    k = like.k_BGSC.new_zeros(rows, G, 0, C)
    return k, k.clone(), like.pos_BS.new_zeros(rows, 0)


def _left_pad(t: torch.Tensor, S: int) -> torch.Tensor:
    """Pad the slot dim (2 for keys/values, 1 for positions) on the left up to S."""
    dim = 2 if t.dim() == 4 else 1
    missing = S - t.shape[dim]
    if missing == 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    fill = t.new_full(shape, -1) if dim == 1 else t.new_zeros(shape)
    return torch.cat([fill, t], dim=dim)


class KVCache:
    """Per-layer caches plus ``pos_B``, the number of positions decoded so far in each row.

    ``pos_B`` is None until the first forward sets the batch size (or ``batch`` is given).
    """

    def __init__(self, cfg: ModelConfig, batch: int | None = None) -> None:
        self.layers = [LayerKV(cfg.attention_for(i)) for i in range(cfg.n_layers)]
        self.pos_B: torch.Tensor | None = None if batch is None else torch.zeros(batch).long()

    def __len__(self) -> int:
        """Slots held by the largest layer (at most its kind's ``bound``, when it has one)."""
        return max((len(layer) for layer in self.layers), default=0)

    @property
    def batch(self) -> int:
        """Rows (sequences) in the cache; 0 before the first forward."""
        return 0 if self.pos_B is None else self.pos_B.shape[0]

    @property
    def pos(self) -> int:
        """The common position of every row; a ValueError when rows differ."""
        if self.pos_B is None or self.pos_B.numel() == 0:
            return 0
        lo, hi = int(self.pos_B.min()), int(self.pos_B.max())
        if lo != hi:
            raise ValueError(f"rows are at different positions ({lo}..{hi}); read pos_B")
        return lo

    def positions(self, valid_BT: torch.Tensor) -> torch.Tensor:
        """Absolute positions of a step's tokens (-1 where ``valid_BT`` is False)."""
        B = valid_BT.shape[0]
        if self.pos_B is None:
            self.pos_B = torch.zeros(B, dtype=torch.long, device=valid_BT.device)
        if self.pos_B.shape[0] != B:
            raise ValueError(f"cache holds {self.pos_B.shape[0]} rows, the step has {B}")
        self.pos_B = self.pos_B.to(valid_BT.device)
        pos_BT = self.pos_B[:, None] + valid_BT.long().cumsum(dim=1) - 1
        return torch.where(valid_BT, pos_BT, -1)

    def advance(self, valid_BT: torch.Tensor) -> None:
        """Move each row past its valid tokens of this step."""
        assert self.pos_B is not None
        self.pos_B = self.pos_B + valid_BT.long().sum(dim=1)

    def select(self, rows: list[int]) -> None:
        """Keep only ``rows`` (in that order): finished sequences leave the batch."""
        if self.pos_B is None:
            return
        rows_B = torch.tensor(rows, dtype=torch.long, device=self.pos_B.device)
        for layer in self.layers:
            layer.select(rows_B)
        self.pos_B = self.pos_B[rows_B]

    def extend(self, other: KVCache) -> None:
        """Append the rows of ``other`` (same model) after ours: new sequences join."""
        if other.pos_B is None:
            return
        for mine, theirs in zip(self.layers, other.layers, strict=True):
            mine.extend(theirs, self.batch, other.batch)
        self.pos_B = other.pos_B if self.pos_B is None else torch.cat([self.pos_B, other.pos_B])
