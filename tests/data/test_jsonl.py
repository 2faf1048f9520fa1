from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest

from superlab.data import Document
from superlab.data.errors import DataError
from superlab.data.readers import read_documents, read_jsonl
from superlab.data.readers.jsonl import file_stem
from superlab.data.writers import JsonlWriter

from .helpers import write_jsonl

RECORDS = [
    {"id": "a", "text": "first", "lang": "en"},
    {"text": "no id here"},
    {"id": 7, "text": "numeric id"},
]


def _lines(records: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def test_plain_and_gz_read_the_same_documents(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "part.jsonl", RECORDS)
    with gzip.open(tmp_path / "part.jsonl.gz", "wb") as f:
        f.write(_lines(RECORDS))
    plain = list(read_jsonl([str(tmp_path / "part.jsonl")]))
    gz = list(read_jsonl([str(tmp_path / "part.jsonl.gz")]))
    assert [d.id for d in plain] == ["a", "part:2", "7"]
    assert [d.text for d in plain] == ["first", "no id here", "numeric id"]
    assert plain[0].metadata == {"lang": "en"}
    assert (plain[1].source, plain[1].offset) == (str(tmp_path / "part.jsonl"), 2)
    assert [(d.id, d.text, d.metadata, d.offset) for d in gz] == [
        (d.id, d.text, d.metadata, d.offset) for d in plain
    ]


def test_globs_expand_sorted_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "b.jsonl").write_text('{"text": "b1"}\n\n{"text": "b3"}\n')
    (tmp_path / "a.jsonl").write_text('{"text": "a1"}\n')
    docs = list(read_jsonl([str(tmp_path / "*.jsonl")], id_field=None))
    assert [d.id for d in docs] == ["a:1", "b:1", "b:3"]


def test_custom_fields(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "c.jsonl", [{"doc_id": "x", "body": "hello", "id": "ignored"}])
    (doc,) = read_jsonl([str(tmp_path / "c.jsonl")], text_field="body", id_field="doc_id")
    assert (doc.id, doc.text, doc.metadata) == ("x", "hello", {"id": "ignored"})


def test_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "ok"}\n{"text": "ok"}\n{"text": oops}\n')
    docs = read_jsonl([str(p)])
    assert next(docs).text == "ok"  # streaming: the good lines come before the error
    with pytest.raises(DataError, match=rf"^{p}:3: invalid JSON"):
        list(docs)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "x"}', "field 'text' is missing"),
        ('{"text": 12}', "field 'text' must be a string, got int"),
        ('["text"]', "expected a JSON object, got list"),
    ],
)
def test_bad_record_names_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    p = tmp_path / "bad.jsonl.gz"
    with gzip.open(p, "wb") as f:
        f.write(b'{"text": "fine"}\n' + line.encode() + b"\n")
    with pytest.raises(DataError, match=rf"^{p}:2: {message}"):
        list(read_jsonl([str(p)]))


def test_missing_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        list(read_jsonl([str(tmp_path / "nope.jsonl")]))
    with pytest.raises(DataError, match="no files match"):
        list(read_jsonl([str(tmp_path / "*.jsonl")]))


def test_zst_without_zstandard_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = tmp_path / "x.jsonl.zst"
    p.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "zstandard", None)  # import zstandard -> ImportError
    with pytest.raises(DataError, match="needs the 'zstandard' package"):
        list(read_jsonl([str(p)]))


def test_zst_reads(tmp_path: Path) -> None:
    zstandard = pytest.importorskip("zstandard", reason="zstandard not installed")
    p = tmp_path / "part.jsonl.zst"
    cctx = zstandard.ZstdCompressor()
    # Two concatenated frames, as `cat a.zst b.zst` makes.
    p.write_bytes(cctx.compress(_lines(RECORDS[:2])) + cctx.compress(_lines(RECORDS[2:])))
    assert [d.id for d in read_jsonl([str(p)])] == ["a", "part:2", "7"]


def test_truncated_or_corrupt_zst_is_an_error_not_an_early_end(tmp_path: Path) -> None:
    zstandard = pytest.importorskip("zstandard", reason="zstandard not installed")
    p = tmp_path / "cut.jsonl.zst"
    p.write_bytes(zstandard.ZstdCompressor().compress(_lines(RECORDS * 100))[:-6])
    with pytest.raises(DataError, match=rf"^{p}:\d+: cannot read \(.*truncated"):
        list(read_jsonl([str(p)]))
    p.write_bytes(b"not zstd at all")
    with pytest.raises(DataError, match=rf"^{p}:1: cannot read \(zstd: "):
        list(read_jsonl([str(p)]))


def test_file_stem_strips_data_suffixes() -> None:
    assert file_stem(Path("d/web-00001.jsonl.gz")) == "web-00001"
    assert file_stem(Path("d/web.v2.jsonl.zst")) == "web.v2"


def test_writer_round_trips_documents_and_leaves_nothing_on_error(tmp_path: Path) -> None:
    docs = [Document("a", "x", {"k": [1]}, "src", 3), Document("b", "é\n", {}, "src", 4)]
    with JsonlWriter(tmp_path / "docs.jsonl") as w:
        for d in docs:
            w.write(d.to_json())
    assert w.count == 2
    assert list(read_documents(tmp_path / "docs.jsonl")) == docs
    with pytest.raises(KeyboardInterrupt), JsonlWriter(tmp_path / "half.jsonl") as w:
        w.write(docs[0].to_json())
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs.jsonl"]
