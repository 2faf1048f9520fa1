"""Batches of (input, target) windows from the packed shards (see ``superlab.data``).

A split's shards, in index order, form one token stream. It is cut into windows of
``seq_len + 1`` tokens starting every ``seq_len`` tokens (neighbours share one token),
so every token but the first is a target exactly once per epoch. The loaders visit
the windows in an ``Order`` (``superlab.train.order``): a permutation per epoch seeded by
``(seed, e)`` (the held-out loader's is unshuffled), a resumable position ``(epoch,
index)``, and under data parallelism each rank's own rows of every global batch.

With ``documents=True`` each batch also carries ``doc_ids_BT``: for every input token,
the index of its document within the row (0 for the document the window starts in),
from the shards' ``.docs.npy`` start offsets. The model then lets a token attend only
to earlier tokens of its own document (``Transformer.forward(doc_ids_BT=...)``). RoPE
positions still count from the window's start, as in Llama 3's document masking.

With a mixture (``data.sources``, see ``MixtureLoader``) the shards are tagged by source
and each global row of a batch first draws a source with probability weight / sum of
weights, from a stream seeded by ``seed`` alone, then takes that source's next window in
its own per-epoch permutation. The position is the number of draws and each source's
``(epoch, index)``; changing the weights changes only the draws, so runs that differ
only in weights share one data stage.

Legend: B batch, T sequence (``seq_len``), W windows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch

from superlab.train.order import Order, Ordered, rank_rows

if TYPE_CHECKING:
    from superlab.config.data import DataConfig
    from superlab.config.train import TrainConfig


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


class TokenLoader(Ordered):
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
        source: str | None = None,
    ) -> None:
        shards_dir = Path(shards_dir)
        index = read_index(shards_dir)
        dtype = np.dtype(index["dtype"]).newbyteorder("<")
        entries = [s for s in index["splits"].get(split, []) if s["tokens"] > 0]
        if source is not None:  # one source of a mixture: only its shards
            entries = [s for s in entries if s.get("source") == source]
        self.source = source
        self.shards = [np.memmap(shards_dir / s["file"], dtype=dtype, mode="r") for s in entries]
        lengths = [len(s) for s in self.shards]
        self.offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        self.doc_starts = _doc_starts(shards_dir, entries, self.offsets) if documents else None
        self.num_tokens = int(self.offsets[-1])
        self.split, self.seq_len = split, seq_len
        self.num_windows = max(0, (self.num_tokens - 1) // seq_len)
        if self.num_windows == 0:
            of = "" if source is None else f" of source {source!r}"
            raise ValueError(
                f"split {split!r}{of} has {self.num_tokens} tokens, fewer than one window of "
                f"seq_len + 1 = {seq_len + 1}; lower train.seq_len or add data"
            )
        self.order = Order(
            self.num_windows,
            batch_size,
            seed=seed,
            shuffle=shuffle,
            rank=rank,
            world_size=world_size,
        )

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
        windows = self.order.next_indices()
        batch_BT1 = torch.from_numpy(np.stack([self.window(w) for w in windows]))
        doc_ids_BT = None
        if self.doc_starts is not None:
            doc_ids_BT = torch.from_numpy(np.stack([self.doc_ids(w) for w in windows]))
        return Batch(batch_BT1[:, :-1], batch_BT1[:, 1:], doc_ids_BT)


@dataclass(frozen=True)
class Mixture:
    """The training mixture: each source's relative weight and its repetition limit.

    ``rows``: the global rows the run will draw (``train.steps x grad_accum x
    batch_size``), for the ``max_epochs`` check; None skips it.
    """

    weights: dict[str, float]
    max_epochs: dict[str, float]
    rows: int | None = None
    steps: int | None = None

    @classmethod
    def from_config(cls, data: DataConfig, train: TrainConfig) -> Mixture | None:
        """The recipe's mixture (``data.sources``), or None for a single ``data.source``."""
        if not data.sources:
            return None
        return cls(
            {s.name: s.weight for s in data.sources},
            {s.name: s.max_epochs for s in data.sources},
            rows=train.steps * train.grad_accum * train.batch_size,
            steps=train.steps,
        )

    def shares(self) -> dict[str, float]:
        """Each source's planned share of training windows (weights normalized)."""
        total = sum(self.weights.values())
        return {name: w / total for name, w in self.weights.items()}


DRAW_BLOCK = 4096  # source draws generated at once; draw n comes from block n // DRAW_BLOCK


class SourceSampler:
    """Draw ``n`` (0, 1, 2, ...) picks a source by weight, as a pure function of seed and n.

    Draws come in blocks of ``DRAW_BLOCK`` uniforms from ``default_rng([seed, tag,
    block])``, so a resumed run needs only the draw count, and two mixtures with the
    same seed see the same uniforms (their draws differ only where the weights do).
    """

    TAG = 0x6D6978  # "mix": keeps these draws apart from the window permutations

    def __init__(self, weights: dict[str, float], seed: int) -> None:
        self.names = [n for n, w in weights.items() if w > 0]
        cum = np.cumsum([weights[n] for n in self.names], dtype=np.float64)
        self.cum = cum / cum[-1]
        self.seed = seed
        self._block, self._u = -1, np.empty(0)

    def __call__(self, n: int) -> str:
        block = n // DRAW_BLOCK
        if block != self._block:
            rng = np.random.default_rng([self.seed, self.TAG, block])
            self._block, self._u = block, rng.random(DRAW_BLOCK)
        k = int(np.searchsorted(self.cum, self._u[n % DRAW_BLOCK], side="right"))
        return self.names[min(k, len(self.names) - 1)]


