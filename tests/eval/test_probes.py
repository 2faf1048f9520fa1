from __future__ import annotations

import re

import pytest
import torch

from superlab.config.recipe import ProbeMixConfig, ProbeSpec
from superlab.data.probes import KINDS, make_item, make_items, probe_documents
from superlab.eval.lm import Scorer
from superlab.eval.probes.score import (
    chunk_relation,
    distance_bin,
    locate,
    score_items,
    summarize,
)

from .helpers import OracleLM, tiny_model, tokenizer

SPEC = ProbeSpec(kinds=list(KINDS), pairs=12)


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return tokenizer(tmp_path_factory.mktemp("tok") / "tokenizer.json")


@pytest.mark.parametrize("kind", KINDS)
def test_items_are_a_function_of_seed_kind_and_index(kind):
    a = make_items(kind, SPEC, seed=7, n=6)
    assert a == make_items(kind, SPEC, seed=7, n=6)
    assert a[4] == make_item(kind, SPEC, 7, 4)  # independent of how many are made
    assert make_items(kind, SPEC, seed=8, n=6) != a
    assert len({it.prompt for it in a}) == 6
    docs = [d.text for d in probe_documents(ProbeMixConfig(kinds=[kind], docs=3, seed=7))]
    assert docs == [d.text for d in probe_documents(ProbeMixConfig(kinds=[kind], docs=3, seed=7))]
    assert docs != [d.text for d in probe_documents(ProbeMixConfig(kinds=[kind], docs=3, seed=6))]


def test_needed_spans_hold_the_facts_the_answer_depends_on():
    for it in make_items("recall", SPEC, 0, 20):
        (a, b), key = it.needed[0], it.prompt.rsplit("? ", 1)[1]
        assert it.prompt[a:b] == f"{key}{it.answer}"
        assert it.prompt.count(f" {key} ") == 1 and it.prompt.endswith(f" ? {key}")
        assert it.chance == 0.01 and re.fullmatch(r" \d\d", it.answer)
    for it in make_items("multihop", SPEC, 0, 20):
        hop1, hop2 = (it.prompt[a:b] for a, b in it.needed)
        start = it.prompt.rsplit("?? ", 1)[1]
        middle = hop1.split()[1]
        assert hop1 == f"{start} {middle}" and hop2 == f"{middle}{it.answer}"
        assert it.prompt.endswith(f" ?? {start}")
    items = make_items("passkey", SPEC, 0, 10)
    for it in items:
        a, b = it.needed[0]
        assert it.answer.strip() in it.prompt[a:b] and it.chance == 1e-5
    assert [it.meta["depth"] for it in items[:5]] == SPEC.passkey_depths
    first, last = items[0], items[4]  # depth 0 and depth 1
    assert first.needed[0][0] == 0 and last.needed[0][0] > len(last.prompt) * 0.8


def test_training_documents_answer_their_queries():
    cfg = ProbeMixConfig(kinds=["recall", "multihop"], docs=2, queries=3, pairs=8, seed=3)
    docs = list(probe_documents(cfg))
    assert [d.id for d in docs] == [
        "probe-recall-3-0",
        "probe-multihop-3-0",
        "probe-recall-3-1",
        "probe-multihop-3-1",
    ]
    recall = docs[0].text.split()
    facts: dict[str, str] = {}
    asked, k = 0, 0
    while k < len(recall):
        if recall[k] == "?":  # a query: about a fact already given
            assert facts[recall[k + 1]] == recall[k + 2]
            asked, k = asked + 1, k + 3
        else:
            facts[recall[k]] = recall[k + 1]
            k += 2
    assert asked == 3 and len(facts) == 8
    multihop = docs[1].text
    context, *queries = multihop.split(" ?")
    words = context.split()
    facts = dict(zip(words[::2], words[1::2], strict=True))
    two_hop = [q.split() for q in queries if q.startswith("? ")]  # "?? A v" split at " ?"
    assert two_hop and all(facts[facts[a]] == v for _, a, v in two_hop)


@pytest.mark.parametrize(
    ("needed", "query", "chunk", "relation"),
    [
        (((8, 11),), 11, 4, "same"),  # tokens 8..10 and the query all in chunk 2
        (((8, 11),), 10, 4, "same"),
        (((8, 11),), 12, 4, "adjacent"),
        (((8, 11),), 16, 4, "far"),
        (((10, 13),), 30, 4, "straddle"),  # tokens 10..12 sit in chunks 2 and 3
        (((8, 11), (20, 22)), 23, 4, "far"),  # the farther fact decides
        (((8, 11), (20, 22)), 23, 32, "same"),
        (((8, 11), (30, 34)), 40, 32, "straddle"),
    ],
)
def test_chunk_relation(needed, query, chunk, relation):
    assert chunk_relation(needed, query, chunk) == relation


