"""Phase 2: global dedup over the filtered shards, then the final corpus and rejects, in order.

Exact dedup reads only the per-shard keys (ids and hashes, not texts): the first
occurrence in (shard, position) order survives, as in one sequential pass, so the
result does not depend on how phase 1 was scheduled. Near dedup is a hook
(``components.near_duplicates``). The merge then copies kept lines byte for byte
into ``data/clean.jsonl`` and writes every removal into ``data/rejects.jsonl``:
phase-1 rejects of each shard in order, then the duplicates in corpus order.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from superlab.data.dedup.exact import ExactDedup
from superlab.data.document import Document
from superlab.data.pipeline.shards import MIX_SOURCE, ShardFiles
from superlab.data.pipeline.steps import StepStats, reject_record
from superlab.data.split import HeldoutGuard
from superlab.data.writers import JsonlWriter

EXACT, NEAR = "ExactDedup", "MinHashDedup"  # step names; reasons are dedup:exact, dedup:near


def load_keys(shards: list[ShardFiles]) -> list[dict[str, list[Any]]]:
    """Each shard's ids, text bytes and exact keys."""
    return [json.loads(sh.keys.read_text(encoding="utf-8")) for sh in shards]


def exact_duplicates(keys: list[dict[str, list[Any]]]) -> dict[tuple[int, int], str]:
    """(shard, position) -> id of the first document with the same normalized text."""
    seen = ExactDedup()  # the one corpus-sized structure
    dups: dict[tuple[int, int], str] = {}
    for k, shard in enumerate(keys):
        for pos, (doc_id, key) in enumerate(zip(shard["ids"], shard["exact"], strict=True)):
            if (kept := seen.dup_of_key(key, doc_id)) is not None:
                dups[(k, pos)] = kept
    return dups


def merge(
    shards: list[ShardFiles],
    keys: list[dict[str, list[Any]]],
    removals: dict[str, dict[tuple[int, int], str]],
    clean: Path,
    rejects: Path,
    guard: HeldoutGuard,
    advance: Callable[[int], None],
) -> dict[str, StepStats]:
    """Write the kept documents to ``clean`` and every removal to ``rejects``; stats per step."""
    stats = {step: StepStats() for step in removals}
    with JsonlWriter(clean) as out, JsonlWriter(rejects) as rej:
        for sh in shards:
            with open(sh.rejects, encoding="utf-8") as f:
                for line in f:
                    rej.write_raw(line)
        for k, sh in enumerate(shards):
            ids, sizes = keys[k]["ids"], keys[k]["bytes"]
            with open(sh.docs, encoding="utf-8") as f:
                for pos, line in enumerate(f):
                    # Each step sees what the steps before it kept (exact, then near).
                    for step, found in removals.items():
                        stats[step].docs_in += 1
                        stats[step].bytes_in += sizes[pos]
                        if (kept := found.get((k, pos))) is not None:
                            reason = "dedup:exact" if step == EXACT else "dedup:near"
                            stats[step].removed[reason] += 1
                            doc = Document.from_json(json.loads(line))
                            named = {k: doc.metadata[k] for k in [MIX_SOURCE] if k in doc.metadata}
                            rej.write(reject_record(step, reason, doc, dup_of=kept, **named))
                            break
                        stats[step].docs_out += 1
                        stats[step].bytes_out += sizes[pos]
                    else:
                        out.write_raw(line)
                        guard.observe(ids[pos])
            advance(len(ids))
    return stats
