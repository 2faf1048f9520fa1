"""The unit of data work: one document, with where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(slots=True)
class Document:
    """A document: ``id`` unique within a run, ``text``, free ``metadata``, and its origin.

    ``source`` is the file (or corpus name) it was read from and ``offset`` the
    line or record number there, so every error and every removal can point at it.
    """

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    offset: int = 0

    def to_json(self) -> dict[str, Any]:
        """Every field by name (the JSONL record ``from_record`` reads back)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_record(
        cls,
        text: str,
        rec: dict[str, Any],
        id_field: str | None,
        source: str,
        stem: str,
        offset: int,
    ) -> Document:
        """A read record's document: the id is ``rec``'s ``id_field`` (taken out) or
        ``<stem>:<offset>``, and the rest of ``rec`` is the metadata."""
        doc_id = rec.pop(id_field, None) if id_field else None
        return cls(
            id=f"{stem}:{offset}" if doc_id is None else str(doc_id),
            text=text,
            metadata=rec,
            source=source,
            offset=offset,
        )

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Document:
        return cls(
            id=str(obj["id"]),
            text=obj["text"],
            metadata=obj.get("metadata") or {},
            source=obj.get("source", ""),
            offset=int(obj.get("offset", 0)),
        )


@dataclass(slots=True)
class BadRecord:
    """An input record that could not become a document: skipped, counted, and listed.

    Readers yield these in place of documents (they never raise on bad records), so
    the pipeline writes each to ``rejects.jsonl`` with its file and offset.
    """

    source: str
    offset: int
    reason: str  # "read:<kind>", e.g. read:invalid_json, read:corrupt_gzip, read:giant
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "step": "read",
            "reason": self.reason,
            "source": self.source,
            "offset": self.offset,
            "detail": self.detail,
        }
