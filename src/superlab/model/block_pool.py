"""A pool of fixed-size KV blocks: a free list, reference counts and a prefix cache.

A block holds the keys and values of ``block_size`` consecutive positions of one
sequence (``superlab.model.paged_cache`` owns the storage; this module only hands out
block ids). A block is in one of three states:

- in use: ``refs > 0``, held by that many sequences' block tables (a prefix-cache hit
  shares one block between sequences; a shared block is always full and never written);
- cached: ``refs == 0`` but registered under a hash (``register``), kept with its
  contents so that a later sequence with the same prefix reuses it (``lookup`` /
  ``acquire``); cached blocks are evicted least recently released first, only when the
  free list is empty;
- free: on the free list, contents meaningless.

The hash of a block is chosen by the caller (the engine chains the hashes of all tokens
up to and including the block, seeded with a namespace for the model and its weights);
the pool only maps hash -> block.
"""

from __future__ import annotations

from collections import OrderedDict, deque


class BlockPool:
    """``num_blocks`` block ids with reference counts, a free list and an LRU prefix cache."""

    def __init__(self, num_blocks: int) -> None:
        if num_blocks < 1:
            raise ValueError(f"kv_cache_blocks: {num_blocks}; at least 1 block is needed")
        self.num_blocks = num_blocks
        self.refs = [0] * num_blocks
        self.free: deque[int] = deque(range(num_blocks))
        self.lru: OrderedDict[int, None] = OrderedDict()  # cached, refs 0, oldest first
        self.hash_of: dict[int, bytes] = {}
        self.by_hash: dict[bytes, int] = {}
        self.evictions = 0

    @property
    def available(self) -> int:
        """Blocks an ``allocate`` may return: free ones plus evictable cached ones."""
        return len(self.free) + len(self.lru)

    @property
    def used(self) -> int:
        """Blocks held by at least one sequence."""
        return self.num_blocks - self.available

    def allocate(self) -> int | None:
        """A block with one reference, from the free list, else the least recently released
        cached block (its hash forgotten); None when every block is in use."""
        if self.free:
            block = self.free.popleft()
        elif self.lru:
            block, _ = self.lru.popitem(last=False)
            del self.by_hash[self.hash_of.pop(block)]
            self.evictions += 1
        else:
            return None
        self.refs[block] = 1
        return block

    def release(self, block: int) -> None:
        """Drop one reference; at 0 a registered block stays cached, any other is freed."""
        if self.refs[block] <= 0:
            raise ValueError(f"block {block} released more often than acquired")
        self.refs[block] -= 1
        if self.refs[block] == 0:
            if block in self.hash_of:
                self.lru[block] = None  # most recently released: evicted last
            else:
                self.free.append(block)

    def lookup(self, key: bytes) -> int | None:
        """The block registered under ``key`` (in use or cached), or None."""
        return self.by_hash.get(key)

    def acquire(self, block: int) -> None:
        """One more reference to an existing block (a prefix-cache hit)."""
        if self.refs[block] == 0:
            if block not in self.lru:
                raise ValueError(f"block {block} is free: only cached blocks can be shared")
            del self.lru[block]
        self.refs[block] += 1

    def register(self, block: int, key: bytes) -> None:
        """Make a full, in-use block findable under ``key``; a key or block already
        registered keeps its first registration."""
        if key in self.by_hash or block in self.hash_of:
            return
        self.by_hash[key] = block
        self.hash_of[block] = key