class MixtureLoader:
    """Training batches drawn from the shards of several sources by weight (``Mixture``).

    Each source with a positive weight gets its own shuffled ``TokenLoader`` over its
    shards (windows never cross sources); every global row draws a source
    (``SourceSampler``) and takes that source's next window. Same interface as
    ``TokenLoader``'s training use: ``next_batch``, ``state``, ``load_state``, ``reset``.
    """

    def __init__(
        self,
        shards_dir: str | Path,
        mixture: Mixture,
        batch_size: int,
        seq_len: int,
        *,
        seed: int = 0,
        documents: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.local_rows = rank_rows(batch_size, rank, world_size)
        index = read_index(shards_dir)
        tagged = {s.get("source") for s in index["splits"].get("train", [])}
        if missing := sorted(set(mixture.weights) - tagged):
            raise ValueError(
                f"{Path(shards_dir) / 'index.json'}: no train shards of source(s) {missing}; "
                "the data stage was run for other sources (re-run it)"
            )
        self.mixture, self.batch_size, self.seq_len = mixture, batch_size, seq_len
        self.sampler = SourceSampler(mixture.weights, seed)
        self.loaders = {
            name: TokenLoader(
                shards_dir,
                "train",
                batch_size,
                seq_len,
                seed=seed + 7919 * (k + 1),  # each source its own permutations
                documents=documents,
                source=name,
            )
            for k, name in enumerate(mixture.weights)
            if mixture.weights[name] > 0
        }
        self.num_tokens = sum(ld.num_tokens for ld in self.loaders.values())
        self.num_windows = sum(ld.num_windows for ld in self.loaders.values())
        self.draws = 0
        self._check_epochs()

    def _check_epochs(self) -> None:
        """Refuse a weight that needs more than its source's ``max_epochs`` passes."""
        if self.mixture.rows is None:
            return
        for name, share in self.mixture.shares().items():
            if share == 0:
                continue
            ld = self.loaders[name]
            epochs = self.mixture.rows * share / ld.num_windows
            limit = self.mixture.max_epochs[name]
            if epochs > limit:
                raise ValueError(
                    f"data.sources '{name}': weight {self.mixture.weights[name]:g} "
                    f"({share:.1%} of training) needs {epochs:.2f} epochs of its "
                    f"{ld.num_tokens:,} train tokens for train.steps={self.mixture.steps}, "
                    f"more than its max_epochs {limit:g}"
                )

    def state(self) -> dict[str, Any]:
        """The position: draws made, and each source's ``epoch``, ``index`` and size."""
        return {
            "draws": self.draws,
            "sources": {
                name: {**ld.state(), "windows": ld.num_windows} for name, ld in self.loaders.items()
            },
            "seq_len": self.seq_len,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from a position ``state()`` returned."""
        if "sources" not in state:
            raise ValueError(
                "the checkpoint's data position is a single-source one; this run trains on "
                "a mixture (data.sources): start the run over"
            )
        self.draws = int(state["draws"])
        for name, ld in self.loaders.items():
            pos = state["sources"].get(name, {"epoch": 0, "index": 0})
            ld.load_state({"epoch": pos["epoch"], "index": pos["index"]})

    def reset(self) -> None:
        """Back to the first draw, every source at its first window."""
        self.draws = 0
        for ld in self.loaders.values():
            ld.reset()

    def usage(self) -> dict[str, dict[str, float]]:
        """Per source: windows and tokens drawn so far, and epochs of its train tokens used."""
        return usage_of(self.state())

    def next_batch(self) -> Batch:
        """This rank's rows of the next global batch, each row from the source drawn for it."""
        picked = []
        for row in range(self.batch_size):
            ld = self.loaders[self.sampler(self.draws)]
            self.draws += 1
            w = ld.order.next_index()
            if row in self.local_rows:
                picked.append((ld, w))
        batch_BT1 = torch.from_numpy(np.stack([ld.window(w) for ld, w in picked]))
        doc_ids_BT = None
        if all(ld.doc_starts is not None for ld, _ in picked):
            doc_ids_BT = torch.from_numpy(np.stack([ld.doc_ids(w) for ld, w in picked]))
        return Batch(batch_BT1[:, :-1], batch_BT1[:, 1:], doc_ids_BT)


def usage_of(state: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Windows, tokens and epochs drawn per source, from a ``MixtureLoader.state()``."""
    out = {}
    for name, pos in state["sources"].items():
        windows = pos["epoch"] * pos["windows"] + pos["index"]
        out[name] = {
            "windows": windows,
            "tokens": windows * state["seq_len"],
            "epochs": windows / pos["windows"] if pos["windows"] else 0.0,
        }
    return out


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
