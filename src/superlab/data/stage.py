"""The ``data`` stage: clean (per input shard, in parallel) -> dedup -> tokenizer -> pack.

Sub-steps run in order; one is complete when ``data/work/<step>.done.json`` exists (its
stats, written last by atomic rename). A run skips complete sub-steps and redoes the
first incomplete one and every one after it, discarding their outputs first. ``clean``
is itself resumable shard by shard (see ``superlab.data.pipeline``): finished shards
are kept, unfinished ones redone. ``data/work/manifest.json`` pins the inputs and
settings the work is for; a run with other inputs or settings is refused, and ``check``
refuses them even once the stage is complete (the runner calls it on every run).

Outputs: ``data/clean.jsonl`` (filtered and deduplicated, the final corpus, in input
order), ``data/rejects.jsonl`` (one line per removal), ``tokenizer/tokenizer.json``,
``data/shards/`` and ``data/stats.json``; with a chat source (``sharegpt``), also
``data/chat.jsonl``, the kept conversations as chat rows for SFT. They are byte-identical
whatever the executor and the number of workers.

With ``data.images`` the stage builds the generated image task's splits instead
(``superlab.data.images.stage``).
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any, NamedTuple

from superlab.common import StageContext, StageError, atomic_write_json
from superlab.data import sources
from superlab.data.chat.documents import has_chat_source, write_chat_rows
from superlab.data.document import Document
from superlab.data.manifest import (
    build_manifest,
    check_manifest,
    load_manifest,
    manifest_changes,
    settings,
)
from superlab.data.pack import pack
from superlab.data.pack_sharded import pack_sharded
from superlab.data.pipeline import components
from superlab.data.pipeline.dedup import EXACT, NEAR, exact_duplicates, load_keys, merge
from superlab.data.pipeline.run import Work, clean_all, counted
from superlab.data.pipeline.shards import discard
from superlab.data.probes import TrainOnly, probe_documents
from superlab.data.readers import read_documents
from superlab.data.split import TRAIN, HeldoutGuard, HeldoutSplit, heldout_score
from superlab.data.tokenizer import load_tokenizer, train_tokenizer
from superlab.data.tokenizer_sample import sample_documents

Stats = dict[str, Any]


class Step(NamedTuple):
    """A sub-step: its name, its function, its outputs, and whether it resumes within itself."""

    name: str
    fn: Callable[[Work, dict[str, Stats]], Stats]
    outputs: list[Any]
    resumable: bool = False  # True: outputs are checked but never discarded here


def run(ctx: StageContext) -> dict[str, Any]:
    """Run (or resume) the data stage; write stats.json; return the summary figures."""
    if ctx.recipe.data.images is not None:  # the generated image task instead of text
        from superlab.data.images.stage import run as run_image_task

        return run_image_task(ctx)
    work = _open_work(ctx)
    done: dict[str, Stats] = {}
    steps = _steps(work)
    redo = False
    try:
        for k, (name, step, outputs, resumable) in enumerate(steps):
            marker = ctx.run.data_work / f"{name}.done.json"
            if not redo and marker.exists() and all(p.exists() for p in outputs):
                done[name] = json.loads(marker.read_text())
                ctx.log.info("data: %s complete before, skipped", name)
                continue
            if not redo:  # this step and every later one run again: forget their markers now
                redo = True
                for later in steps[k:]:
                    (ctx.run.data_work / f"{later.name}.done.json").unlink(missing_ok=True)
            for path in [] if resumable else outputs:
                discard(path)
            ctx.log.info("data: %s", name)
            t0 = time.perf_counter()
            stats = step(work, done)
            stats["seconds"] = round(time.perf_counter() - t0, 3)
            atomic_write_json(marker, stats)
            done[name] = stats
    finally:
        work.close()
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


def check(ctx: StageContext) -> None:
    """Refuse a run whose data work was made from other inputs or settings, even if complete.

    The runner calls this on every invocation that selects the stage or runs a stage that
    needs it, finished or not: an input appended to after the run must not pass as
    "nothing to do". On a complete stage it costs a stat per input file (a file whose size
    or mtime changed is fingerprinted again to say how; see ``superlab.data.manifest``).
    """
    path = ctx.run.data_work / "manifest.json"
    if ctx.recipe.data.images is not None:
        return  # the image task: each split's marker carries its settings
    if not path.is_file():
        return  # nothing made yet (or made before manifests): the stage writes one
    try:
        inputs, config = _inputs(ctx)
    except StageError as e:  # e.g. an input file gone
        raise StageError(f"data.source: {e}") from None
    if not ctx.run.marker("data").exists():
        # unfinished: the stage reads every input anyway; deleting data/work starts it over
        check_manifest(path, build_manifest(inputs, config))
        return
    stored = load_manifest(path)
    if changes := manifest_changes(stored, build_manifest(inputs, config, known=stored)):
        # Finished: later stages were built on it, so only a new run starts it over.
        raise StageError(
            f"{ctx.run.root}: the data stage is complete, but on other inputs or settings: "
            + "; ".join(changes)
            + f". Give the run a new name (--set name=...) or remove {ctx.run.root} to start"
            " over, or undo the change"
        )


def _inputs(ctx: StageContext) -> tuple[list[str], dict[str, Any]]:
    """The inputs, and the settings the outputs depend on (see ``manifest.settings``)."""
    recipe = ctx.recipe
    inputs = [name for _, name in sources.source_inputs(recipe.data)]
    if not inputs:
        raise StageError("data.source names no inputs")
    data = sources.without_loader_fields(recipe.data.model_dump(mode="json", exclude={"images"}))
    config = settings(data, recipe.tokenizer.model_dump(mode="json"))
    return inputs, config


def _open_work(ctx: StageContext) -> Work:
    """List the inputs and check (or write) the manifest; work of unknown origin is discarded."""
    work_dir = ctx.run.data_work
    inputs, config = _inputs(ctx)
    manifest = work_dir / "manifest.json"
    if work_dir.exists() and not manifest.exists():
        shutil.rmtree(work_dir)  # no manifest: we cannot tell what it was made from
    work_dir.mkdir(parents=True, exist_ok=True)
    check_manifest(manifest, build_manifest(inputs, config))
    work = Work(ctx, inputs)
    work.sources = [src for src, _ in sources.source_inputs(ctx.recipe.data)]
    return work


def _steps(work: Work) -> list[Step]:
    """The sub-steps in order. A step is redone if its marker or any of its outputs is missing."""
    r = work.ctx.run
    shard_files = [p for sh in work.shards for p in sh]
    cfg = work.ctx.recipe.data
    audit = [r.data / "duplicates.parquet"] if work.ctx.recipe.data.dedup.minhash.enabled else []
    return [
        Step("clean", clean_all, shard_files, resumable=True),
        Step("dedup", _dedup, [r.data / "clean.jsonl", r.data / "rejects.jsonl", *audit]),
        *([Step("chat", _chat, [r.data / "chat.jsonl"])] if has_chat_source(cfg) else []),
        Step("tokenizer", _tokenizer, [r.tokenizer]),
        Step("pack", _pack, [r.shards]),
    ]


def _dedup(work: Work, done: dict[str, Stats]) -> Stats:
    """Exact, then near dedup across all shards; write data/clean.jsonl and data/rejects.jsonl."""
    ctx, cfg = work.ctx, work.ctx.recipe.data
    t0 = time.perf_counter()
    keys = load_keys(work.shards)
    removals = {EXACT: exact_duplicates(keys)} if cfg.dedup.exact else {}
    seconds = {EXACT: time.perf_counter() - t0}
    docs = [sh.docs for sh in work.shards]
    ids = [k["ids"] for k in keys]
    t0 = time.perf_counter()
    near, minhash = components.near_duplicates(
        docs, ids, ctx.run.data_work, cfg, work.executor, ctx.run.data / "duplicates.parquet"
    )
    seconds[NEAR] = time.perf_counter() - t0  # wall time: signatures run in parallel
    if minhash is not None:
        removals[NEAR] = near
    docs_in = done["clean"]["docs_out"]
    n_removed = len({pos for found in removals.values() for pos in found})
    if docs_in - n_removed == 0:
        raise StageError(
            f"no documents left after cleaning and dedup ({docs_in} passed the filters); "
            f"removals by reason: {done['clean']['removed']}, dedup: {n_removed}; each is "
            f"listed in {ctx.run.data_work / 'filtered'}/*.rejects.jsonl"
        )
    guard = HeldoutGuard(cfg.heldout_fraction)
    with ctx.progress("data: dedup", docs_in) as bar:
        steps = merge(
            work.shards,
            keys,
            removals,
            ctx.run.data / "clean.jsonl",
            ctx.run.data / "rejects.jsonl",
            guard,
            bar.advance,
        )
    removed: Counter[str] = Counter()
    for name, s in steps.items():
        removed.update(s.removed)
        s.seconds = round(seconds.get(name, 0.0), 3)
    forced = sorted(guard.forced())
    per_source = None
    if cfg.sources:  # a mixture: the audit per source, and held-out text in each source
        per_source = sources.source_stats(work.sources, work.shards, keys, removals)
        extra = sources.heldout_per_source(work.sources, keys, removals, cfg.heldout_fraction)
        forced = sorted(set(forced) | extra)
    heldout = guard.heldout + sum(heldout_score(i) >= cfg.heldout_fraction for i in forced)
    return {
        **({} if per_source is None else {"sources": per_source}),
        "docs_in": docs_in,
        "docs_out": guard.docs,
        "removed": dict(removed.most_common()),
        "steps": {name: s.to_json() for name, s in steps.items()},
        "minhash": minhash,
        "heldout_forced": forced,
        "split_docs": {"train": guard.docs - heldout, "heldout": heldout},
    }


def _chat(work: Work, done: dict[str, Stats]) -> Stats:
    """Write data/chat.jsonl: the kept conversations as chat rows (``messages``) for SFT."""
    run, split = work.ctx.run, _split(done, work.ctx.recipe.data.heldout_fraction)
    docs = read_documents(run.data / "clean.jsonl")
    return write_chat_rows(docs, run.data / "chat.jsonl", split.split_of)


def _split(done: dict[str, Stats], fraction: float) -> HeldoutSplit:
    return HeldoutSplit(fraction, frozenset(done["dedup"]["heldout_forced"]))


def _tokenizer(work: Work, done: dict[str, Stats]) -> Stats:
    """Train byte-level BPE on the train split of data/clean.jsonl."""
    ctx = work.ctx
    split = _split(done, ctx.recipe.data.heldout_fraction)
    n_train = done["dedup"]["split_docs"]["train"]
    if n_train == 0:
        raise StageError("the train split is empty; lower data.heldout_fraction or add documents")
    sample = ctx.recipe.data.tokenizer_sample
    sampled: dict[str, int] = {}
    with ctx.progress("data: tokenizer", n_train) as bar:
        docs = read_documents(ctx.run.data / "clean.jsonl")
        train: Iterable[Document] = (d for d in docs if split.split_of(d.id) == TRAIN)
        if sample.docs is not None or sample.bytes is not None:
            train = sample_documents(counted(iter(train), bar), sample.docs, sample.bytes)
            n_bytes = sum(len(d.text.encode("utf-8")) for d in train)
            sampled = {"sample_docs": len(train), "sample_bytes": n_bytes}
        texts: Iterable[str] = (d.text for d in (train if sampled else counted(train, bar)))
        probes = ctx.recipe.data.probes
        if probes is not None and probes.docs:  # the probe documents are train text too
            texts = chain(texts, (d.text for d in probe_documents(probes)))
        tok = train_tokenizer(iter(texts), ctx.recipe.tokenizer, ctx.run.tokenizer)
    return {"vocab_size": tok.get_vocab_size(), "docs": n_train, **sampled}


def _pack(work: Work, done: dict[str, Stats]) -> Stats:
    """Tokenize data/clean.jsonl into data/shards/ (index.json last)."""
    ctx = work.ctx
    tok = load_tokenizer(ctx.run.tokenizer)
    docs: Iterable[Document] = read_documents(ctx.run.data / "clean.jsonl")
    split = _split(done, ctx.recipe.data.heldout_fraction)
    probes = ctx.recipe.data.probes
    n_probes = 0 if probes is None else probes.docs * len(probes.kinds)
    if probes is not None and n_probes:  # long-context probe documents, train split only
        docs, split = chain(docs, probe_documents(probes)), TrainOnly(split)
    with ctx.progress("data: pack", done["dedup"]["docs_out"] + n_probes) as bar:
        if ctx.recipe.data.sources:  # a mixture: shards per source, tagged in the index
            clean = ctx.run.data / "clean.jsonl"
            index = sources.pack_sources(
                ctx.recipe.data, clean, tok, split, ctx.run.shards, pack, bar.advance
            )
        else:  # tokenized a piece per task, shards merged in order (superlab.data.pack_sharded)
            index = pack_sharded(
                ctx.run.data / "clean.jsonl",
                ctx.run.tokenizer,
                split,
                ctx.recipe.data.shard_tokens,
                ctx.run.shards,
                ctx.run.data_work / "pack",
                lambda fn, items: work.executor().map(fn, items),
                probes=probes.model_dump(mode="json") if probes is not None and n_probes else None,
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
        "probe_docs": n_probes,
        **({"index": index} if ctx.recipe.data.sources else {}),
    }


def _stage_stats(done: dict[str, Stats]) -> Stats:
    """stats.json: totals, then the funnel ``steps``: read, each filter, dedup, tokenizer, pack."""
    clean, dedup = done["clean"], done["dedup"]
    removed: Counter[str] = Counter(clean["removed"])
    removed.update(dedup["removed"])
    if "sources" in dedup:  # a mixture: the per-source audit, tokens from the packed index
        per_source = {"sources": sources.with_tokens(dedup["sources"], done["pack"]["index"])}
    else:
        per_source = {}
    return {
        "docs_in": clean["docs_in"],
        "docs_out": dedup["docs_out"],
        "removed": dict(sorted(removed.items(), key=lambda kv: (-kv[1], kv[0]))),
        **{c: clean[c] for c in components.COUNTERS},
        "tokens": done["pack"]["tokens"],
        "seconds": {name: step["seconds"] for name, step in done.items()},
        "shards": clean["shards"],
        "minhash": dedup["minhash"],
        **({"chat": done["chat"]} if "chat" in done else {}),
        "steps": {
            **clean["steps"],
            **dedup["steps"],
            "tokenizer": done["tokenizer"],
            "pack": {k: v for k, v in done["pack"].items() if k != "index"},
        },
        **per_source,
    }
