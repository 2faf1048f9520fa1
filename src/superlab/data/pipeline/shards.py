"""Phase 1, one input shard per task: read -> filter steps -> kept documents, rejects, dedup keys.

For shard ``k`` (5 digits) under ``data/work/filtered/``: ``<k>.jsonl`` (kept documents),
``<k>.rejects.jsonl``, ``<k>.keys.json`` (ids, text bytes and exact-dedup keys, what the
global dedup reads instead of the texts) and, last, by atomic rename, ``<k>.done``: the
shard's stats. A shard with a marker is complete; one without is redone from scratch.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from superlab.common import atomic_write_json
from superlab.config.recipe import DataConfig
from superlab.data import readers
from superlab.data.dedup.exact import exact_key
from superlab.data.document import Document
from superlab.data.filters import build_filters
from superlab.data.pipeline import components
from superlab.data.pipeline.components import Record
from superlab.data.pipeline.steps import FilterStep, Reject, StepStats, read_batches
from superlab.data.writers import JsonlWriter

# Test-only: seconds to sleep between writing a shard's outputs and its marker, so a test
# can kill a run at the worst moment (outputs written, shard not yet complete).
DELAY_ENV = "SUPERLAB_TEST_SHARD_DELAY"
# The metadata key (and rejects.jsonl field) naming a document's mixture source.
MIX_SOURCE = "mix_source"


@dataclass(frozen=True)
class ShardTask:
    """What a worker needs: shard index, input name, resolved data config, work directory."""

    index: int
    name: str
    config: dict[str, Any]
    work: str
    source: str | None = None  # a mixture's source (``data.sources``) the input belongs to


class ShardFiles(NamedTuple):
    docs: Path
    rejects: Path
    keys: Path
    marker: Path


def shard_files(work: Path, k: int) -> ShardFiles:
    """The files of shard ``k`` under ``work/filtered/``."""
    base = work / "filtered" / f"{k:05d}"
    return ShardFiles(
        *(
            base.with_name(base.name + s)
            for s in (".jsonl", ".rejects.jsonl", ".keys.json", ".done")
        )
    )


def discard(path: Path) -> None:
    """Remove ``path`` and any temporaries of it (``.<name>.*``) left by an interrupted run."""
    for p in [path, *path.parent.glob(f".{path.name}.*")]:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)


def is_complete(files: ShardFiles) -> bool:
    """True when the shard's marker and all its outputs exist."""
    return all(p.exists() for p in files)


def tag_source(records: Iterator[Record], source: str) -> Iterator[Record]:
    """Documents of a mixture's source: id ``<source>/<id>`` (unique across sources) and
    ``metadata[MIX_SOURCE]``; bad records pass through."""
    for rec in records:
        if isinstance(rec, Document):
            rec.id = f"{source}/{rec.id}"
            rec.metadata[MIX_SOURCE] = source
        yield rec


def named_rejects(reject: Reject, source: str) -> Reject:
    """``reject`` with each record naming the mixture source it came from."""
    return lambda rec: reject({**rec, MIX_SOURCE: source})


def clean_shard(task: ShardTask) -> dict[str, Any]:
    """Read, filter and key one input shard; write its files, marker last; return its stats."""
    cfg = DataConfig.model_validate(task.config)
    files = shard_files(Path(task.work), task.index)
    for p in files:
        discard(p)
    read = StepStats()
    source, filters, language = cfg.source, cfg.filters, cfg.language
    if task.source is not None:  # one source of a mixture: its own reader and thresholds
        source = cfg.source_named(task.source)
        filters, language = cfg.filters_for(task.source)
    steps = [FilterStep(f) for f in build_filters(filters, language, cfg.pii)]
    keys: dict[str, list[Any]] = {"ids": [], "bytes": [], "exact": []}
    skipped: Counter[str] = Counter()
    with JsonlWriter(files.docs) as out, JsonlWriter(files.rejects) as rejects:
        pending: list[dict[str, Any]] = []

        def flush_rejects() -> None:
            # A batch is a contiguous run of the input: sorted, rejects are in input order.
            for rec in sorted(pending, key=lambda r: r["offset"]):
                rejects.write(rec)
            pending.clear()

        records = readers.read_input(task.name, source, skipped)
        reject = pending.append
        if task.source is not None:
            records = tag_source(records, task.source)
            reject = named_rejects(pending.append, task.source)
        for batch in read_batches(records, reject, read):
            for step in steps:
                batch = step(batch, reject)
            flush_rejects()
            for doc in batch:
                out.write(doc.to_json())
                keys["ids"].append(doc.id)
                keys["bytes"].append(len(doc.text.encode("utf-8")))
                keys["exact"].append(exact_key(doc.text))
        flush_rejects()  # bad records after the last document
    atomic_write_json(files.keys, keys)
    counters: dict[str, Counter[str]] = {c: Counter() for c in components.FILTER_COUNTERS}
    for step in steps:
        for c in components.FILTER_COUNTERS:
            counters[c].update(getattr(step.filt, c, {}))
    counters["skipped"] = skipped
    stats = {
        "input": task.name,
        **({} if task.source is None else {"source": task.source}),
        "steps": {"read": read.to_json(), **{s.name: s.stats.to_json() for s in steps}},
        **{c: dict(n) for c, n in counters.items()},
    }
    if delay := float(os.environ.get(DELAY_ENV, "0")):
        time.sleep(delay)
    atomic_write_json(files.marker, stats)
    return stats
