"""Probe items and training documents, generated as text from a seed.

Three kinds, each a context of facts, then a query whose answer is one fact:

- ``recall`` (associative recall; Zoology's MQAR, Arora et al. 2023): ``pairs``
  key-value facts such as ``river 41``; the query ``? river`` asks for `` 41``. Keys
  are distinct (common nouns, or random letter strings), values random numbers, so a
  value cannot be guessed from anything but its fact. A fact is a key token then a
  value token, so an induction head (match the key, copy what followed it) solves it.
- ``multihop``: chains ``A B`` and ``B 41`` placed apart among ``key value``
  distractors (one other chain among them, so word values give nothing away); the
  query ``?? A`` (two hops) asks for `` 41``.
- ``passkey`` (Mohtashami & Jaggi 2023): their filler sentences, with "The pass key is
  68231. Remember it. 68231 is the pass key." inserted at a chosen depth; the query
  "What is the pass key? The pass key is" asks for ``68231``.

Item ``i`` of a kind depends only on ``(seed, kind, i)``, never on how many items are
made. Each item records the character spans of the facts its answer needs (``needed``)
so that, once tokenized, it can be classified by where those facts sit relative to the
query and to chunk edges (``superlab.eval.probes.score``). ``chance`` is the
probability of the answer for a guess uniform over the answer space (values are
uniform over it).

A training document is the same context with ``queries`` answered queries (recall:
interleaved with the facts, each about an earlier fact; multihop and passkey: at the
end), so a model can learn the task from the mix (``data.probes``).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from superlab.config.recipe import ProbeSpec

KINDS = ("recall", "multihop", "passkey")

# Mohtashami & Jaggi 2023 ("Landmark Attention"), the passkey filler and needle.
FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
NEEDLE = " The pass key is {key}. Remember it. {key} is the pass key."
QUESTION = " What is the pass key? The pass key is"


@dataclass(frozen=True)
class ProbeItem:
    """One query: the prompt, the expected answer and where the facts it needs sit."""

    id: str
    kind: str
    prompt: str
    answer: str
    needed: tuple[tuple[int, int], ...]  # character spans [start, end) in ``prompt``
    chance: float
    meta: dict[str, Any] = field(default_factory=dict)


# 256 common English nouns: keys when ``keys: words`` (a leading space and the word are
# usually one token of a byte-level BPE trained on English, so a key is one token).
_NOUNS = """
time year people way day man thing woman life child world school state family student
group country problem hand part place case week company system program question work
government number night point home water room mother area money story fact month lot
right study book eye job word business issue side kind head house service friend father
power hour game line end member law car city community name president team minute idea
kid body information back parent face others level office door health person art war
history party result change morning reason research girl guy moment air teacher force
education foot boy age policy process music market sense nation plan college interest
death experience effect use class control care field development role effort rate heart
drug show leader light voice wife police mind price report decision son view
relationship town road arm difference value building action model season society tax
director position player record paper space ground form event official matter center
couple site project activity star table need court oil situation cost industry figure
street image phone data picture practice piece land product doctor wall patient worker
news test movie north love support technology step baby computer type attention film
tree source organization hair window evidence population river island village church
army album species district language science king song garden bridge forest valley lake
mountain ocean horse bird fish dog cat apple bread stone glass metal gold silver cloud
rain snow wind fire earth moon sun farm ship train wheel card box coin ring shirt
"""
KEY_WORDS = tuple(_NOUNS.split())


def _rng(seed: int, kind: str, i: int) -> np.random.Generator:
    return np.random.default_rng([seed, KINDS.index(kind), i])


def _keys(rng: np.random.Generator, n: int, spec: ProbeSpec) -> list[str]:
    """``n`` distinct keys: common nouns, or random strings of ``spec.key_letters`` letters."""
    if spec.keys == "words":
        return [KEY_WORDS[j] for j in rng.choice(len(KEY_WORDS), size=n, replace=False)]
    letters = spec.key_letters
    alphabet = np.array(list(string.ascii_lowercase))
    seen: dict[str, None] = {}
    while len(seen) < n:
        seen["".join(rng.choice(alphabet, letters))] = None
    return list(seen)


def _n_pairs(spec: ProbeSpec, rng: np.random.Generator) -> int:
    """Facts in this context: ``pairs``, or uniform in [min_pairs, pairs]."""
    if spec.min_pairs is None:
        return spec.pairs
    return int(rng.integers(spec.min_pairs, spec.pairs + 1))


def _value(rng: np.random.Generator, digits: int) -> str:
    return str(int(rng.integers(0, 10**digits))).zfill(digits)


def _join(facts: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Each fact after a space (so every key reads as in a query, ``? key=``); their spans."""
    text, spans = "", []
    for fact in facts:
        text += " "
        spans.append((len(text), len(text) + len(fact)))
        text += fact
    return text, spans


def _recall_context(
    spec: ProbeSpec, rng: np.random.Generator
) -> tuple[str, list[tuple[int, int]], list[tuple[str, str]]]:
    keys = _keys(rng, _n_pairs(spec, rng), spec)
    pairs = [(k, _value(rng, spec.value_digits)) for k in keys]
    text, spans = _join([f"{k} {v}" for k, v in pairs])
    return text, spans, pairs


