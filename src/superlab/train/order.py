"""The order a loader visits its items (windows, examples, pairs): resumable, per epoch, per rank.

Epoch ``e`` visits the ``n`` items in a permutation seeded by ``(seed, e)`` (in order when
not shuffled); a batch may run over into the next epoch. The position is ``{"epoch",
"index"}``, which ``state()`` / ``load_state()`` save and restore, so a resumed run draws
exactly the batch the interrupted one would have drawn next. Every rank walks the same
global order and keeps only its own rows, ``[rank * B / world, (rank + 1) * B / world)``
of each global batch of B; the position is the global one, so a checkpoint resumes at
any world size. Pre-training's ``TokenLoader`` orders its windows with it, post-training's
loaders their examples.
"""

from __future__ import annotations

import numpy as np


def rank_rows(batch_size: int, rank: int, world_size: int) -> range:
    """This rank's rows of each global batch; raises ValueError if the batch does not split."""
    if batch_size % world_size:
        raise ValueError(
            f"train.batch_size ({batch_size}) must be a multiple of the world size "
            f"({world_size}): each rank takes an equal share of the global batch"
        )
    return range(rank * batch_size // world_size, (rank + 1) * batch_size // world_size)


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
        self.local_rows = rank_rows(batch_size, rank, world_size)
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.epoch, self.index = 0, 0
        self._perm_epoch, self._perm_N = -1, np.empty(0, dtype=np.int64)

    def state(self) -> dict[str, int]:
        """The position of the next item: ``{"epoch", "index"}``."""
        return {"epoch": self.epoch, "index": self.index}

    def load_state(self, state: dict[str, int]) -> None:
        """Continue from a position ``state()`` returned."""
        self.epoch, self.index = int(state["epoch"]), int(state["index"])

    def reset(self) -> None:
        """Back to the first item of epoch 0."""
        self.load_state({"epoch": 0, "index": 0})

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            if self.shuffle:
                self._perm_N = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            else:
                self._perm_N = np.arange(self.n)
            self._perm_epoch = epoch
        return self._perm_N

    def next_index(self) -> int:
        """The item of the next global row (any rank's); moves the position on by one."""
        if self.index == self.n:
            self.epoch, self.index = self.epoch + 1, 0
        item = int(self._perm(self.epoch)[self.index])
        self.index += 1
        return item

    def next_indices(self) -> list[int]:
        """This rank's item indices of the next global batch."""
        items = [self.next_index() for _ in range(self.batch_size)]
        return [items[row] for row in self.local_rows]


class Ordered:
    """A loader whose position is its ``order``'s: ``state``, ``load_state`` and ``reset``."""

    order: Order

    def state(self) -> dict[str, int]:
        """The position of the next batch (see ``Order.state``)."""
        return self.order.state()

    def load_state(self, state: dict[str, int]) -> None:
        """Continue from a position ``state()`` returned."""
        self.order.load_state(state)

    def reset(self) -> None:
        """Back to the first batch of epoch 0."""
        self.order.reset()
