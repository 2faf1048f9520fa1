"""The order a post-training stage visits its examples: resumable, per epoch, per rank.

As ``superlab.train.loader.TokenLoader``: epoch ``e`` visits the examples in a permutation
seeded by ``(seed, e)`` (in order when not shuffled); a batch may run over into the next
epoch; the position ``{"epoch", "index"}`` is saved in checkpoints. Every rank walks the
same global order and keeps its own rows ``[rank * B / world, (rank + 1) * B / world)``.
"""

from __future__ import annotations

import numpy as np


class Order:
    """Indices of the next global batch's rows for this rank."""

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if n == 0:
            raise ValueError("no examples to train on")
        if batch_size % world_size:
            raise ValueError(
                f"train.batch_size ({batch_size}) must be a multiple of the world size "
                f"({world_size}): each rank takes an equal share of the global batch"
            )
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.local_rows = range(
            rank * batch_size // world_size, (rank + 1) * batch_size // world_size
        )
        self.epoch, self.index = 0, 0
        self._order_epoch, self._order = -1, np.empty(0, dtype=np.int64)

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "index": self.index}

    def load_state(self, state: dict[str, int]) -> None:
        self.epoch, self.index = int(state["epoch"]), int(state["index"])

    def reset(self) -> None:
        self.load_state({"epoch": 0, "index": 0})

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch != self._order_epoch:
            if self.shuffle:
                self._order = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            else:
                self._order = np.arange(self.n)
            self._order_epoch = epoch
        return self._order

    def next_indices(self) -> list[int]:
        """This rank's example indices of the next global batch."""
        out = []
        for row in range(self.batch_size):
            if self.index == self.n:
                self.epoch, self.index = self.epoch + 1, 0
            if row in self.local_rows:
                out.append(int(self._perm(self.epoch)[self.index]))
            self.index += 1
        return out