def _multihop_context(
    spec: ProbeSpec, rng: np.random.Generator
) -> tuple[str, list[tuple[int, int]], list[tuple[str, str, str]], list[int]]:
    """Two chains ``A B``, ``B v`` among distractors; the facts in random order.

    Returns the text, each fact's span, the chains (A, B, v) and, per chain, the
    indices of its two facts in the text.
    """
    n_chains = 2
    n = _n_pairs(spec, rng)
    keys = _keys(rng, n + n_chains, spec)
    chains = [
        (keys[2 * c], keys[2 * c + 1], _value(rng, spec.value_digits)) for c in range(n_chains)
    ]
    facts = [f"{a} {b}" for a, b, _ in chains] + [f"{b} {v}" for _, b, v in chains]
    distractors = keys[2 * n_chains : n + n_chains]
    facts += [f"{k} {_value(rng, spec.value_digits)}" for k in distractors]
    order = rng.permutation(len(facts))
    text, spans = _join([facts[j] for j in order])
    where = {int(j): pos for pos, j in enumerate(order)}
    hops = [x for c in range(n_chains) for x in (where[c], where[n_chains + c])]
    return text, spans, chains, hops


def _passkey_context(
    spec: ProbeSpec, rng: np.random.Generator, depth: float
) -> tuple[str, tuple[int, int], str]:
    key = _value(rng, spec.passkey_digits)
    at = round(depth * spec.passkey_filler)
    before, after = FILLER * at, FILLER * (spec.passkey_filler - at)
    needle = NEEDLE.format(key=key)
    text = (before + needle + (" " if after else "") + after).lstrip()
    start = text.index(needle.strip())
    return text, (start, start + len(needle.strip())), key


def make_item(kind: str, spec: ProbeSpec, seed: int, i: int) -> ProbeItem:
    """Item ``i`` of ``kind``: a function of ``(spec, seed, kind, i)`` only."""
    rng = _rng(seed, kind, i)
    item_id = f"{kind}-{seed}-{i}"
    chance = 10.0**-spec.value_digits
    if kind == "recall":
        text, spans, pairs = _recall_context(spec, rng)
        q = int(rng.integers(0, len(pairs)))
        key, value = pairs[q]
        prompt = f"{text} ? {key}"
        return ProbeItem(item_id, kind, prompt, f" {value}", (spans[q],), chance, {"pair": q})
    if kind == "multihop":
        text, spans, chains, hops = _multihop_context(spec, rng)
        a, _, value = chains[0]
        prompt = f"{text} ?? {a}"
        needed = (spans[hops[0]], spans[hops[1]])
        return ProbeItem(item_id, kind, prompt, f" {value}", needed, chance)
    if kind == "passkey":
        depths = spec.passkey_depths
        depth = depths[i % len(depths)]
        text, span, key = _passkey_context(spec, rng, depth)
        return ProbeItem(
            item_id,
            kind,
            text + QUESTION,
            f" {key}",
            (span,),
            10.0**-spec.passkey_digits,
            {"depth": depth},
        )
    raise ValueError(f"unknown probe kind {kind!r}; kinds are {', '.join(KINDS)}")


def make_items(kind: str, spec: ProbeSpec, seed: int, n: int) -> list[ProbeItem]:
    """Items ``0..n-1`` of ``kind``."""
    return [make_item(kind, spec, seed, i) for i in range(n)]


def training_document(kind: str, spec: ProbeSpec, seed: int, i: int, queries: int) -> str:
    """A context of ``kind`` followed by ``queries`` answered queries (document ``i``)."""
    rng = _rng(seed, kind, i)
    if kind == "recall":
        # Queries interleaved with the facts (after fact p, about a random fact before it),
        # so training sees every distance, short ones included, as Zoology's MQAR does.
        text, spans, pairs = _recall_context(spec, rng)
        after = np.sort(rng.integers(1, len(pairs) + 1, size=queries))
        out, start = [], 0
        for p in after:
            out.append(text[start : spans[p - 1][1]])
            start = spans[p - 1][1]
            key, value = pairs[int(rng.integers(0, p))]
            out.append(f" ? {key} {value}")
        return "".join(out) + text[start:]
    if kind == "multihop":
        text, _, chains, _ = _multihop_context(spec, rng)
        # Alternate two-hop and one-hop questions about the chains.
        asks = []
        for q in range(queries):
            a, b, v = chains[q % len(chains)]
            asks.append(f" ?? {a} {v}" if q % 2 == 0 else f" ? {a} {b}")
        return text + "".join(asks)
    if kind == "passkey":
        depths = spec.passkey_depths
        text, _, key = _passkey_context(spec, rng, depths[int(rng.integers(0, len(depths)))])
        return text + QUESTION + f" {key}."
    raise ValueError(f"unknown probe kind {kind!r}; kinds are {', '.join(KINDS)}")
