from __future__ import annotations

import gzip
import json
import sys
import tracemalloc
import types
from pathlib import Path

import pytest

from superlab.data import Document
from superlab.data.document import BadRecord
from superlab.data.errors import DataError
from superlab.data.readers import read_documents, read_jsonl, read_jsonl_file
from superlab.data.readers.paths import file_stem
from superlab.data.writers import JsonlWriter

RECORDS = [
    {"id": "a", "text": "first", "lang": "en"},
    {"text": "no id here"},
    {"id": 7, "text": "numeric id"},
]


def _lines(records: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def _split(recs: list) -> tuple[list[Document], list[BadRecord]]:
    return [r for r in recs if isinstance(r, Document)], [
        r for r in recs if isinstance(r, BadRecord)
    ]


def test_plain_and_gz_read_the_same_documents(tmp_path: Path) -> None:
    (tmp_path / "part.jsonl").write_bytes(_lines(RECORDS))
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
    (tmp_path / "a.jsonl").write_text('\ufeff{"text": "a1"}\n')  # a BOM on line 1 is fine
    docs = list(read_jsonl([str(tmp_path / "*.jsonl")], id_field=None))
    assert [d.id for d in docs] == ["a:1", "b:1", "b:3"]


def test_custom_fields(tmp_path: Path) -> None:
    (tmp_path / "c.jsonl").write_bytes(_lines([{"doc_id": "x", "body": "hi", "id": "ignored"}]))
    (doc,) = read_jsonl([str(tmp_path / "c.jsonl")], text_field="body", id_field="doc_id")
    assert (doc.id, doc.text, doc.metadata) == ("x", "hi", {"id": "ignored"})


BAD_LINES = [
    (b'{"text": oops}', "read:invalid_json"),
    (b'["text"]', "read:not_object"),
    (b'{"id": "x"}', "read:missing_text"),
    (b'{"text": null}', "read:missing_text"),
    (b'{"text": 12}', "read:text_not_string"),
    (b'{"text": "caf\xe9 latin-1"}', "read:bad_utf8"),
    (b'{"text": "lone \\ud800 surrogate"}', "read:bad_utf8"),
    (b'{"text": "   "}', "read:empty"),
    (b'{"text": "x", "a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "read:invalid_json"),
    (b'{"text": "' + b"x" * 400_000 + b'"}', "read:giant"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES, ids=[r for _, r in BAD_LINES])
@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_each_bad_line_is_a_bad_record_and_reading_goes_on(
    tmp_path: Path, line: bytes, reason: str, suffix: str
) -> None:
    p = tmp_path / f"bad{suffix}"
    data = b'{"text": "before"}\n' + line + b'\n{"text": "after"}\n'
    p.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    docs, bad = _split(list(read_jsonl_file(p, max_doc_bytes=300_000)))
    assert [d.text for d in docs] == ["before", "after"]
    assert [(b.source, b.offset, b.reason) for b in bad] == [(str(p), 2, reason)]
    assert bad[0].to_json()["step"] == "read"


def test_giant_line_is_skipped_without_loading_it(tmp_path: Path) -> None:
    p = tmp_path / "giant.jsonl"
    big = b'{"text": "' + b"y" * 5_000_000 + b'"}\n'
    p.write_bytes(b'{"text": "a"}\n' + big + b'{"text": "b"}\n')
    tracemalloc.start()
    recs = list(read_jsonl_file(p, max_doc_bytes=100_000))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [(type(r).__name__, r.offset) for r in recs] == [
        ("Document", 1),
        ("BadRecord", 2),
        ("Document", 3),
    ]
    assert peak < 3_000_000  # the 5 MB line is never held whole


def test_reading_streams_in_constant_memory(tmp_path: Path) -> None:
    p = tmp_path / "many.jsonl.gz"
    with gzip.open(p, "wb") as f:
        for i in range(100_000):
            f.write(b'{"id": %d, "text": "record number %d with some words"}\n' % (i, i))
    recs = read_jsonl_file(p)
    assert isinstance(recs, types.GeneratorType)
    tracemalloc.start()
    n = sum(1 for _ in recs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 100_000
    assert peak < 2_000_000  # 100k records are ~5 MB of text: memory does not grow with them


@pytest.mark.parametrize("cut", [-10, -2000])
def test_truncated_gzip_keeps_the_good_lines_then_one_bad_record(tmp_path: Path, cut: int) -> None:
    p = tmp_path / "cut.jsonl.gz"
    p.write_bytes(gzip.compress(_lines([{"text": f"line {i}"} for i in range(2000)]))[:cut])
    docs, bad = _split(list(read_jsonl_file(p)))
    assert len(docs) > 100 and [d.offset for d in docs] == list(range(1, len(docs) + 1))
    assert [(b.offset, b.reason) for b in bad] == [(len(docs) + 1, "read:truncated")]


def test_corrupt_gzip_and_not_gzip(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(_lines([{"text": f"line {i}"} for i in range(5000)])))
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # zeroes in the deflate stream
    p = tmp_path / "corrupt.jsonl.gz"
    p.write_bytes(bytes(data))
    recs = list(read_jsonl_file(p))
    # Deflate garbage decodes to bad lines until gzip's CRC check fails at the member's end.
    assert (recs[-1].reason, recs[-1].offset) == ("read:corrupt_gzip", len(recs))
    docs, _ = _split(recs)
    assert [d.text for d in docs[:2000]] == [f"line {i}" for i in range(2000)]
    p.write_bytes(b'{"text": "plain text, gz name"}\n')
    assert [(r.offset, r.reason) for r in read_jsonl_file(p)] == [(1, "read:corrupt_gzip")]


def test_zst_reads_concatenated_frames(tmp_path: Path) -> None:
    zstandard = pytest.importorskip("zstandard", reason="zstandard not installed")
    p = tmp_path / "part.jsonl.zst"
    cctx = zstandard.ZstdCompressor()
    p.write_bytes(cctx.compress(_lines(RECORDS[:2])) + cctx.compress(_lines(RECORDS[2:])))
    assert [d.id for d in read_jsonl([str(p)])] == ["a", "part:2", "7"]


def test_truncated_or_corrupt_zst_is_a_bad_record(tmp_path: Path) -> None:
    zstandard = pytest.importorskip("zstandard", reason="zstandard not installed")
    p = tmp_path / "cut.jsonl.zst"
    lines = _lines([{"text": f"record {i}"} for i in range(50_000)])  # several zstd blocks
    p.write_bytes(zstandard.ZstdCompressor().compress(lines)[:-6])
    docs, bad = _split(list(read_jsonl_file(p)))
    assert len(docs) > 10_000 and [b.reason for b in bad] == ["read:truncated"]
    assert bad[0].offset == len(docs) + 1
    p.write_bytes(b"not zstd at all")
    assert [(r.offset, r.reason) for r in read_jsonl_file(p)] == [(1, "read:corrupt_zstd")]


def test_corrupt_zst_frame_keeps_the_records_of_earlier_frames(tmp_path: Path) -> None:
    zstandard = pytest.importorskip("zstandard", reason="zstandard not installed")
    p = tmp_path / "damaged.jsonl.zst"
    good = zstandard.ZstdCompressor().compress(_lines(RECORDS[:2]))
    p.write_bytes(good + b"\x28\xb5\x2f\xfd" + bytes(range(200)))  # a frame of garbage
    recs = list(read_jsonl_file(p))
    assert [r.id for r in recs if isinstance(r, Document)] == ["a", "damaged:2"]
    assert [(r.offset, r.reason) for r in recs if isinstance(r, BadRecord)] == [
        (3, "read:corrupt_zstd")
    ]


def test_zst_without_zstandard_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = tmp_path / "x.jsonl.zst"
    p.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "zstandard", None)  # import zstandard -> ImportError
    with pytest.raises(DataError, match="needs the 'zstandard' package"):
        list(read_jsonl([str(p)]))


def test_missing_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        list(read_jsonl([str(tmp_path / "nope.jsonl")]))
    with pytest.raises(DataError, match=r"\*\.jsonl: no files match"):
        list(read_jsonl([str(tmp_path / "*.jsonl")]))


def test_file_stem_strips_data_suffixes() -> None:
    assert file_stem(Path("d/web-00001.jsonl.gz")) == "web-00001"
    assert file_stem(Path("d/web.v2.jsonl.zst")) == "web.v2"
    assert file_stem(Path("d/CC-MAIN-1.warc.wet.gz")) == "CC-MAIN-1"


def test_read_documents_round_trips_and_is_strict(tmp_path: Path) -> None:
    docs = [Document("a", "x", {"k": [1]}, "src", 3), Document("b", "é\n", {}, "src", 4)]
    with JsonlWriter(tmp_path / "docs.jsonl") as w:
        for d in docs:
            w.write(d.to_json())
    assert list(read_documents(tmp_path / "docs.jsonl")) == docs
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "text": "x"}\n{"text": "no id"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2: not a document"):
        list(read_documents(tmp_path / "bad.jsonl"))
