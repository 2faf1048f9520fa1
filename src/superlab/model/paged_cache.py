"""Paged KV cache: keys and values in fixed-size blocks, one block table per sequence.

Each attention layer stores its keys and values in a pool of blocks ``(N, P, G, C)``
(P = ``block_size`` positions per block; a block is one contiguous piece, so gathering a
row's blocks is one ``index_select`` and a view); a sequence owns a block table per group of
layers (layers with the same attention config share tables: they keep the same keys),
listing the block of each of its logical blocks ``j`` (positions ``j*P .. j*P + P - 1``).
Sequences join and leave without touching anyone else's blocks: joining takes blocks
from the free list (``superlab.model.block_pool``), leaving returns them.

The kinds keep what they keep in the contiguous cache (``superlab.model.cache``): after a
step, a group drops (releases) every block that lies wholly before its kind's
``first_needed`` position, so ``sliding`` and ``chunked`` layers hold a bounded number
of blocks; ``full`` and ``sparse`` (which ``chooses_keys`` over every earlier block) keep
all. Keys are stored after RoPE, as in the contiguous cache.

A forward runs over the rows ``bind`` chose (sequences, in row order). It has the
contiguous cache's interface, so ``Transformer.forward`` and ``Attention`` use it
unchanged: ``positions(valid_BT)`` gives each new token's absolute position and plans
the step once per group (where each valid token is written; which blocks each row
reads); each layer's ``update(k, v, pos)`` writes the new keys into their blocks and
returns the row's kept blocks gathered in position order, ``(B, G, K*P, C)``, with
``pos_BS`` = -1 for slots past a row's end or in padding blocks, never attended (slots
past every row's end are cut off). The
gather is a copy per step, as the contiguous cache's concatenation was. ``last_BD`` and
``last_k_BD`` (token shift, smeared keys) are per-sequence rows of a per-layer store,
read and written through the bound rows.

Prefix caching: a full block may be registered under a hash (``set_hashes`` gives a
sequence's block hashes; ``advance`` registers each block once it is full), stays cached
when its last holder leaves, and a new sequence whose first blocks' hashes are found
``attach``es to them instead of computing them. Models whose layers carry the previous
token's vectors (``last_BD``) are not prefix-cached (the engine turns it off): the
vectors of a cached block's last token are not stored.

Legend: B bound rows, T new positions, G key/value heads, P block size, C head dim,
K blocks read per row, S = K * P key slots, N blocks in the pool, D model dim.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import torch

from superlab.config.recipe import AttentionConfig, ModelConfig
from superlab.model.attention_kinds import get_kind
from superlab.model.block_pool import BlockPool
from superlab.model.cache import LAST_SLOTS


@dataclass
class _Plan:
    """One forward's indices for one group (shared by all its layers)."""

    valid_BT: torch.Tensor
    any_write: bool
    blk_N: torch.Tensor  # block of each valid token (row-major over valid_BT)
    off_N: torch.Tensor  # its offset in the block
    read_BK: torch.Tensor  # blocks each row reads, padded with block 0
    pos_BS: torch.Tensor  # position of each read slot, -1: not a key


@dataclass
class _SeqState:
    """One sequence's tables (per group), stored length and its row in the vector stores."""

    row: int
    tables: list[list[int]]
    firsts: list[int]  # logical index of tables[g][0] (blocks before it were dropped)
    pos: int = 0  # positions stored
    hashes: list[bytes] = field(default_factory=list)  # of its full blocks, by the caller
    registered: int = 0  # blocks offered for registration so far


class _Group:
    """Layers with one attention config: one block table per sequence, one block pool."""

    def __init__(self, cfg: AttentionConfig, num_blocks: int) -> None:
        self.cfg = cfg
        self.kind = get_kind(cfg.kind)
        self.bounded = self.kind.bounded(cfg)
        self.pool = BlockPool(num_blocks)
        self.plan: _Plan | None = None
        self.layers: list[PagedLayerKV] = []
        # Pools start uninitialised (no page is touched before it is used); a block is
        # zeroed when first handed out, so that slots never written stay finite (masked
        # slots still enter the weighted sum with weight 0).
        self.ready = [False] * num_blocks

    def allocate(self) -> int | None:
        """A block from the pool, zeroed in every layer the first time it is used."""
        block = self.pool.allocate()
        if block is not None and not self.ready[block]:
            for layer in self.layers:
                layer.k_NPGC[block] = 0
                layer.v_NPGC[block] = 0
            self.ready[block] = True
        return block


