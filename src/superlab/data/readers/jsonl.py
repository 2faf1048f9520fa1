"""JSON Lines in (plain, ``.gz``, ``.zst``; files or globs), documents out, one line at a time."""

from __future__ import annotations

import glob
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from superlab.data.document import Document
from superlab.data.errors import DataError
from superlab.data.readers.zstd import open_zst

_GLOB_CHARS = frozenset("*?[")
_SUFFIXES = (".gz", ".zst", ".jsonl", ".ndjson", ".json")


def expand_paths(paths: list[str]) -> list[Path]:
    """Files named by ``paths`` in the given order; each glob expands to its sorted matches."""
    found: list[Path] = []
    for p in paths:
        if _GLOB_CHARS & set(p):
            matches = sorted(glob.glob(p, recursive=True))
            if not matches:
                raise DataError(f"{p}: no files match this pattern")
            found += [Path(m) for m in matches if Path(m).is_file()]
        elif Path(p).is_file():
            found.append(Path(p))
        else:
            raise DataError(f"{p}: no such file")
    return found


def file_stem(path: Path) -> str:
    """``dir/part-1.jsonl.gz`` -> ``part-1``: the name without its data suffixes."""
    name = path.name
    while name.endswith(_SUFFIXES):
        name = name[: name.rindex(".")]
    return name or path.name


def open_binary(path: Path) -> IO[bytes]:
    """Open ``path`` for reading bytes, decompressing ``.gz`` and ``.zst`` on the fly."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    if path.name.endswith(".zst"):
        return open_zst(path)
    return open(path, "rb")


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) for every line of ``path``; read errors name the line."""
    lineno = 0
    try:
        with open_binary(path) as f:
            for lineno, raw in enumerate(f, 1):
                yield lineno, raw
    except (OSError, EOFError) as e:
        raise DataError(f"{path}:{lineno + 1}: cannot read ({e})") from None


def _record(path: Path, lineno: int, raw: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(raw)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise DataError(f"{path}:{lineno}: invalid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
    return obj


def read_jsonl(
    paths: list[str], text_field: str = "text", id_field: str | None = "id"
) -> Iterator[Document]:
    """Stream documents from JSONL files; a bad line raises ``DataError`` naming file:line.

    The id is the record's ``id_field`` when present, else ``<file stem>:<line>``. Other
    fields go to ``metadata``. Blank lines are not records and are skipped.
    """
    for path in expand_paths(paths):
        stem = file_stem(path)
        for lineno, raw in _lines(path):
            if not raw.strip():
                continue
            obj = _record(path, lineno, raw)
            text = obj.pop(text_field, None)
            if text is None:
                raise DataError(f"{path}:{lineno}: field '{text_field}' is missing")
            if not isinstance(text, str):
                raise DataError(
                    f"{path}:{lineno}: field '{text_field}' must be a string, "
                    f"got {type(text).__name__}"
                )
            doc_id = obj.pop(id_field, None) if id_field else None
            yield Document(
                id=f"{stem}:{lineno}" if doc_id is None else str(doc_id),
                text=text,
                metadata=obj,
                source=str(path),
                offset=lineno,
            )


def read_documents(path: str | Path) -> Iterator[Document]:
    """Stream ``Document`` JSON lines (as written by ``JsonlWriter``) back from ``path``."""
    path = Path(path)
    for lineno, raw in _lines(path):
        if raw.strip():
            obj = _record(path, lineno, raw)
            try:
                yield Document.from_json(obj)
            except (KeyError, TypeError, ValueError) as e:
                raise DataError(f"{path}:{lineno}: not a document ({e!r})") from None
