from __future__ import annotations

import numpy as np
import pytest
import torch

from superlab.common import RunDir
from superlab.config.recipe import ProbeSpec
from superlab.data.probes import make_items
from superlab.eval.contamination import (
    AuditItem,
    NGramIndex,
    audit,
    min_k_prob,
    min_k_scores,
    ngram_hashes,
    sorted_unique,
)
from superlab.eval.lm import Scorer

from .helpers import english, tiny_model, tokenizer, write_shards


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return tokenizer(tmp_path_factory.mktemp("tok") / "tokenizer.json")


def test_ngram_hashes_match_equal_ngrams_and_skip_document_edges():
    ids = np.array([5, 6, 7, 8, 5, 6, 7, 9, 0, 5, 6, 7, 8])
    h = ngram_hashes(ids, 3)
    assert len(h) == 11 and h.dtype == np.uint64
    assert h[0] == h[4] == h[9]  # "5 6 7" three times
    assert h[1] != h[5]  # "6 7 8" vs "6 7 9"
    assert len(set(h.tolist())) == 8
    no_eos = ngram_hashes(ids, 3, eos=0)
    assert len(no_eos) == 8  # the three windows holding the EOS at 8 are gone
    assert ngram_hashes(ids[:2], 3).size == 0
    rng = np.random.default_rng(0)
    many = ngram_hashes(rng.integers(0, 50_000, 200_000), 13)
    assert len(np.unique(many)) == len(many)  # random 13-grams: no collision
    doubled = np.concatenate([many, many[:1000]])
    assert np.array_equal(sorted_unique(doubled), np.unique(doubled))
    assert sorted_unique(np.empty(0, np.uint64)).size == 0


def _items() -> tuple[list[AuditItem], set[str]]:
    spec = ProbeSpec(pairs=10)
    recall = make_items("recall", spec, 0, 20)
    multihop = make_items("multihop", spec, 0, 10)
    questions = [f"Question {i}: {english(f'q{i}', 25)} Answer: {i * 7}" for i in range(10)]
    items = [AuditItem(it.id, it.prompt + it.answer, 0.0) for it in recall + multihop]
    items += [AuditItem(f"q{i}", q, 0.0) for i, q in enumerate(questions)]
    planted = {items[k].id for k in (0, 3, 7, 21, 25, 31, 38)}
    items = [AuditItem(it.id, it.text, 1.0 if it.id in planted else 0.0) for it in items]
    return items, planted


def test_planted_items_are_all_flagged_and_no_clean_item_is(tmp_path, tok):
    items, planted = _items()
    train = [english(i, 120) for i in range(60)]
    by_id = {it.id: it.text for it in items}
    for k, item_id in enumerate(sorted(planted)):
        if k % 2:  # planted inside a document, with text on both sides
            train[k] = train[k][:200] + " " + by_id[item_id] + " " + train[k][200:]
        else:  # planted as a document of its own
            train.append(by_id[item_id])
    run = RunDir(tmp_path / "run")
    index_meta = write_shards(run, tok, train, [english("h", 80)], shard_tokens=2048)
    assert len(index_meta["splits"]["train"]) > 3  # several shards
    index = NGramIndex.build(run.shards, tmp_path / "ngrams", n=13)
    assert len(index.files) == len(index_meta["splits"]["train"])
    report = audit(index, items, tok, min_overlap=0.7)
    flagged = {r["id"] for r in report["rows"] if r["contaminated"]}
    assert flagged == planted
    assert report["contaminated"] == len(planted) and report["clean"] == len(items) - len(planted)
    assert report["score_contaminated"] == 1.0 and report["score_clean"] == 0.0
    full = [r["overlap"] for r in report["rows"] if r["id"] in planted]
    assert min(full) >= 0.9  # all but possibly the first n-gram (the item's first token)
    assert max(r["overlap"] for r in report["rows"] if r["id"] not in planted) == 0.0


def test_index_build_is_resumable_and_short_items_are_counted_apart(tmp_path, tok):
    run = RunDir(tmp_path / "run")
    write_shards(run, tok, [english(i, 100) for i in range(10)], [english("h")], 1024)
    out = tmp_path / "ngrams"
    first = NGramIndex.build(run.shards, out, n=8)
    stamps = [f.stat().st_mtime_ns for f in first.files]
    again = NGramIndex.build(run.shards, out, n=8)
    assert [f.stat().st_mtime_ns for f in again.files] == stamps
    assert again.size > 0
    report = audit(again, [AuditItem("tiny", "the city", 1.0)], tok, 0.5)
    assert report["too_short"] == 1 and report["rows"][0]["contaminated"] is None
    assert report["score_clean"] is None


def test_min_k_prob_is_the_mean_of_the_lowest_k_percent():
    lp = np.array([-1.0, -5.0, -0.1, -3.0, -0.2, -0.3, -0.4, -0.5, -0.6, -0.7])
    assert min_k_prob(lp, 20) == pytest.approx(-4.0)  # the two lowest: -5 and -3
    assert min_k_prob(lp, 1) == -5.0  # at least one token
    assert min_k_prob(lp, 100) == pytest.approx(lp.mean())
    with pytest.raises(ValueError, match="no tokens"):
        min_k_prob(np.array([]), 20)


def test_min_k_separates_memorised_text_from_unseen_text(tok):
    seen = [english(f"s{i}", 16) for i in range(4)]
    unseen = [english(f"u{i}", 16) for i in range(4)]
    model = tiny_model(tok.get_vocab_size(), d_model=64)
    scorer = Scorer(model, tok, 256)
    rows = [[scorer.eos_id, *scorer.encode(t)] for t in seen]
    width = max(map(len, rows))
    x_BT = torch.tensor([r + [scorer.eos_id] * (width - len(r)) for r in rows])
    y_BT = torch.tensor([r[1:] + [-100] * (width - len(r) + 1) for r in rows])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(30):
        loss = model(x_BT[:, :-1], y_BT[:, : width - 1]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    s, u = min_k_scores(scorer, seen, 20), min_k_scores(scorer, unseen, 20)
    assert min(s) > max(u)