class _RowSlot:
    """A per-row vector carried between steps (``LAST_SLOTS``), read and written for the
    rows the cache has bound (``PagedLayerKV._get`` / ``_set``)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, layer: PagedLayerKV | None, owner: type | None = None) -> Any:
        return self if layer is None else layer._get(self.name)

    def __set__(self, layer: PagedLayerKV, value: torch.Tensor | None) -> None:
        layer._set(self.name, value)


class PagedLayerKV:
    """One layer's view of the paged cache, with ``LayerKV``'s interface."""

    def __init__(self, cache: PagedKVCache, group: _Group, k_NPGC: torch.Tensor) -> None:
        self.cache, self.group, self.cfg, self.kind = cache, group, group.cfg, group.kind
        self.k_NPGC, self.v_NPGC = k_NPGC, torch.empty_like(k_NPGC)
        k_NPGC[0] = 0  # block 0 pads the block tables of shorter rows: always finite
        self.v_NPGC[0] = 0
        group.layers.append(self)
        self._store: dict[str, torch.Tensor] = {}  # slot -> (rows, D)

    def update(
        self, k_BGTC: torch.Tensor, v_BGTC: torch.Tensor, pos_BT: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Write the valid new keys/values into their blocks; return each row's kept keys,
        values and their positions (-1: no key)."""
        plan = self.group.plan
        assert plan is not None, "PagedKVCache.positions plans a step before its layers run"
        if plan.any_write:
            valid_BT = plan.valid_BT
            k_NGC = k_BGTC.transpose(1, 2)[valid_BT].to(self.k_NPGC.dtype)
            v_NGC = v_BGTC.transpose(1, 2)[valid_BT].to(self.v_NPGC.dtype)
            self.k_NPGC[plan.blk_N, plan.off_N] = k_NGC
            self.v_NPGC[plan.blk_N, plan.off_N] = v_NGC
        B, K = plan.read_BK.shape
        _, P, G, C = self.k_NPGC.shape
        # One contiguous copy per block (index_select), viewed as (B, S, G, C) and seen as
        # (B, G, S, C) without another copy.
        at_X = plan.read_BK.reshape(-1)
        S = plan.pos_BS.shape[1]
        k_BGSC = self.k_NPGC.index_select(0, at_X).view(B, K * P, G, C)[:, :S].transpose(1, 2)
        v_BGSC = self.v_NPGC.index_select(0, at_X).view(B, K * P, G, C)[:, :S].transpose(1, 2)
        return k_BGSC.to(k_BGTC.dtype), v_BGSC.to(v_BGTC.dtype), plan.pos_BS

    def _get(self, slot: str) -> torch.Tensor | None:
        store = self._store.get(slot)
        if store is None:
            return None
        return self._grown(slot, store)[self.cache.rows_B]

    def _set(self, slot: str, value_BD: torch.Tensor | None) -> None:
        if value_BD is None:
            return
        store = self._store.get(slot)
        if store is None or store.shape[1] != value_BD.shape[1]:
            store = self._store[slot] = value_BD.new_zeros(0, value_BD.shape[1])
        self._grown(slot, store)[self.cache.rows_B] = value_BD.detach()

    def _grown(self, slot: str, store: torch.Tensor) -> torch.Tensor:
        """The store with a (zero) row for every row id the cache has handed out."""
        need = self.cache.row_capacity
        if store.shape[0] < need:
            grown = store.new_zeros(need, store.shape[1])
            grown[: store.shape[0]] = store
            store = self._store[slot] = grown
        return store

    def clear_row(self, row: int) -> None:
        """A new sequence in ``row``: no previous token."""
        for store in self._store.values():
            if row < store.shape[0]:
                store[row] = 0

    # model.token_shift: each bound row's last token's attention input.
    last_BD = _RowSlot()
    # model.smear_keys: each bound row's last token's key before smearing and RoPE.
    last_k_BD = _RowSlot()