def test_distance_bins():
    assert [distance_bin(d) for d in (0, 15, 16, 200, 5000)] == [
        "0-16",
        "0-16",
        "16-32",
        "128-256",
        "4096+",
    ]


def test_locate_maps_fact_spans_to_the_tokens_that_spell_them(tok):
    model = tiny_model(tok.get_vocab_size())
    scorer = Scorer(model, tok, max_seq_len=256)
    for it in make_items("recall", SPEC, 1, 10) + make_items("multihop", SPEC, 1, 10):
        loc = locate(it, scorer)
        assert loc.prompt_ids[0] == scorer.eos_id
        assert scorer.decode(loc.prompt_ids[1:]) == it.prompt
        assert loc.query == len(loc.prompt_ids) - 1
        for (s, e), (a, b) in zip(loc.needed, it.needed, strict=True):
            text = scorer.decode(loc.prompt_ids[s:e])
            assert it.prompt[a:b] in text and len(text) <= b - a + 8


def test_scorer_loglikelihood_equals_the_models_own_loss(tok):
    model = tiny_model(tok.get_vocab_size())
    scorer = Scorer(model, tok, max_seq_len=256, batch_size=3)
    texts = ["the city river king", "a b c", "north south war team film album species"]
    reqs = [(scorer.encode(t)[:2], scorer.encode(t)[2:]) for t in texts]
    got = scorer.loglikelihood(reqs)
    for (ctx, cont), s in zip(reqs, got, strict=True):
        ids = torch.tensor([ctx + cont])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids[:, :-1]).logits_BTV, -1)[0]
        want = sum(float(logp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont))
        assert s.logprob == pytest.approx(want, abs=1e-4)


def test_scoring_splits_accuracy_by_chunk_relation(tok):
    """An oracle blind outside the query's 32-token chunk: the fault is all of the accuracy."""
    items = make_items("recall", SPEC, 2, 40)
    scorer0 = Scorer(tiny_model(tok.get_vocab_size()), tok, max_seq_len=256)
    located = [locate(it, scorer0) for it in items]
    seqs = [loc.prompt_ids + loc.answer_ids for loc in located]
    C = 32

    def blind(k: int, t: int) -> bool:  # answer positions of items whose fact is not "same"
        loc = located[k]
        return t >= loc.query and chunk_relation(loc.needed, loc.query, C) != "same"

    oracle = OracleLM(seqs, tok.get_vocab_size(), blind)
    rows, skipped = score_items(items, Scorer(oracle, tok, 256, batch_size=8), [C, 1000])
    assert skipped == {} and len(rows) == 40
    s = summarize(rows, 0.01, [C, 1000])
    by = s["by_chunk"][str(C)]
    assert by["same"]["accuracy"] == 1.0 and by["cross"]["accuracy"] == 0.0
    assert by["straddle"]["accuracy"] == 0.0 and by["context_fault"] == 1.0
    assert sum(by[r]["n"] for r in ("same", "adjacent", "far", "straddle")) == 40
    assert min(by[r]["n"] for r in ("same", "adjacent", "far", "straddle")) > 0
    assert s["accuracy"] == by["same"]["n"] / 40 and s["chance"] == 0.01
    assert s["by_chunk"]["1000"]["same"]["n"] == 40  # one chunk holds every item
    assert sum(b["n"] for b in s["by_distance"].values()) == 40
    matched = by["by_distance"]
    assert (
        sum(v["same"]["n"] + v["cross"]["n"] for v in matched.values()) == 40 - by["straddle"]["n"]
    )
    assert all(v["same"]["accuracy"] in (None, 1.0) for v in matched.values())
    row = rows[0]
    assert row["query"] == located[0].query and row["needed"] == [list(located[0].needed[0])]


def test_items_longer_than_the_model_are_skipped_with_a_reason(tok):
    items = make_items("recall", ProbeSpec(pairs=80), 0, 3)
    rows, skipped = score_items(items, Scorer(tiny_model(tok.get_vocab_size()), tok, 64), [8])
    assert rows == [] and skipped == {"longer than max_seq_len 64": 3}


def test_min_pairs_spreads_the_number_of_facts():
    spec = ProbeSpec(pairs=12, min_pairs=4)
    counts = {(it.prompt.count(" ") - 2) // 2 for it in make_items("recall", spec, 0, 60)}
    assert min(counts) == 4 and max(counts) == 12 and len(counts) > 5
    assert make_items("recall", spec, 0, 5) == make_items("recall", spec, 0, 5)
    with pytest.raises(ValueError, match=r"min_pairs \(13\) exceeds pairs \(12\)"):
        ProbeSpec(pairs=12, min_pairs=13)
