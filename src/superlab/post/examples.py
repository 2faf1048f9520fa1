"""Rows of a stage's files to examples: each row encoded, or rejected with its reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from superlab.common import StageError
from superlab.data.chat import ChatFormatError
from superlab.post.rows import Rejects, RowError, read_rows

E = TypeVar("E")


@dataclass
class Examples(Generic[E]):
    """A stage's examples, split into train and held-out, and the rows it rejected."""

    train: list[E] = field(default_factory=list)
    heldout: list[E] = field(default_factory=list)
    rejects: Rejects = field(default_factory=Rejects)
    rows: int = 0
    truncated: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "train_examples": len(self.train),
            "heldout_examples": len(self.heldout),
            "truncated": self.truncated,
            "rejected": len(self.rejects.rows),
            "rejected_by_reason": self.rejects.counts(),
        }


def read_examples(
    files: list[str], encode: Callable[[dict[str, Any]], E], heldout_every: int
) -> Examples[E]:
    """Encode every row of ``files``. A row's ``split`` field (``train`` or ``heldout``, as in
    the data stage's ``data/chat.jsonl``) decides where it goes; without one, every
    ``heldout_every``-th valid row is held out."""
    out: Examples[E] = Examples()
    valid = 0
    for name in files:
        try:
            rows = list(read_rows(Path(name)))
        except FileNotFoundError as e:
            raise StageError(str(e)) from None
        for row in rows:
            out.rows += 1
            if row.data is None:
                out.rejects.add(row, row.error or "unreadable")
                continue
            try:
                ex = encode(row.data)
            except (RowError, ChatFormatError) as e:
                out.rejects.add(row, str(e))
                continue
            valid += 1
            out.truncated += bool(getattr(ex, "truncated", False))
            split = row.data.get("split")  # data/chat.jsonl rows carry the data stage's split
            if split in ("train", "heldout"):
                held = split == "heldout"
            else:
                held = bool(heldout_every) and valid % heldout_every == 0
            (out.heldout if held else out.train).append(ex)
    if not out.train:
        raise StageError(
            f"no usable rows in {', '.join(files)} ({len(out.rejects.rows)} rejected; "
            "see rejects.jsonl)"
        )
    return out
