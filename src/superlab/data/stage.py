"""The ``data`` stage: clean -> dedup -> tokenizer -> pack, each sub-step resumable on its own.

A sub-step is complete when ``data/work/<step>.done.json`` exists; it holds the step's
stats and is written last, by atomic rename, after the step's outputs. A run skips
complete sub-steps and redoes the first incomplete one and every one after it (their
inputs may have changed), discarding their outputs and temporaries first.

Outputs: ``data/work/clean.jsonl`` (filtered), ``data/clean.jsonl`` (filtered and
deduplicated, the final corpus), ``data/rejects.jsonl`` (one line per removed document),
``tokenizer/tokenizer.json``, ``data/shards/`` and ``data/stats.json``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from superlab.common import ProgressHandle, StageContext, StageError, atomic_write_json
from superlab.data.dedup import ExactDedup
from superlab.data.document import Document
from superlab.data.filters import apply_filters, build_filters
from superlab.data.pack import pack
from superlab.data.readers import read_documents, read_source
from superlab.data.split import TRAIN, HeldoutGuard, HeldoutSplit
from superlab.data.tokenizer import load_tokenizer, train_tokenizer
from superlab.data.writers import JsonlWriter

Stats = dict[str, Any]
ADVANCE_EVERY = 256  # documents between progress-bar updates


def run(ctx: StageContext) -> dict[str, Any]:
    """Run (or resume) the data stage; write stats.json; return the summary figures."""
    ctx.run.data_work.mkdir(parents=True, exist_ok=True)
    done: dict[str, Stats] = {}
    steps = _steps(ctx)
    redo = False
    for k, (name, step, outputs) in enumerate(steps):
        marker = _marker(ctx, name)
        if not redo and marker.exists() and all(p.exists() for p in outputs):
            done[name] = json.loads(marker.read_text())
            ctx.log.info("data: %s complete before, skipped", name)
            continue
        if not redo:  # this step and every later one run again: forget their markers now
            redo = True
            for later in steps[k:]:
                _marker(ctx, later.name).unlink(missing_ok=True)
        for path in outputs:
            _discard(path)
        ctx.log.info("data: %s", name)
        t0 = time.perf_counter()
        stats = step(ctx, done)
        stats["seconds"] = round(time.perf_counter() - t0, 3)
        atomic_write_json(marker, stats)
        done[name] = stats
    stats = _stage_stats(done)
    atomic_write_json(ctx.run.data_stats, stats)
    ctx.log.info(
        "data: %d documents in, %d out; %d train and %d held-out tokens",
        stats["docs_in"],
        stats["docs_out"],
        stats["tokens"]["train"],
        stats["tokens"]["heldout"],
    )
    return {
        "docs_in": stats["docs_in"],
        "docs_out": stats["docs_out"],
        "removed": dict(list(stats["removed"].items())[:5]),
        "train_tokens": stats["tokens"]["train"],
        "heldout_tokens": stats["tokens"]["heldout"],
        "vocab_size": done["pack"]["vocab_size"],
    }


def _marker(ctx: StageContext, step: str) -> Path:
    return ctx.run.data_work / f"{step}.done.json"


class Step(NamedTuple):
    """A sub-step: its name, its function, and the outputs it (re)creates."""

    name: str
    fn: Callable[[StageContext, dict[str, Stats]], Stats]
    outputs: list[Path]


def _steps(ctx: StageContext) -> list[Step]:
    """The sub-steps in order. A step is redone if its marker or any of its outputs is missing."""
    r = ctx.run
    return [
        Step("clean", _clean, [r.data_work / "clean.jsonl", r.data_work / "rejects.clean.jsonl"]),
        Step("dedup", _dedup, [r.data / "clean.jsonl", r.data / "rejects.jsonl"]),
        Step("tokenizer", _tokenizer, [r.tokenizer]),
        Step("pack", _pack, [r.shards]),
    ]


def _discard(path: Path) -> None:
    """Remove ``path`` and any temporaries of it (``.<name>.*``) left by an interrupted run."""
    for p in [path, *path.parent.glob(f".{path.name}.*")]:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)


def _reject(step: str, reason: str, doc: Document, **extra: str) -> dict[str, Any]:
    return {
        "step": step,
        "reason": reason,
        "id": doc.id,
        "source": doc.source,
        "offset": doc.offset,
        **extra,
    }


def _counted(docs: Iterator[Document], bar: ProgressHandle) -> Iterator[Document]:
    """Pass ``docs`` through, advancing ``bar`` every ``ADVANCE_EVERY`` documents."""
    n = 0
    for doc in docs:
        yield doc
        n += 1
        if n == ADVANCE_EVERY:
            bar.advance(n)
            n = 0
    bar.advance(n)


def _clean(ctx: StageContext, done: dict[str, Stats]) -> Stats:
    """Read the source, apply the quality filters; write data/work/clean.jsonl and its rejects."""
    cfg = ctx.recipe.data
    filters = build_filters(cfg.filters)
    removed: Counter[str] = Counter()
    docs_in = 0
    work = ctx.run.data_work
    with (
        JsonlWriter(work / "clean.jsonl") as out,
        JsonlWriter(work / "rejects.clean.jsonl") as rejects,
        ctx.progress("data: clean", None) as bar,
    ):
        for doc in _counted(read_source(cfg.source), bar):
            docs_in += 1
            verdict = apply_filters(filters, doc)
            if verdict is True:
                out.write(doc.to_json())
            else:
                removed[verdict[1]] += 1
                rejects.write(_reject("clean", verdict[1], doc))
    lines: Counter[str] = Counter()
    for f in filters:
        lines.update(getattr(f, "lines_removed", {}))
    return {
        "docs_in": docs_in,
        "docs_out": out.count,
        "removed": dict(removed.most_common()),
        "lines_removed": dict(lines.most_common()),
    }


def _dedup(ctx: StageContext, done: dict[str, Stats]) -> Stats:
    """Exact dedup into data/clean.jsonl; data/rejects.jsonl gets every removal so far."""
    cfg = ctx.recipe.data
    dedup = ExactDedup() if cfg.dedup.exact else None
    guard = HeldoutGuard(cfg.heldout_fraction)
    removed: Counter[str] = Counter()
    docs_in = done["clean"]["docs_out"]
    with (
        JsonlWriter(ctx.run.data / "clean.jsonl") as out,
        JsonlWriter(ctx.run.data / "rejects.jsonl") as rejects,
        ctx.progress("data: dedup", docs_in) as bar,
    ):
        with open(ctx.run.data_work / "rejects.clean.jsonl", encoding="utf-8") as f:
            for line in f:
                rejects.write_raw(line)
        for doc in _counted(read_documents(ctx.run.data_work / "clean.jsonl"), bar):
            first = dedup.dup_of(doc) if dedup is not None else None
            if first is None:
                out.write(doc.to_json())
                guard.observe(doc.id)
            else:
                removed["dedup:exact"] += 1
                rejects.write(_reject("dedup", "dedup:exact", doc, dup_of=first))
        if out.count == 0:
            raise StageError(
                f"no documents left after cleaning and dedup ({docs_in} passed the filters); "
                f"removals by reason: {done['clean']['removed'] | dict(removed)}, each listed "
                f"in {ctx.run.data_work / 'rejects.clean.jsonl'}"
            )
    forced = sorted(guard.forced())
    heldout = guard.heldout + len(forced)
    return {
        "docs_in": docs_in,
        "docs_out": out.count,
        "removed": dict(removed.most_common()),
        "heldout_forced": forced,
        "split_docs": {"train": out.count - heldout, "heldout": heldout},
    }


def _split(ctx: StageContext, done: dict[str, Stats]) -> HeldoutSplit:
    forced = frozenset(done["dedup"]["heldout_forced"])
    return HeldoutSplit(ctx.recipe.data.heldout_fraction, forced)


def _tokenizer(ctx: StageContext, done: dict[str, Stats]) -> Stats:
    """Train byte-level BPE on the train split of data/clean.jsonl."""
    split = _split(ctx, done)
    n_train = done["dedup"]["split_docs"]["train"]
    if n_train == 0:
        raise StageError("the train split is empty; lower data.heldout_fraction or add documents")
    with ctx.progress("data: tokenizer", n_train) as bar:
        docs = read_documents(ctx.run.data / "clean.jsonl")
        train = (d for d in docs if split.split_of(d.id) == TRAIN)
        texts = (d.text for d in _counted(train, bar))
        tok = train_tokenizer(texts, ctx.recipe.tokenizer, ctx.run.tokenizer)
    return {"vocab_size": tok.get_vocab_size(), "docs": n_train}


def _pack(ctx: StageContext, done: dict[str, Stats]) -> Stats:
    """Tokenize data/clean.jsonl into data/shards/ (index.json last)."""
    tok = load_tokenizer(ctx.run.tokenizer)
    with ctx.progress("data: pack", done["dedup"]["docs_out"]) as bar:
        index = pack(
            read_documents(ctx.run.data / "clean.jsonl"),
            tok,
            _split(ctx, done),
            ctx.recipe.data.shard_tokens,
            ctx.run.shards,
            on_docs=bar.advance,
        )
    splits = index["splits"]
    return {
        "dtype": index["dtype"],
        "vocab_size": index["vocab_size"],
        **{
            key: {s: sum(sh[key] for sh in shards) for s, shards in splits.items()}
            for key in ("tokens", "docs", "text_bytes")
        },
        "shards": {s: len(shards) for s, shards in splits.items()},
    }


def _stage_stats(done: dict[str, Stats]) -> Stats:
    """stats.json: per-step stats, then the totals (docs in/out, removals, tokens, seconds)."""
    removed: Counter[str] = Counter()
    for step in done.values():
        removed.update(step.get("removed", {}))
    return {
        "docs_in": done["clean"]["docs_in"],
        "docs_out": done["dedup"]["docs_out"],
        "removed": dict(removed.most_common()),
        "lines_removed": done["clean"]["lines_removed"],
        "tokens": done["pack"]["tokens"],
        "seconds": {name: step["seconds"] for name, step in done.items()},
        "steps": done,
    }
