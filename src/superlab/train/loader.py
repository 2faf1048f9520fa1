"""Batches of (input, target) windows from the packed shards (see ``superlab.data``).

A split's shards, in index order, form one token stream. It is cut into windows of
``seq_len + 1`` tokens starting every ``seq_len`` tokens (neighbours share one token),
so every token but the first is a target exactly once per epoch. The training loader
visits the windows of epoch ``e`` in a permutation seeded by ``(seed, e)``; a batch
may run over into the next epoch. Its position is ``(epoch, index)``, which
``state()`` / ``load_state()`` save and restore, so a resumed run draws exactly the
batch the interrupted one would have drawn next. The held-out loader is unshuffled.

Under data parallelism every rank walks the same global order and keeps only its own
rows, ``[rank * B / world, (rank + 1) * B / world)`` of each global batch of B; the
position is the global one, so a checkpoint resumes at any world size.

With ``documents=True`` each batch also carries ``doc_ids_BT``: for every input token,
the index of its document within the row (0 for the document the window starts in),
from the shards' ``.docs.npy`` start offsets. The model then lets a token attend only
to earlier tokens of its own document (``Transformer.forward(doc_ids_BT=...)``). RoPE
positions still count from the window's start, as in Llama 3's document masking.

Legend: B batch, T sequence (``seq_len``), W windows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch


def read_index(shards_dir: str | Path) -> dict[str, Any]:
    """The shards' ``index.json``."""
    path = Path(shards_dir) / "index.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no shard index; run the data stage first")
    return json.loads(path.read_text())


class Batch(NamedTuple):
    """One batch: inputs, next-token targets and (with document masking) document ids."""

    x_BT: torch.Tensor
    y_BT: torch.Tensor
    doc_ids_BT: torch.Tensor | None


class TokenLoader:
    """Memory-mapped windows of one split; shuffled per epoch or in order."""

    def __init__(
        self,
        shards_dir: str | Path,
        split: str,
        batch_size: int,
        seq_len: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        documents: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size % world_size:
            raise ValueError(
                f"train.batch_size ({batch_size}) must be a multiple of the world size "
                f"({world_size}): each rank takes an equal share of the global batch"
            )
        shards_dir = Path(shards_dir)
        index = read_index(shards_dir)
        dtype = np.dtype(index["dtype"]).newbyteorder("<")
        entries = [s for s in index["splits"].get(split, []) if s["tokens"] > 0]
        self.shards = [np.memmap(shards_dir / s["file"], dtype=dtype, mode="r") for s in entries]
        lengths = [len(s) for s in self.shards]
        self.offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        self.doc_starts = _doc_starts(shards_dir, entries, self.offsets) if documents else None
        self.rank, self.world_size = rank, world_size
        self.local_rows = range(
            rank * batch_size // world_size, (rank + 1) * batch_size // world_size
        )
        self.num_tokens = int(self.offsets[-1])
        self.split, self.batch_size, self.seq_len = split, batch_size, seq_len
        self.seed, self.shuffle = seed, shuffle
        self.num_windows = max(0, (self.num_tokens - 1) // seq_len)
        if self.num_windows == 0:
            raise ValueError(
                f"split {split!r} has {self.num_tokens} tokens, fewer than one window of "
                f"seq_len + 1 = {seq_len + 1}; lower train.seq_len or add data"
            )
        self.epoch, self.index = 0, 0
        self._order_epoch, self._order_W = -1, np.empty(0, dtype=np.int64)

    def state(self) -> dict[str, int]:
        """The position of the next window: ``{"epoch", "index"}``."""
        return {"epoch": self.epoch, "index": self.index}

    def load_state(self, state: dict[str, int]) -> None:
        """Continue from a position ``state()`` returned."""
        self.epoch, self.index = int(state["epoch"]), int(state["index"])

    def reset(self) -> None:
        """Back to the first window of epoch 0."""
        self.load_state({"epoch": 0, "index": 0})

    def _order(self, epoch: int) -> np.ndarray:
        if epoch != self._order_epoch:
            if self.shuffle:
                rng = np.random.default_rng([self.seed, epoch])
                self._order_W = rng.permutation(self.num_windows)
            else:
                self._order_W = np.arange(self.num_windows)
            self._order_epoch = epoch
        return self._order_W

    def _tokens(self, start: int, length: int) -> np.ndarray:
        """``length`` tokens of the concatenated stream from ``start`` (may span shards)."""
        parts, end = [], start + length
        i = int(np.searchsorted(self.offsets, start, side="right")) - 1
        while start < end:
            lo = start - int(self.offsets[i])
            hi = min(end, int(self.offsets[i + 1])) - int(self.offsets[i])
            parts.append(self.shards[i][lo:hi])
            start += hi - lo
            i += 1
        return np.concatenate(parts).astype(np.int64)

    def window(self, w: int) -> np.ndarray:
        """Window ``w``: tokens ``[w * T, w * T + T + 1)`` of the stream."""
        return self._tokens(w * self.seq_len, self.seq_len + 1)

    def doc_ids(self, w: int) -> np.ndarray:
        """Document index (0 = the one window ``w`` starts in) of each of its input tokens."""
        assert self.doc_starts is not None, "built without documents=True"
        pos_T = np.arange(w * self.seq_len, (w + 1) * self.seq_len)
        ids_T = np.searchsorted(self.doc_starts, pos_T, side="right") - 1
        return ids_T - ids_T[0]

    def next_batch(self) -> Batch:
        """This rank's rows of the next global batch; int64, ``y`` = ``x`` shifted by one."""
        windows = []
        for row in range(self.batch_size):
            if self.index == self.num_windows:
                self.epoch, self.index = self.epoch + 1, 0
            if row in self.local_rows:
                windows.append(int(self._order(self.epoch)[self.index]))
            self.index += 1
        batch_BT1 = torch.from_numpy(np.stack([self.window(w) for w in windows]))
        doc_ids_BT = None
        if self.doc_starts is not None:
            doc_ids_BT = torch.from_numpy(np.stack([self.doc_ids(w) for w in windows]))
        return Batch(batch_BT1[:, :-1], batch_BT1[:, 1:], doc_ids_BT)


def _doc_starts(shards_dir: Path, entries: list[dict[str, Any]], offsets: np.ndarray) -> np.ndarray:
    """Start offsets of every document in the split's concatenated token stream."""
    starts = []
    for entry, offset in zip(entries, offsets, strict=False):
        if "docs_file" not in entry:
            raise ValueError(
                f"{shards_dir / 'index.json'}: shard {entry['file']} has no docs_file; "
                f"train.document_mask needs the per-document offsets (re-run the data stage)"
            )
        starts.append(np.load(shards_dir / entry["docs_file"]).astype(np.int64) + int(offset))
    return np.concatenate(starts) if starts else np.zeros(1, dtype=np.int64)
