"""Parquet in (pyarrow, imported only here), documents out, one record batch at a time.

A missing ``text_field``/``id_field`` column, or a text column that is not a string, is a
configuration error (``DataError`` naming the file and its columns); a file that cannot be
parsed, or breaks part-way, is bad input (one ``BadRecord``, then the next file).
Offsets are 0-based row numbers in the file. Other columns go to ``metadata`` when their
values are JSON scalars (strings, numbers, booleans); nested or binary columns are left
out, so every document stays writable as JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from superlab.common.deps import require
from superlab.data.document import BadRecord, Document
from superlab.data.errors import DataError
from superlab.data.readers.paths import file_stem

BATCH_ROWS = 512  # rows per record batch: bounds memory to ~512 documents at a time


def _pyarrow() -> Any:
    pq = require("pyarrow.parquet", "reading Parquet", error=DataError)
    return require("pyarrow", "reading Parquet", error=DataError), pq


def read_parquet_file(
    path: Path,
    text_field: str = "text",
    id_field: str | None = "id",
    max_doc_bytes: int = 2_000_000,
) -> Iterator[Document | BadRecord]:
    """Stream one Parquet file: a ``Document`` per good row, a ``BadRecord`` per bad one."""
    pa, pq = _pyarrow()
    source, stem = str(path), file_stem(path)
    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
    except (pa.ArrowException, OSError, ValueError) as e:
        yield BadRecord(source, 0, "read:corrupt_parquet", str(e)[:300])
        return
    columns = schema.names
    for name in (text_field, id_field):
        if name is not None and name not in columns:
            raise DataError(f"{path}: no column '{name}' (columns: {', '.join(columns)})")
    text_type = schema.field(text_field).type
    if not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type)):
        raise DataError(f"{path}: column '{text_field}' is {text_type}, not a string")
    keep = [f.name for f in schema if f.name in (text_field, id_field) or _scalar(pa, f.type)]
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=keep):
            for rec in batch.to_pylist():
                yield _row(rec, source, stem, row, text_field, id_field, max_doc_bytes)
                row += 1
    except (pa.ArrowException, OSError, ValueError) as e:
        yield BadRecord(source, row, "read:corrupt_parquet", str(e)[:300])


def _scalar(pa: Any, t: Any) -> bool:
    types = pa.types
    return bool(
        types.is_string(t)
        or types.is_large_string(t)
        or types.is_integer(t)
        or types.is_floating(t)
        or types.is_boolean(t)
    )


def _row(
    rec: dict[str, Any],
    source: str,
    stem: str,
    row: int,
    text_field: str,
    id_field: str | None,
    max_doc_bytes: int,
) -> Document | BadRecord:
    text = rec.pop(text_field)
    if text is None or not text.strip():
        return BadRecord(source, row, "read:empty", f"column '{text_field}' is null or empty")
    if len(text.encode("utf-8", "surrogatepass")) > max_doc_bytes:
        return BadRecord(source, row, "read:giant", f"text over {max_doc_bytes} bytes")
    return Document.from_record(text, rec, id_field, source, stem, row)
