"""Where the pipeline meets dedup: near dedup over the filtered shards, and the counters.

Readers (``superlab.data.readers``) and filters (``superlab.data.filters``) are called
directly where they are used (``pipeline/shards.py``, ``data/stage.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from superlab.config.recipe import DataConfig
from superlab.data.document import BadRecord, Document
from superlab.data.filters import Filter

Record = Document | BadRecord
# Counters a filter keeps (a dict of reason -> count), summed over shards into stats.json.
FILTER_COUNTERS = ("lines_removed", "masked")
# Plus the records a reader skipped without rejecting them (WARC requests, metadata).
COUNTERS = (*FILTER_COUNTERS, "skipped")


def step_name(filt: Filter) -> str:
    """A filter's name in stats and rejects: its ``name`` attribute, else its class name."""
    return str(getattr(filt, "name", type(filt).__name__))


def near_duplicates(
    docs: list[Path],
    ids: list[list[str]],
    work: Path,
    cfg: DataConfig,
    executor: Callable[[], Any],
    audit: Path,
) -> tuple[dict[tuple[int, int], str], dict[str, int] | None]:
    """Near dedup: ((shard, position) -> id kept, for each near duplicate; MinHash counters).

    Signatures per shard in parallel (``executor().map``; a shard's ``.sig.npy`` is its
    marker, so a resumed run reuses them), then the global LSH clustering, bounded in
    memory and deterministic: each cluster keeps its first document in corpus order.
    Above ``dedup.sharded_above_docs`` documents the clustering runs as sharded tasks on
    the executor too (``dedup.sharded``), with the same result.
    ``audit`` (``duplicates.parquet``) lists every clustered document but the survivor,
    with its cluster and survivor: exact copies too, since they fall in the same cluster
    (``rejects.jsonl`` says which step removed each).
    """
    if not cfg.dedup.minhash.enabled:
        return {}, None
    from superlab.data.dedup import near_duplicates as cluster
    from superlab.data.dedup import signature_path

    out = work / "minhash"
    sigs = [signature_path(out, k) for k in range(len(docs))]
    mh = cfg.dedup.minhash.model_dump(mode="json")
    todo = [(str(d), str(s), mh) for d, s in zip(docs, sigs, strict=True) if not s.exists()]
    if todo:
        executor().map(minhash_shard, todo)
    offsets = np.cumsum([0, *map(len, ids)])
    texts = ShardTexts([str(d) for d in docs], offsets.tolist())
    if int(offsets[-1]) > cfg.dedup.sharded_above_docs:
        from superlab.data.dedup.sharded import sharded_near_duplicates

        result, _ = sharded_near_duplicates(
            sigs, out, cfg.dedup.minhash, executor().map, cfg.dedup.bucket_shards, texts
        )
    else:
        result = cluster(sigs, out, cfg.dedup.minhash, texts=texts)
    from superlab.data.dedup.lsh_sink import write_duplicates_parquet

    write_duplicates_parquet(result, sigs, audit)
    shard_of = np.searchsorted(offsets, result.removed, side="right") - 1
    survivor_shard = np.searchsorted(offsets, result.survivor, side="right") - 1
    found = {
        (int(k), int(i - offsets[k])): ids[sk][int(j - offsets[sk])]
        for k, i, sk, j in zip(
            shard_of, result.removed, survivor_shard, result.survivor, strict=True
        )
    }
    return found, result.stats()


def minhash_shard(task: tuple[str, str, dict[str, Any]]) -> int:
    """Write one filtered shard's MinHash signatures (a worker function); the document count."""
    from superlab.config.recipe import MinHashConfig
    from superlab.data.dedup import MinHasher, write_signatures
    from superlab.data.readers import read_documents

    docs, sig, cfg = task
    return write_signatures(read_documents(docs), Path(sig), MinHasher(MinHashConfig(**cfg)))


@dataclass(frozen=True)
class ShardTexts:
    """The texts of sorted global indices (MinHash verification), in order; picklable."""

    docs: list[str]  # the filtered shards' JSONL files, in corpus order
    offsets: list[int]  # (shards + 1,) first global index of each shard, then N

    def __call__(self, idx: np.ndarray) -> list[str]:
        out = []
        for k, path in enumerate(self.docs):
            lo, hi = np.searchsorted(idx, [self.offsets[k], self.offsets[k + 1]])
            local = set((idx[lo:hi] - self.offsets[k]).tolist())
            if local:
                with open(path, encoding="utf-8") as f:
                    out += [json.loads(line)["text"] for i, line in enumerate(f) if i in local]
        return out
