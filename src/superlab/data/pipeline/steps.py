"""Steps: plain functions over batches of documents, each counting what goes in, out and why.

A step is ``step(batch, reject) -> kept``: it returns the documents it keeps and calls
``reject(record)`` once for each one it removes (the record names the step, the reason,
the document and where it came from). Its ``stats`` hold documents and UTF-8 text bytes
in and out, removals by reason, and seconds (CPU time summed over shards).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from superlab.data.document import BadRecord, Document
from superlab.data.filters import Filter
from superlab.data.pipeline.components import Record, step_name

Batch = list[Document]
Reject = Callable[[dict[str, Any]], None]
BATCH_DOCS = 256  # documents per batch: large enough to amortize, small enough to stream


@dataclass
class StepStats:
    """Counts for one step (over one shard, or summed over all)."""

    docs_in: int = 0
    docs_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    removed: Counter[str] = field(default_factory=Counter)

    def add(self, other: StepStats) -> None:
        """Add ``other``'s counts to these."""
        self.docs_in += other.docs_in
        self.docs_out += other.docs_out
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        self.seconds += other.seconds
        self.removed.update(other.removed)

    def to_json(self) -> dict[str, Any]:
        return {
            "docs_in": self.docs_in,
            "docs_out": self.docs_out,
            "removed": dict(sorted(self.removed.items(), key=lambda kv: (-kv[1], kv[0]))),
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> StepStats:
        return cls(**{**obj, "removed": Counter(obj["removed"])})


def text_bytes(docs: Iterable[Document]) -> int:
    """UTF-8 size of the documents' text."""
    return sum(len(d.text.encode("utf-8")) for d in docs)


def reject_record(step: str, reason: str, doc: Document, **extra: Any) -> dict[str, Any]:
    """The ``rejects.jsonl`` line for a removed document."""
    return {
        "step": step,
        "reason": reason,
        "id": doc.id,
        "source": doc.source,
        "offset": doc.offset,
        **extra,
    }


class FilterStep:
    """A filter over a batch: the kept documents out, each drop counted and rejected."""

    def __init__(self, filt: Filter) -> None:
        self.filt = filt
        self.name = step_name(filt)
        self.stats = StepStats()

    def __call__(self, batch: Batch, reject: Reject) -> Batch:
        t0 = time.perf_counter()
        self.stats.bytes_in += text_bytes(batch)
        kept = []
        for doc in batch:
            verdict = self.filt.keep(doc)  # a line filter may rewrite doc.text
            if verdict is True:
                kept.append(doc)
            else:
                self.stats.removed[verdict[1]] += 1
                reject(reject_record(self.name, verdict[1], doc))
        self.stats.docs_in += len(batch)
        self.stats.docs_out += len(kept)
        self.stats.bytes_out += text_bytes(kept)
        self.stats.seconds += time.perf_counter() - t0
        return kept


def read_batches(
    records: Iterator[Record], reject: Reject, stats: StepStats, size: int = BATCH_DOCS
) -> Iterator[Batch]:
    """Batches of the documents in ``records``; each ``BadRecord`` is rejected and counted."""
    batch: Batch = []
    t0 = time.perf_counter()
    for rec in records:
        stats.docs_in += 1
        if isinstance(rec, BadRecord):
            stats.removed[rec.reason] += 1
            reject(rec.to_json())
            continue
        batch.append(rec)
        if len(batch) == size:
            stats.seconds += time.perf_counter() - t0
            yield _counted(batch, stats)
            batch, t0 = [], time.perf_counter()
    stats.seconds += time.perf_counter() - t0
    if batch:
        yield _counted(batch, stats)


def _counted(batch: Batch, stats: StepStats) -> Batch:
    n = text_bytes(batch)
    stats.docs_out += len(batch)
    stats.bytes_in += n
    stats.bytes_out += n
    return batch
