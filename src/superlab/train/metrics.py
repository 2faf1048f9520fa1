"""``metrics.jsonl``: one JSON object per line, appended; trimmed on resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from superlab.common.atomic import atomic_write_text


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one row and flush it to disk."""
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def truncate_after(path: Path, step: int) -> int:
    """Drop rows with ``step`` > ``step`` (and torn lines); return how many were dropped."""
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line torn by a crash mid-write
            dropped += 1
            continue
        if isinstance(row, dict) and row.get("step", 0) > step:
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        atomic_write_text(path, "".join(f"{line}\n" for line in kept))
    return dropped


def read_rows(path: Path) -> list[dict[str, Any]]:
    """All rows of a metrics file."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