class PagedKVCache:
    """Block pools per layer, block tables per sequence; forwards run on ``bind``'s rows."""

    def __init__(
        self,
        cfg: ModelConfig,
        num_blocks: int,
        block_size: int = 16,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if block_size < 1:
            raise ValueError(f"kv_block_size: {block_size}; must be at least 1")
        self.block_size, self.num_blocks = block_size, num_blocks
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        keys: dict[str, _Group] = {}
        self.groups: list[_Group] = []
        self.layers: list[PagedLayerKV] = []
        G, C = cfg.kv_heads, cfg.head_dim
        for i in range(cfg.n_layers):
            a = cfg.attention_for(i)
            key = a.model_dump_json()
            if key not in keys:
                keys[key] = _Group(a, num_blocks)
                self.groups.append(keys[key])
            k_NPGC = torch.empty(num_blocks, block_size, G, C, device=self.device, dtype=dtype)
            self.layers.append(PagedLayerKV(self, keys[key], k_NPGC))
        self.seqs: dict[Hashable, _SeqState] = {}
        self._free_rows: list[int] = []
        self.row_capacity = 0
        self.bound: list[_SeqState] = []
        self.rows_B = torch.zeros(0, dtype=torch.long, device=self.device)
        self.pos_B: torch.Tensor | None = None

    # -- sequences ------------------------------------------------------------------------

    def add(self, key: Hashable) -> None:
        """A new, empty sequence."""
        if key in self.seqs:
            raise ValueError(f"sequence {key!r} is already in the cache")
        if self._free_rows:
            row = self._free_rows.pop()
        else:
            row, self.row_capacity = self.row_capacity, self.row_capacity + 1
        for layer in self.layers:
            layer.clear_row(row)
        n = len(self.groups)
        self.seqs[key] = _SeqState(row, [[] for _ in range(n)], [0] * n)

    def remove(self, key: Hashable) -> None:
        """Release all of a sequence's blocks (tail first: evicted before its prefix)."""
        state = self.seqs.pop(key)
        for group, table in zip(self.groups, state.tables, strict=True):
            for block in reversed(table):
                group.pool.release(block)
        self._free_rows.append(state.row)

    def length(self, key: Hashable) -> int:
        """Positions stored for a sequence."""
        return self.seqs[key].pos

    def set_hashes(self, key: Hashable, hashes: list[bytes]) -> None:
        """The hashes of the sequence's full blocks so far (the list may grow later)."""
        self.seqs[key].hashes = hashes

    def blocks_for(self, key: Hashable, n: int) -> list[int]:
        """Blocks each group must still allocate for the sequence to hold ``n`` positions."""
        state = self.seqs[key]
        want = (n - 1) // self.block_size + 1 if n > 0 else 0
        return [
            max(0, want - first - len(table))
            for first, table in zip(state.firsts, state.tables, strict=True)
        ]

    def fits(self, need: list[int]) -> bool:
        """Every group has ``need[g]`` blocks available."""
        return all(g.pool.available >= n for g, n in zip(self.groups, need, strict=True))

    def reserve(self, key: Hashable, n: int) -> bool:
        """Allocate blocks so that the sequence can hold ``n`` positions; all or nothing."""
        need = self.blocks_for(key, n)
        if not self.fits(need):
            return False
        state = self.seqs[key]
        for group, table, k in zip(self.groups, state.tables, need, strict=True):
            for _ in range(k):
                block = group.allocate()
                assert block is not None
                table.append(block)
        return True

    # -- prefix cache ---------------------------------------------------------------------

    def lookup(self, hashes: list[bytes]) -> int:
        """How many leading blocks with these hashes are cached in every group."""
        n = len(hashes)
        for group in self.groups:
            for j in range(n):
                if group.pool.lookup(hashes[j]) is None:
                    n = j
                    break
        return n

    def attach(self, key: Hashable, hashes: list[bytes]) -> None:
        """Start an empty sequence on the cached blocks of ``hashes`` (all found by
        ``lookup``): it holds them, positions ``0 .. len(hashes) * P - 1``, without
        computing them."""
        state = self.seqs[key]
        if state.pos or any(state.tables):
            raise ValueError("attach needs an empty sequence")
        for group, table in zip(self.groups, state.tables, strict=True):
            for h in hashes:
                block = group.pool.lookup(h)
                if block is None:
                    raise ValueError("attach: a block is not cached (call lookup first)")
                group.pool.acquire(block)
                table.append(block)
        state.pos = len(hashes) * self.block_size
        state.registered = len(hashes)
        self._trim([state])

    # -- a forward ------------------------------------------------------------------------

    def bind(self, keys: list[Hashable]) -> None:
        """The sequences of the next forward, in row order."""
        self.bound = [self.seqs[k] for k in keys]
        self.rows_B = torch.tensor([s.row for s in self.bound], device=self.device)
        self.pos_B = torch.tensor([s.pos for s in self.bound], device=self.device)

    @property
    def batch(self) -> int:
        return len(self.bound)

    def positions(self, valid_BT: torch.Tensor) -> torch.Tensor:
        """Absolute positions of a step's tokens (-1 where ``valid_BT`` is False); plans
        every group's writes and reads. The blocks must be ``reserve``d."""
        B = valid_BT.shape[0]
        if self.pos_B is None or self.pos_B.shape[0] != B:
            raise ValueError(f"cache bound to {self.batch} rows, the step has {B}")
        valid_BT = valid_BT.to(self.device)
        pos_BT = self.pos_B[:, None] + valid_BT.long().cumsum(dim=1) - 1
        pos_BT = torch.where(valid_BT, pos_BT, -1)
        counts = valid_BT.sum(dim=1).tolist()
        ends = [s.pos + n for s, n in zip(self.bound, counts, strict=True)]
        P = self.block_size
        any_write = sum(counts) > 0
        rows_N = valid_BT.nonzero()[:, 0]
        pos_N = pos_BT[valid_BT]
        end_B = torch.tensor(ends, device=self.device)
        offs_P = torch.arange(P, device=self.device)
        for g, group in enumerate(self.groups):
            tables = [s.tables[g] for s in self.bound]
            K = max(1, max(len(t) for t in tables))
            for s, end in zip(self.bound, ends, strict=True):
                if (s.firsts[g] + len(s.tables[g])) * P < end:
                    raise ValueError("PagedKVCache: reserve blocks before the forward")
            tab_BK = torch.tensor([t + [0] * (K - len(t)) for t in tables], device=self.device)
            first_B = torch.tensor([s.firsts[g] for s in self.bound], device=self.device)
            len_B = torch.tensor([len(t) for t in tables], device=self.device)
            blk_N = tab_BK[rows_N, pos_N // P - first_B[rows_N]]
            logical_BK = first_B[:, None] + torch.arange(K, device=self.device)
            pos_BKP = logical_BK[:, :, None] * P + offs_P
            ok_BKP = (torch.arange(K, device=self.device) < len_B[:, None])[:, :, None] & (
                pos_BKP < end_B[:, None, None]
            )
            # Slots past every row's end (the tails of last blocks) are cut off.
            S = max(end - s.firsts[g] * P for s, end in zip(self.bound, ends, strict=True))
            pos_BS = torch.where(ok_BKP, pos_BKP, -1).reshape(B, K * P)[:, : max(S, 1)]
            group.plan = _Plan(valid_BT, any_write, blk_N, pos_N % P, tab_BK, pos_BS)
        return pos_BT

    def advance(self, valid_BT: torch.Tensor) -> None:
        """After the forward: each row is past its valid tokens; full blocks with a hash are
        registered for the prefix cache; blocks no later query sees are released."""
        counts = valid_BT.sum(dim=1).tolist()
        for s, n in zip(self.bound, counts, strict=True):
            s.pos += n
            self._register(s)
        self._trim(self.bound)
        self.pos_B = torch.tensor([s.pos for s in self.bound], device=self.device)
        for group in self.groups:
            group.plan = None

    def _register(self, s: _SeqState) -> None:
        full = min(s.pos // self.block_size, len(s.hashes))
        for j in range(s.registered, full):
            for g, group in enumerate(self.groups):
                at = j - s.firsts[g]
                if 0 <= at < len(s.tables[g]):
                    group.pool.register(s.tables[g][at], s.hashes[j])
        s.registered = max(s.registered, full)

    def _trim(self, seqs: list[_SeqState]) -> None:
        """Release the blocks that lie wholly before each bounded group's first needed key."""
        if not seqs:
            return
        next_B = torch.tensor([s.pos for s in seqs])
        for g, group in enumerate(self.groups):
            if not group.bounded:
                continue
            firsts = group.kind.first_needed(group.cfg, next_B).tolist()
            for s, first in zip(seqs, firsts, strict=True):
                drop = max(0, first) // self.block_size - s.firsts[g]
                if drop <= 0:
                    continue
                table = s.tables[g]
                for block in table[:drop]:
                    group.pool.release(block)
                del table[:drop]
                s.firsts[g] += drop

    # -- accounting -----------------------------------------------------------------------

    @property
    def blocks_free(self) -> int:
        """Blocks available (free or evictable cached), summed over groups."""
        return sum(g.pool.available for g in self.groups)

    @property
    def blocks_used(self) -> int:
        """Blocks held by sequences, summed over groups."""
        return sum(g.pool.used for g in self.groups)

    def __len__(self) -> int:
        """Largest number of positions any sequence's blocks span in any group."""
        P = self.block_size
        return max((len(t) * P for s in self.seqs.values() for t in s.tables), default=0)


__all__ = ["LAST_SLOTS", "PagedKVCache", "PagedLayerKV"]
