from __future__ import annotations

from pathlib import Path

import pytest

from superlab.data.document import BadRecord, Document
from superlab.data.errors import DataError
from superlab.data.readers.parquet import read_parquet_file

pa = pytest.importorskip("pyarrow", reason="pyarrow not installed (the superlab[parquet] extra)")
pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow not installed")


def _write(path: Path, rows: dict, row_group_size: int = 1000) -> Path:
    pq.write_table(pa.table(rows), path, row_group_size=row_group_size)
    return path


def test_rows_become_documents_with_scalar_metadata(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "part-0.parquet",
        {
            "id": ["a", None, "c"],
            "text": ["first", "second", "third"],
            "score": [0.5, 1.0, 2.0],
            "tags": [["x"], [], ["y"]],  # nested: left out of metadata
        },
    )
    docs = list(read_parquet_file(p))
    assert [(d.id, d.text, d.offset) for d in docs] == [
        ("a", "first", 0),
        ("part-0:1", "second", 1),
        ("c", "third", 2),
    ]
    assert docs[0].metadata == {"score": 0.5} and docs[0].source == str(p)


def test_empty_null_and_giant_texts_are_bad_records(tmp_path: Path) -> None:
    texts = ["ok", None, "  ", "z" * 5000, "fine"]
    p = _write(tmp_path / "t.parquet", {"text": texts}, row_group_size=2)
    recs = list(read_parquet_file(p, id_field=None, max_doc_bytes=1000))
    assert [(type(r).__name__, r.offset) for r in recs] == [
        ("Document", 0),
        ("BadRecord", 1),
        ("BadRecord", 2),
        ("BadRecord", 3),
        ("Document", 4),
    ]
    assert [r.reason for r in recs if isinstance(r, BadRecord)] == [
        "read:empty",
        "read:empty",
        "read:giant",
    ]


def test_missing_or_wrong_columns_are_configuration_errors(tmp_path: Path) -> None:
    p = _write(tmp_path / "c.parquet", {"body": ["x"], "id": [1]})
    with pytest.raises(DataError, match=r"c\.parquet: no column 'text' \(columns: body, id\)"):
        list(read_parquet_file(p))
    with pytest.raises(DataError, match="no column 'doc_id'"):
        list(read_parquet_file(p, text_field="body", id_field="doc_id"))
    with pytest.raises(DataError, match="column 'id' is int64, not a string"):
        list(read_parquet_file(p, text_field="id", id_field=None))


def test_corrupt_and_truncated_files_are_bad_records(tmp_path: Path) -> None:
    p = tmp_path / "junk.parquet"
    p.write_bytes(b"PAR1 this is not parquet")
    assert [(r.offset, r.reason) for r in read_parquet_file(p)] == [(0, "read:corrupt_parquet")]
    good = _write(tmp_path / "g.parquet", {"text": [f"row {i}" for i in range(100)]})
    p.write_bytes(good.read_bytes()[:-100])  # the footer is gone
    assert [r.reason for r in read_parquet_file(p)] == ["read:corrupt_parquet"]


def test_a_broken_row_group_keeps_the_rows_before_it(tmp_path: Path) -> None:
    rows = {"text": [f"row number {i} " * 20 for i in range(3000)]}
    good = _write(tmp_path / "g.parquet", rows, row_group_size=1000)
    meta = pq.ParquetFile(good).metadata
    start = meta.row_group(2).column(0).data_page_offset
    data = bytearray(good.read_bytes())
    data[start : start + 200] = b"\xff" * 200  # the last row group's first page
    p = tmp_path / "broken.parquet"
    p.write_bytes(bytes(data))
    recs = list(read_parquet_file(p, id_field=None))
    docs = [r for r in recs if isinstance(r, Document)]
    assert len(docs) >= 1000 and docs[0].text.startswith("row number 0 ")
    assert isinstance(recs[-1], BadRecord) and recs[-1].reason == "read:corrupt_parquet"
    assert recs[-1].offset == len(docs)
