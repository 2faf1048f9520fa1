"""Running phase 1 over all input shards on an executor, and what the sub-steps share."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

from superlab.common import ProgressHandle, StageContext
from superlab.data.document import Document
from superlab.data.executors import Executor, make_executor
from superlab.data.pipeline import components
from superlab.data.pipeline.shards import ShardTask, clean_shard, is_complete, shard_files
from superlab.data.pipeline.steps import StepStats

ADVANCE_EVERY = 256  # documents between progress-bar updates


class Work:
    """One data-stage run: context, inputs, shard files, and an executor started on first use."""

    def __init__(self, ctx: StageContext, inputs: list[str]) -> None:
        self.ctx, self.inputs = ctx, inputs
        # With data.sources: the source each input belongs to (inputs grouped in source order).
        self.sources: list[str | None] = [None] * len(inputs)
        self.shards = [shard_files(ctx.run.data_work, k) for k in range(len(inputs))]
        self._executor: Executor | None = None

    def executor(self) -> Executor:
        """The recipe's executor; started here, so a run with nothing to do never starts Ray."""
        if self._executor is None:
            cfg = self.ctx.recipe.data
            self._executor = make_executor(cfg.executor, cfg.workers)
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.close()
            self._executor = None


def clean_all(work: Work, done: dict[str, Any]) -> dict[str, Any]:
    """Phase 1 on every shard not yet complete; the stats summed over all shards, in order."""
    ctx = work.ctx
    config = ctx.recipe.data.model_dump(mode="json")
    by_shard: dict[int, dict[str, Any]] = {}
    tasks = []
    for k, (name, files) in enumerate(zip(work.inputs, work.shards, strict=True)):
        if is_complete(files):
            by_shard[k] = json.loads(files.marker.read_text(encoding="utf-8"))
        else:
            tasks.append(ShardTask(k, name, config, str(ctx.run.data_work), work.sources[k]))
    if by_shard:
        ctx.log.info(
            "data: clean: %d of %d shards complete before", len(by_shard), len(work.shards)
        )
    with ctx.progress("data: clean (shards)", len(work.shards)) as bar:
        bar.advance(len(by_shard))
        if tasks:
            results = work.executor().map(clean_shard, tasks, lambda i, r: bar.advance(1))
            by_shard.update((t.index, r) for t, r in zip(tasks, results, strict=True))
    return summed(
        [by_shard[k] for k in range(len(work.shards))], reused=len(work.shards) - len(tasks)
    )


def summed(shards: list[dict[str, Any]], reused: int) -> dict[str, Any]:
    """The per-shard stats added up, step by step, in shard order."""
    steps: dict[str, StepStats] = {}
    counters: dict[str, Counter[str]] = {c: Counter() for c in components.COUNTERS}
    for sh in shards:
        for name, s in sh["steps"].items():
            steps.setdefault(name, StepStats()).add(StepStats.from_json(s))
        for c in components.COUNTERS:
            counters[c].update(sh.get(c, {}))
    removed: Counter[str] = Counter()
    for s in steps.values():
        removed.update(s.removed)
    return {
        "shards": len(shards),
        "shards_reused": reused,
        "docs_in": steps["read"].docs_in,
        # each shard's last step (a mixture's sources may run different steps)
        "docs_out": sum(
            StepStats.from_json(list(sh["steps"].values())[-1]).docs_out for sh in shards
        ),
        "removed": dict(sorted(removed.items(), key=lambda kv: (-kv[1], kv[0]))),
        **{c: dict(sorted(n.items(), key=lambda kv: (-kv[1], kv[0]))) for c, n in counters.items()},
        "steps": {name: s.to_json() for name, s in steps.items()},
    }


def counted(docs: Iterator[Document], bar: ProgressHandle) -> Iterator[Document]:
    """Pass ``docs`` through, advancing ``bar`` every ``ADVANCE_EVERY`` documents."""
    n = 0
    for doc in docs:
        yield doc
        n += 1
        if n == ADVANCE_EVERY:
            bar.advance(n)
            n = 0
    bar.advance(n)
