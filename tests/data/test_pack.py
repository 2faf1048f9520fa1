from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from superlab.config.recipe import TokenizerConfig
from superlab.data import Document
from superlab.data import pack as pack_module
from superlab.data.pack import pack, shard_dtype
from superlab.data.split import HeldoutGuard, HeldoutSplit, heldout_score
from superlab.data.tokenizer import EOS, train_tokenizer

from .helpers import english


@pytest.fixture(scope="module")
def tok(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    return train_tokenizer((english(i) for i in range(100)), TokenizerConfig(vocab_size=300), path)


def docs(n: int) -> list[Document]:
    return [Document(f"doc-{i}", english(i, paragraphs=1 + i % 3)) for i in range(n)]


def read_split(out: Path, index: dict, split: str) -> list[np.ndarray]:
    """Every document of a split, as read through numpy.memmap per the contract."""
    result = []
    for shard in index["splits"][split]:
        tokens = np.memmap(out / shard["file"], dtype=np.dtype(index["dtype"]).newbyteorder("<"))
        starts = np.load(out / shard["docs_file"])
        assert starts.dtype == np.int64 and len(starts) == shard["docs"]
        assert len(tokens) == shard["tokens"]
        ends = [*starts[1:], len(tokens)]
        result += [np.asarray(tokens[s:e]) for s, e in zip(starts, ends, strict=True)]
    return result


def test_dtype_by_vocab_size() -> None:
    assert shard_dtype(65536).name == "uint16"
    assert shard_dtype(65537).name == "uint32"


def test_shards_follow_the_contract_and_round_trip(tok: Tokenizer, tmp_path: Path) -> None:
    corpus = docs(60)
    split = HeldoutSplit(0.2)
    out = tmp_path / "shards"
    index = pack(corpus, tok, split, shard_tokens=1024, out_dir=out)
    assert index == json.loads((out / "index.json").read_text())
    assert set(index) == {"dtype", "vocab_size", "eos_id", "splits"}
    assert (index["dtype"], index["vocab_size"], index["eos_id"]) == ("uint16", 300, 0)
    assert set(index["splits"]) == {"train", "heldout"}
    for split_name, shards in index["splits"].items():
        for k, shard in enumerate(shards):
            assert set(shard) == {"file", "docs_file", "tokens", "docs", "text_bytes"}
            assert shard["file"] == f"{split_name}-{k:05d}.bin"
            assert shard["docs_file"] == f"{split_name}-{k:05d}.docs.npy"
    files = {p.name for p in out.iterdir()}
    listed = {s[f] for sh in index["splits"].values() for s in sh for f in ("file", "docs_file")}
    assert files == listed | {"index.json"}  # nothing else, no temporaries

    for split_name in ("train", "heldout"):
        expected = [d for d in corpus if split.split_of(d.id) == split_name]
        got = read_split(out, index, split_name)
        assert len(got) == len(expected) > 0
        for d, ids in zip(expected, got, strict=True):
            # Same ids as the tokenizer, then exactly one EOS, at the end.
            assert ids.tolist() == [*tok.encode(d.text, add_special_tokens=False).ids, 0]
            assert int((ids == 0).sum()) == 1
        shards = index["splits"][split_name]
        assert sum(s["text_bytes"] for s in shards) == sum(len(d.text.encode()) for d in expected)
    # Shards close before they would pass shard_tokens; each but the last is nearly full.
    train = index["splits"]["train"]
    assert len(train) >= 3
    assert all(s["tokens"] <= 1024 for s in train)
    assert all(s["tokens"] > 1024 - 400 for s in train[:-1])


def test_a_long_document_gets_its_own_shard(tok: Tokenizer, tmp_path: Path) -> None:
    corpus = [Document("a", "Short one."), Document("b", english(1, 8)), Document("c", "End.")]
    index = pack(corpus, tok, HeldoutSplit(0.0), shard_tokens=50, out_dir=tmp_path / "s")
    assert [s["docs"] for s in index["splits"]["train"]] == [1, 1, 1]
    assert index["splits"]["train"][1]["tokens"] > 50
    assert index["splits"]["heldout"] == []


def test_text_spelling_eos_is_not_eos(tok: Tokenizer, tmp_path: Path) -> None:
    corpus = [Document("a", f"Before {EOS} after.")]
    index = pack(corpus, tok, HeldoutSplit(0.0), shard_tokens=1024, out_dir=tmp_path / "s")
    (ids,) = read_split(tmp_path / "s", index, "train")
    assert ids[-1] == 0 and int((ids == 0).sum()) == 1


def test_heldout_split_depends_only_on_the_id() -> None:
    ids = [f"doc-{i}" for i in range(2000)]
    split = HeldoutSplit(0.1)
    forward = {i: split.split_of(i) for i in ids}
    backward = {i: HeldoutSplit(0.1).split_of(i) for i in reversed(ids)}
    assert forward == backward
    assert sum(s == "heldout" for s in forward.values()) == 184  # pinned: xxh3-64 of the ids
    assert all(0 <= heldout_score(i) < 1 for i in ids[:50])


def test_guard_forces_one_heldout_doc_on_a_tiny_corpus() -> None:
    ids = ["a", "b", "c"]
    guard = HeldoutGuard(0.001)
    for i in reversed(ids):
        guard.observe(i)
    (forced,) = guard.forced()
    assert forced == min(ids, key=heldout_score)
    assert HeldoutSplit(0.001, guard.forced()).split_of(forced) == "heldout"
    one = HeldoutGuard(0.001)
    one.observe("a")
    assert one.forced() == frozenset()  # a single document stays in train
    none = HeldoutGuard(0.0)
    for i in ids:
        none.observe(i)
    assert none.forced() == frozenset()  # no held-out asked for


def test_interrupted_pack_leaves_nothing(
    tok: Tokenizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pack_module, "BATCH_DOCS", 4)

    calls = []

    def stop_on_third_batch(n: int) -> None:
        calls.append(n)
        if len(calls) == 3:  # several one-document shards are finished by now
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pack(docs(20), tok, HeldoutSplit(0.2), 50, tmp_path / "shards", on_docs=stop_on_third_batch)
    assert list(tmp_path.iterdir()) == []
