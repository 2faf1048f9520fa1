"""Reading post-training rows (JSONL, optionally gzipped, or Parquet) and the rejects sink."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from superlab.common.atomic import atomic_write_text
from superlab.common.deps import require


class RowError(ValueError):
    """A row that cannot be used; the message is the reason written to rejects.jsonl."""


@dataclass(frozen=True)
class Row:
    """One row of an input file: where it came from and its fields (None if unparsable)."""

    file: str
    line: int  # 1-based line (JSONL) or row number (Parquet)
    data: dict[str, Any] | None
    error: str | None = None


def read_rows(path: str | Path) -> Iterator[Row]:
    """Every row of a ``.jsonl`` / ``.jsonl.gz`` / ``.json`` lines file or a ``.parquet`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix == ".parquet":
        yield from _parquet_rows(path)
        return
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as e:
                yield Row(str(path), n, None, f"not JSON ({e.msg})")
                continue
            if not isinstance(data, dict):
                yield Row(str(path), n, None, "not a JSON object")
                continue
            yield Row(str(path), n, data)


def _parquet_rows(path: Path) -> Iterator[Row]:
    pq = require("pyarrow.parquet", "reading Parquet post-training data", package="pyarrow")
    n = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for data in batch.to_pylist():
            n += 1
            yield Row(str(path), n, data)


class Rejects:
    """Rejected rows with file, line and reason; written to ``rejects.jsonl`` at once."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, row: Row, reason: str) -> None:
        self.rows.append({"file": row.file, "line": row.line, "reason": reason})

    def counts(self) -> dict[str, int]:
        """Rejections per reason kind (the reason up to its first colon)."""
        return dict(Counter(r["reason"].split(":")[0] for r in self.rows))

    def write(self, path: Path) -> None:
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in self.rows))
