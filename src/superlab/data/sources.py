"""A mixture's sources through the data stage: inputs by source, per-source audit, tagged shards.

With ``data.sources`` every source runs through the whole pipeline with its own reader
and (overridden) filter thresholds; its inputs come in the order the sources are listed,
so dedup, which keeps the first copy in corpus order, keeps the copy from the source
listed first. Documents carry their source in ``metadata["mix_source"]`` and ids
``<source>/<id>``; every removal in ``rejects.jsonl`` names it.

Per source (``stats.json`` ``sources``): documents, UTF-8 bytes and tokens in and out of
each step, removals by reason, train and held-out tokens, and its natural share (its
share of train tokens). Tokens before packing are estimated from bytes with the source's
own bytes per token after packing (``tokens_estimated: true``). Packed shards live under
``data/shards/<source>/`` and every index entry names its ``source``.

Weights and ``max_epochs`` are left out of the data manifest: they act in the training
loader only, so runs that differ only in weights share one data stage.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from superlab.common import atomic_dir, atomic_write_json
from superlab.config.data import DataConfig
from superlab.data.pipeline.dedup import EXACT
from superlab.data.pipeline.shards import MIX_SOURCE, ShardFiles
from superlab.data.pipeline.steps import StepStats
from superlab.data.readers import list_inputs, read_documents
from superlab.data.split import SPLITS, HeldoutSplit, heldout_score

LOADER_ONLY = ("weight", "max_epochs")  # source fields the data stage's outputs ignore


def source_inputs(cfg: DataConfig) -> list[tuple[str | None, str]]:
    """(source name, input) for every input: the sources' inputs in listed order, or the
    single ``data.source``'s with no name."""
    if not cfg.sources:
        return [(None, name) for name in list_inputs(cfg.source)]
    return [(src.name, name) for src in cfg.sources for name in list_inputs(src)]


def without_loader_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The data section's dump less each source's weight and max_epochs."""
    sources = [{k: v for k, v in s.items() if k not in LOADER_ONLY} for s in data["sources"]]
    return {**data, "sources": sources}


def source_stats(
    sources: list[str | None],
    shards: list[ShardFiles],
    keys: list[dict[str, list[Any]]],
    removals: dict[str, dict[tuple[int, int], str]],
) -> dict[str, dict[str, Any]]:
    """Per source: the clean steps summed over its shards, then exact and near dedup."""
    steps: dict[str, dict[str, StepStats]] = defaultdict(dict)
    for k, files in enumerate(shards):
        marker = json.loads(files.marker.read_text(encoding="utf-8"))
        for name, s in marker["steps"].items():
            steps[str(sources[k])].setdefault(name, StepStats()).add(StepStats.from_json(s))
    for step in removals:
        for src in steps:
            steps[src][step] = StepStats()
    for k, shard in enumerate(keys):
        src = str(sources[k])
        for pos, size in enumerate(shard["bytes"]):
            for step, found in removals.items():  # as merge: exact, then near on what is left
                st = steps[src][step]
                st.docs_in += 1
                st.bytes_in += size
                if (k, pos) in found:
                    st.removed["dedup:exact" if step == EXACT else "dedup:near"] += 1
                    break
                st.docs_out += 1
                st.bytes_out += size
    out = {}
    for src, by_step in steps.items():
        removed: Counter[str] = Counter()
        for s in by_step.values():
            removed.update(s.removed)
        last = list(by_step.values())[-1]
        out[src] = {
            "docs_in": by_step["read"].docs_in,
            "docs_out": last.docs_out,
            "removed": dict(sorted(removed.items(), key=lambda kv: (-kv[1], kv[0]))),
            "steps": {name: s.to_json() for name, s in by_step.items()},
        }
    return out


def heldout_per_source(
    sources: list[str | None],
    keys: list[dict[str, list[Any]]],
    removals: dict[str, dict[tuple[int, int], str]],
    fraction: float,
) -> set[str]:
    """Ids to force into held-out so that every source has a held-out document to score:
    the lowest-scoring surviving id of each source with two or more documents and none
    in held-out."""
    if fraction <= 0:
        return set()
    best: dict[str, tuple[float, str]] = {}
    count: Counter[str] = Counter()
    has: set[str] = set()
    for k, shard in enumerate(keys):
        src = str(sources[k])
        for pos, doc_id in enumerate(shard["ids"]):
            if any((k, pos) in found for found in removals.values()):
                continue
            score = heldout_score(doc_id)
            count[src] += 1
            has.update([src] if score < fraction else [])
            if src not in best or (score, doc_id) < best[src]:
                best[src] = (score, doc_id)
    return {best[s][1] for s in best if s not in has and count[s] >= 2}


def pack_sources(
    cfg: DataConfig,
    clean: Path,
    tok: Tokenizer,
    split: HeldoutSplit,
    out_dir: Path,
    pack: Callable[..., dict[str, Any]],
    on_docs: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Pack each source's documents into ``out_dir/<source>/``; one index, entries tagged.

    ``pack`` is ``superlab.data.pack.pack``; it is called once per source on that source's
    documents of ``clean`` (one pass over the file per source).
    """
    splits: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    index: dict[str, Any] = {}
    with atomic_dir(out_dir) as tmp:
        for src in cfg.sources:
            docs = (d for d in read_documents(clean) if d.metadata.get(MIX_SOURCE) == src.name)
            index = pack(docs, tok, split, cfg.shard_tokens, tmp / src.name, on_docs=on_docs)
            for s, entries in index["splits"].items():
                for e in entries:
                    tagged = {**e, "source": src.name, "file": f"{src.name}/{e['file']}"}
                    if "docs_file" in e:
                        tagged["docs_file"] = f"{src.name}/{e['docs_file']}"
                    splits[s].append(tagged)
        index = {**{k: v for k, v in index.items() if k != "splits"}, "splits": splits}
        index["sources"] = [src.name for src in cfg.sources]
        atomic_write_json(tmp / "index.json", index)
    return index


def with_tokens(
    stats: dict[str, dict[str, Any]], index: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Per-source stats completed from the packed index: tokens per split, natural share,
    and estimated tokens in and out of each step (bytes over the source's bytes/token)."""
    tokens: dict[str, Counter[str]] = defaultdict(Counter)
    text_bytes: Counter[str] = Counter()
    for split, entries in index["splits"].items():
        for e in entries:
            tokens[e["source"]][split] += int(e["tokens"])
            text_bytes[e["source"]] += int(e["text_bytes"])
    total_train = sum(t["train"] for t in tokens.values()) or 1
    out = {}
    for src, s in stats.items():
        t = tokens.get(src, Counter())
        n_tokens = t["train"] + t["heldout"]
        per = text_bytes[src] / n_tokens if n_tokens else None
        steps = {}
        for name, st in s["steps"].items():
            est = {}
            if per:
                est = {
                    "tokens_in": round(st["bytes_in"] / per),
                    "tokens_out": round(st["bytes_out"] / per),
                }
            steps[name] = {**st, **est}
        out[src] = {
            **s,
            "steps": steps,
            "tokens": {"train": t["train"], "heldout": t["heldout"]},
            "bytes_per_token": round(per, 4) if per else None,
            "tokens_estimated": True,
            "natural_share": t["train"] / total_train,
        }
    return out
