"""The tokenizer's sample: drawn by id hash under both limits, whatever the order or executor."""

from __future__ import annotations

import json
import random
from pathlib import Path

from superlab.data.document import Document
from superlab.data.stage import run
from superlab.data.tokenizer_sample import sample_documents, sample_key

from .pipeline.corpus import context, make_inputs, recipe


def _docs(n: int) -> list[Document]:
    rng = random.Random(5)
    return [Document(f"d{i}", "x" * rng.randint(1, 50), source="s", offset=i) for i in range(n)]


def _reference(docs: list[Document], max_docs: int | None, max_bytes: int | None) -> list[str]:
    """Sort everything by key; take documents while both limits hold (the definition)."""
    out, total = [], 0
    for d in sorted(docs, key=lambda d: sample_key(d.id)):
        size = len(d.text.encode("utf-8"))
        if (max_docs is not None and len(out) == max_docs) or (
            max_bytes is not None and total + size > max_bytes
        ):
            break
        out.append(d)
        total += size
    return [d.id for d in docs if d in out]  # corpus order


def test_sample_is_the_lowest_keys_under_both_limits() -> None:
    docs = _docs(2000)
    for max_docs, max_bytes in [(100, None), (None, 3000), (300, 5000), (5000, None), (1, 1)]:
        got = [d.id for d in sample_documents(docs, max_docs, max_bytes)]
        assert got == _reference(docs, max_docs, max_bytes), (max_docs, max_bytes)
    assert len(sample_documents(docs, 100, None)) == 100
    assert sum(len(d.text) for d in sample_documents(docs, None, 3000)) <= 3000


def test_sample_does_not_depend_on_arrival_order() -> None:
    docs = _docs(1000)
    shuffled = docs[:]
    random.Random(1).shuffle(shuffled)
    a = sample_documents(docs, 200, 4000)
    b = sample_documents(shuffled, 200, 4000)
    assert sorted(d.id for d in a) == sorted(d.id for d in b)
    assert [d.offset for d in a] == sorted(d.offset for d in a)  # corpus order
    # A larger limit gives a superset.
    assert {d.id for d in a} <= {d.id for d in sample_documents(docs, 400, 8000)}


def test_stage_trains_on_the_sample_identically_across_workers(tmp_path: Path) -> None:
    inputs = make_inputs(tmp_path / "src", files=2, per_file=12)
    sample = {"docs": 8, "bytes": 100_000}
    runs = {}
    for workers in (1, 2):
        run_dir = tmp_path / f"w{workers}"
        run(context(run_dir, recipe(inputs, workers=workers, tokenizer_sample=sample)))
        runs[workers] = run_dir
    tok = [(runs[w] / "tokenizer" / "tokenizer.json").read_bytes() for w in (1, 2)]
    assert tok[0] == tok[1]
    stats = json.loads((runs[1] / "data" / "work" / "tokenizer.done.json").read_text())
    assert stats["sample_docs"] == 8 and 0 < stats["sample_bytes"] <= 100_000
    full = tmp_path / "full"
    run(context(full, recipe(inputs, workers=1)))
    assert (full / "tokenizer" / "tokenizer.json").read_bytes() != tok[0]  # the sample mattered
