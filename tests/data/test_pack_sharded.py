"""Packing a piece per task gives ``pack``'s shards and index byte for byte, and resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from superlab.config.data import ProbeMixConfig
from superlab.config.recipe import TokenizerConfig
from superlab.data import Document
from superlab.data.pack import pack
from superlab.data.pack_sharded import line_pieces, pack_sharded
from superlab.data.probes import TrainOnly, probe_documents
from superlab.data.split import HeldoutSplit
from superlab.data.tokenizer import load_tokenizer, train_tokenizer

from .helpers import english


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("packsh")
    tok = tmp / "tokenizer.json"
    train_tokenizer((english(i) for i in range(100)), TokenizerConfig(vocab_size=300), tok)
    corpus = tmp / "clean.jsonl"
    docs = [Document(f"doc-{i}", english(i, paragraphs=1 + i % 3)) for i in range(90)]
    corpus.write_text("".join(json.dumps(d.to_json()) + "\n" for d in docs), encoding="utf-8")
    return corpus, tok


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def _serial(fn, items):  # type: ignore[no-untyped-def]
    return [fn(x) for x in items]


def _reference(corpus: Path, tok: Path, split, out: Path, probes=None) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    from superlab.data.readers import read_documents

    docs = read_documents(corpus)
    if probes is not None:
        from itertools import chain

        docs = chain(docs, probe_documents(probes))
    pack(docs, load_tokenizer(tok), split, 1024, out)
    return _files(out)


def test_line_pieces(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"a\nbb\nccc\n")
    assert list(line_pieces(p, 2)) == [(0, 5, 2), (5, 9, 1)]


@pytest.mark.parametrize("piece_docs", [7, 1000])
def test_pieces_match_pack(setup, tmp_path: Path, piece_docs: int) -> None:  # type: ignore[no-untyped-def]
    corpus, tok = setup
    split = HeldoutSplit(0.2)
    ref = _reference(corpus, tok, split, tmp_path / "ref")
    seen: list[int] = []
    index = pack_sharded(
        corpus, tok, split, 1024, tmp_path / "out", tmp_path / "work", _serial,
        on_docs=seen.append, piece_docs=piece_docs,
    )  # fmt: skip
    assert _files(tmp_path / "out") == ref
    assert len(index["splits"]["train"]) > 3 and index["splits"]["heldout"]  # several shards
    assert sum(seen) == 90 and not (tmp_path / "work").exists()


def test_probe_piece_and_resume(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    corpus, tok = setup
    probes = ProbeMixConfig(docs=2, pairs=4)
    split = TrainOnly(HeldoutSplit(0.2))
    ref = _reference(corpus, tok, split, tmp_path / "ref", probes)

    def dies(fn, items):  # type: ignore[no-untyped-def]
        fn(items[0])
        fn(items[1])
        raise KeyboardInterrupt

    args = (corpus, tok, split, 1024, tmp_path / "out", tmp_path / "work")
    kw = {"probes": probes.model_dump(mode="json"), "piece_docs": 20}
    with pytest.raises(KeyboardInterrupt):
        pack_sharded(*args, dies, **kw)  # type: ignore[arg-type]
    assert sorted(p.name for p in (tmp_path / "work").glob("*.done")) == [
        "00000.done",
        "00001.done",
    ]
    ran: list[int] = []

    def recording(fn, items):  # type: ignore[no-untyped-def]
        ran.extend(t.index for t in items)
        return [fn(x) for x in items]

    pack_sharded(*args, recording, **kw)  # type: ignore[arg-type]
    assert ran == [2, 3, 4, 5]  # 90 docs in pieces of 20, then the probe piece
    assert _files(tmp_path / "out") == ref
