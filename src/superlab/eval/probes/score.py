"""Score probe items with a model and split accuracy by distance and by chunk relation.

An item is tokenized as EOS + prompt (a document start, as in training), then its
answer. ``query`` is the position of the last prompt token, the one whose output
predicts the answer's first token; ``needed`` are the token spans ``[start, end)`` of
the facts the answer depends on. Both are recorded per item, so any chunk size can
classify it afterwards.

Chunk relation for chunk size C (Llama 4's chunked attention: position p sits in
chunk ``p // C``, and a query sees only its own chunk):

- ``straddle``: some needed span crosses a chunk edge (its tokens sit in two chunks);
- ``same``: every needed token is in the query's chunk;
- ``adjacent``: the farthest needed span is one chunk before the query's;
- ``far``: it is two or more chunks before.

The context fault is ``accuracy(same) - accuracy(cross)``, cross = adjacent + far.
An item counts as correct when greedy decoding reproduces its answer exactly (checked
teacher-forced: every answer token is the argmax given the tokens before it, which is
what greedy decoding would emit).
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from superlab.data.probes.generate import ProbeItem
from superlab.eval.lm import Scorer

RELATIONS = ("same", "adjacent", "far", "straddle")
DISTANCE_EDGES = (0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


@dataclass(frozen=True)
class LocatedItem:
    """A probe item as token ids, with the positions chunk relations are computed from."""

    item: ProbeItem
    prompt_ids: list[int]
    answer_ids: list[int]
    needed: tuple[tuple[int, int], ...]  # token spans [start, end)
    query: int  # position of the last prompt token


def locate(item: ProbeItem, scorer: Scorer) -> LocatedItem:
    """Tokenize ``item`` and map its needed character spans to token spans."""
    enc = scorer.tokenizer.encode(item.prompt, add_special_tokens=False)
    offsets = enc.offsets
    spans = []
    for a, b in item.needed:
        toks = [t for t, (s, e) in enumerate(offsets) if e > a and s < b]
        if not toks:
            raise ValueError(f"item {item.id}: span {a}:{b} covers no token")
        spans.append((toks[0] + 1, toks[-1] + 2))  # +1: the leading EOS
    prompt_ids = [scorer.eos_id, *enc.ids]
    return LocatedItem(item, prompt_ids, scorer.encode(item.answer), tuple(spans), len(enc.ids))


def chunk_relation(needed: tuple[tuple[int, int], ...], query: int, chunk: int) -> str:
    """``same``, ``adjacent``, ``far`` or ``straddle`` for chunk size ``chunk`` (see module doc)."""
    if any(s // chunk != (e - 1) // chunk for s, e in needed):
        return "straddle"
    gap = query // chunk - min(s // chunk for s, _ in needed)
    return "same" if gap == 0 else "adjacent" if gap == 1 else "far"


def distance_bin(distance: int) -> str:
    """The power-of-two bin ``"lo-hi"`` holding a token distance."""
    for lo, hi in itertools.pairwise(DISTANCE_EDGES):
        if distance < hi:
            return f"{lo}-{hi}"
    return f"{DISTANCE_EDGES[-1]}+"


def score_items(
    items: list[ProbeItem], scorer: Scorer, chunk_sizes: list[int]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Per-item results (correct, positions, relation per chunk size) and skips by reason."""
    located, skipped = [], Counter[str]()
    for item in items:
        loc = locate(item, scorer)
        if len(loc.prompt_ids) + len(loc.answer_ids) - 1 > scorer.max_seq_len:
            skipped[f"longer than max_seq_len {scorer.max_seq_len}"] += 1
            continue
        located.append(loc)
    scored = scorer.loglikelihood([(loc.prompt_ids, loc.answer_ids) for loc in located])
    rows = []
    for loc, s in zip(located, scored, strict=True):
        first = min(a for a, _ in loc.needed)
        rows.append(
            {
                "id": loc.item.id,
                "kind": loc.item.kind,
                "correct": s.greedy,
                "logprob": s.logprob,
                "query": loc.query,
                "needed": [list(span) for span in loc.needed],
                "distance": loc.query - first,
                "tokens": len(loc.prompt_ids) + len(loc.answer_ids),
                "relation": {str(c): chunk_relation(loc.needed, loc.query, c) for c in chunk_sizes},
                **loc.item.meta,
            }
        )
    return rows, dict(skipped)


def _acc(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    return {"n": n, "accuracy": sum(r["correct"] for r in rows) / n if n else None}


def summarize(rows: list[dict[str, Any]], chance: float, chunk_sizes: list[int]) -> dict[str, Any]:
    """Accuracy overall, by distance bin, by depth (passkey) and by chunk relation per size."""
    out: dict[str, Any] = {**_acc(rows), "chance": chance}
    by_dist: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_dist[distance_bin(r["distance"])].append(r)
    out["by_distance"] = {
        b: _acc(by_dist[b]) for b in sorted(by_dist, key=lambda b: int(b.split("-")[0].rstrip("+")))
    }
    if any("depth" in r for r in rows):
        depths = sorted({r["depth"] for r in rows})
        out["by_depth"] = {str(d): _acc([r for r in rows if r["depth"] == d]) for d in depths}
    chunks = {}
    for c in chunk_sizes:
        groups = {rel: [r for r in rows if r["relation"][str(c)] == rel] for rel in RELATIONS}
        split = {rel: _acc(g) for rel, g in groups.items()}
        cross = _acc(groups["adjacent"] + groups["far"])
        same = split["same"]["accuracy"]
        split["cross"] = cross
        split["context_fault"] = (
            same - cross["accuracy"] if same is not None and cross["accuracy"] is not None else None
        )
        # Same vs cross within each distance bin: nearer facts are easier whatever the
        # attention, so this separates the chunk edge from distance.
        split["by_distance"] = {
            b: {
                "same": _acc([r for r in by_dist[b] if r["relation"][str(c)] == "same"]),
                "cross": _acc(
                    [r for r in by_dist[b] if r["relation"][str(c)] in ("adjacent", "far")]
                ),
            }
            for b in out["by_distance"]
        }
        chunks[str(c)] = split
    out["by_chunk"] = chunks
    return out
