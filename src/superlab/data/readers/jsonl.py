"""JSON Lines in (plain, ``.gz``, ``.zst``), documents out, one line at a time.

Bad input never raises: each bad line becomes a ``BadRecord`` and reading goes on; a
corrupt or truncated compressed stream becomes one ``BadRecord`` at the line where it
broke and ends that file, after every good line before it was yielded.

Non-UTF-8 bytes are *rejected* (``read:bad_utf8``), not replaced: JSON Lines is UTF-8 by
definition (RFC 8259 §8.1, jsonlines.org), a line with invalid bytes is usually a file in
another encoding, and replacement characters would slip corrupted text into training.
The same goes for lone surrogate escapes (``"\\ud800"``), which no UTF-8 writer can write.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from superlab.data.document import BadRecord, Document
from superlab.data.errors import DataError
from superlab.data.readers.paths import expand_paths, file_stem, open_binary

__all__ = ["expand_paths", "file_stem", "read_documents", "read_jsonl", "read_jsonl_file"]

SKIP_CHUNK = 1 << 16  # bytes read at a time while skipping the rest of a giant line
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")  # any surrogate escape, paired or not
MAX_DOC_BYTES = 2_000_000  # SourceConfig.max_doc_bytes' default


def read_jsonl_file(
    path: Path,
    text_field: str = "text",
    id_field: str | None = "id",
    max_doc_bytes: int = MAX_DOC_BYTES,
) -> Iterator[Document | BadRecord]:
    """Stream one JSONL file: a ``Document`` per good line, a ``BadRecord`` per bad one.

    Offsets are 1-based line numbers; the id is the ``id_field`` value or ``<stem>:<line>``;
    other fields go to ``metadata``; blank lines are not records and are skipped. A line
    over ``max_doc_bytes`` is skipped unparsed (``read:giant``), never held whole.
    """
    source, stem, codec = str(path), file_stem(path), _codec(path)
    lineno = 0
    try:
        with open_binary(path) as f:
            while raw := f.readline(max_doc_bytes + 1):
                lineno += 1
                if len(raw) > max_doc_bytes and not raw.endswith(b"\n"):
                    while (rest := f.readline(SKIP_CHUNK)) and not rest.endswith(b"\n"):
                        pass
                    yield BadRecord(
                        source, lineno, "read:giant", f"line over {max_doc_bytes} bytes"
                    )
                    continue
                rec = parse_line(raw, source, lineno, stem, text_field, id_field)
                if rec is not None:
                    yield rec
    except EOFError as e:
        yield BadRecord(source, lineno + 1, "read:truncated", f"{codec or 'file'}: {e}")
    except (OSError, zlib.error) as e:
        reason = f"read:corrupt_{codec}" if codec else "read:io_error"
        yield BadRecord(source, lineno + 1, reason, str(e))


def _codec(path: Path) -> str | None:
    return {".gz": "gzip", ".zst": "zstd"}.get(path.suffix)


def parse_line(
    raw: bytes, source: str, lineno: int, stem: str, text_field: str, id_field: str | None
) -> Document | BadRecord | None:
    """One JSONL line to a ``Document``, a ``BadRecord`` saying why not, or None if blank."""
    if not raw.strip():
        return None

    def bad(reason: str, detail: str = "") -> BadRecord:
        return BadRecord(source, lineno, reason, detail)

    try:
        # utf-8-sig on line 1: a byte-order mark there is noise, not an invalid record.
        line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
    except UnicodeDecodeError as e:
        return bad("read:bad_utf8", f"invalid UTF-8 at byte {e.start} of the line")
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as e:  # RecursionError: absurdly deep nesting
        return bad("read:invalid_json", str(e)[:200])
    if not isinstance(obj, dict):
        return bad("read:not_object", f"expected a JSON object, got {type(obj).__name__}")
    text = obj.pop(text_field, None)
    if text is None:
        return bad("read:missing_text", f"field '{text_field}' is missing or null")
    if not isinstance(text, str):
        return bad("read:text_not_string", f"field '{text_field}' is {type(text).__name__}")
    if not text.strip():
        return bad("read:empty", f"field '{text_field}' is empty")
    if _SURROGATE.search(raw) and not _utf8_safe(text, obj):
        return bad("read:bad_utf8", "lone surrogate escape (not encodable as UTF-8)")
    return Document.from_record(text, obj, id_field, source, stem, lineno)


def _utf8_safe(text: str, obj: dict[str, Any]) -> bool:
    try:
        text.encode("utf-8")
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_jsonl(
    paths: list[str],
    text_field: str = "text",
    id_field: str | None = "id",
    max_doc_bytes: int = MAX_DOC_BYTES,
) -> Iterator[Document | BadRecord]:
    """``read_jsonl_file`` over files or globs, in ``expand_paths`` order."""
    for path in expand_paths(paths):
        yield from read_jsonl_file(path, text_field, id_field, max_doc_bytes)


def read_documents(path: str | Path) -> Iterator[Document]:
    """Stream ``Document`` JSON lines (as written by ``JsonlWriter``) back; strict.

    These are the pipeline's own intermediate files, so a bad line is a bug or a damaged
    run directory, and raises ``DataError`` naming file:line rather than being skipped.
    """
    path = Path(path)
    lineno = 0
    try:
        with open_binary(path) as f:
            for lineno, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                try:
                    doc = Document.from_json(json.loads(raw))
                except (ValueError, KeyError, TypeError) as e:
                    raise DataError(f"{path}:{lineno}: not a document ({e!r})") from None
                yield doc
    except (OSError, EOFError) as e:
        raise DataError(f"{path}:{lineno + 1}: cannot read ({e})") from None
