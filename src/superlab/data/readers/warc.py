"""WARC and WET in (warcio, imported only here), documents out, one record at a time.

``response`` records holding HTML become the extracted main text; WET ``conversion``
records are text already. ``warcinfo``, ``request``, ``metadata``, ``revisit`` and
``resource`` records are not documents: they are counted (``skipped:<type>`` in the
caller's ``counts``), not rejected. Offsets are the record's byte offset in the file (for
``.warc.gz``, in the compressed file, as CDX indexes give them).

Damage never raises. A record whose payload is shorter than its Content-Length (a clipped
file) is ``read:truncated``; a file that stops parsing (bad gzip, wrong lengths) gives one
``BadRecord`` at the offset after the last good record, and the file ends there. A whole
file gzipped as one member (not per record) is valid but unseekable; warcio refuses it
after the first record, so we re-read it as one stream, and offsets after the first record
are then positions in the *decompressed* stream.
"""

from __future__ import annotations

import gzip
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from superlab.common.deps import require
from superlab.data.document import BadRecord, Document
from superlab.data.errors import DataError
from superlab.data.extract import decode_html, extract_text, require_extractor
from superlab.data.readers.paths import file_stem

HTML_TYPES = ("text/html", "application/xhtml+xml")
TEXT_TYPES = ("response", "conversion")
SNIFF_BYTES = 1024


def _warcio() -> tuple[Any, type[Exception]]:
    iterators = require("warcio.archiveiterator", "reading WARC", "web", error=DataError)
    exceptions = require("warcio.exceptions", "reading WARC", "web", error=DataError)
    return iterators.ArchiveIterator, exceptions.ArchiveLoadFailed


def read_warc_file(
    path: Path,
    extractor: str = "trafilatura",
    max_doc_bytes: int = 2_000_000,
    counts: Counter[str] | None = None,
) -> Iterator[Document | BadRecord]:
    """Stream one WARC/WET file (plain or ``.gz``): documents, and a ``BadRecord`` per bad one."""
    archive_iterator, load_failed = _warcio()
    require_extractor(extractor)  # a missing extractor is a configuration error: raise now
    counts = Counter() if counts is None else counts
    source, stem = str(path), file_stem(path)
    seen = 0  # records read, to resume after them in a single-member gzip
    end = 0  # byte offset just past the last good record
    try:
        with open(path, "rb") as f:
            it = archive_iterator(f)
            for rec in it:
                out, offset = _record(rec, it, source, stem, extractor, max_doc_bytes, counts)
                seen += 1
                end = offset + it.get_record_length()
                if out is not None:
                    yield out
            # warcio ends quietly when a file is cut inside a record's headers: bytes left
            # after the last whole record (beyond the blank lines between records) mean that.
            f.seek(end)
            if f.read(64).strip():
                yield BadRecord(
                    source, end, "read:truncated", "unparsed bytes after the last record"
                )
        return
    except load_failed as e:
        if "non-chunked gzip" not in str(e):
            yield BadRecord(source, end, "read:bad_warc", " ".join(str(e).split())[:300])
            return
    except EOFError as e:
        yield BadRecord(source, end, "read:truncated", str(e)[:300])
        return
    except (OSError, zlib.error, ValueError) as e:
        yield BadRecord(source, end, "read:bad_warc", f"{type(e).__name__}: {e}"[:300])
        return
    yield from _single_gzip(path, seen, extractor, max_doc_bytes, counts)


def _single_gzip(
    path: Path, skip: int, extractor: str, max_doc_bytes: int, counts: Counter[str]
) -> Iterator[Document | BadRecord]:
    """The records after the first ``skip`` of a WARC gzipped as one member."""
    archive_iterator, load_failed = _warcio()
    source, stem = str(path), file_stem(path)
    end = 0
    try:
        with gzip.open(path, "rb") as f:
            it = archive_iterator(f)
            for i, rec in enumerate(it):
                if i < skip:
                    continue
                out, offset = _record(rec, it, source, stem, extractor, max_doc_bytes, counts)
                end = offset + it.get_record_length()
                if out is not None:
                    yield out
    except (load_failed, OSError, EOFError, zlib.error, ValueError) as e:
        yield BadRecord(source, end, "read:bad_warc", f"{type(e).__name__}: {e}"[:300])


def _record(
    rec: Any,
    it: Any,
    source: str,
    stem: str,
    extractor: str,
    max_doc_bytes: int,
    counts: Counter[str],
) -> tuple[Document | BadRecord | None, int]:
    """One record to a document, a ``BadRecord``, or None (skipped); and its offset."""
    if rec.rec_type not in TEXT_TYPES:
        counts[f"skipped:{rec.rec_type}"] += 1
        return None, it.get_record_offset()
    build = _payload(rec, extractor, max_doc_bytes)
    offset = it.get_record_offset()  # only known once the record is read to its end
    out = build(offset)
    out.source = source
    if isinstance(out, Document) and not out.id:
        out.id = f"{stem}:{offset}"
    return out, offset


def _payload(rec: Any, extractor: str, max_doc_bytes: int) -> Callable[[int], Document | BadRecord]:
    """Read the payload now (the offset comes later); return how to build the result."""
    headers = rec.rec_headers
    meta = {
        "url": headers.get_header("WARC-Target-URI"),
        "date": headers.get_header("WARC-Date"),
        "warc_record_id": headers.get_header("WARC-Record-ID"),
        "content_type": headers.get_header("Content-Type"),
    }
    http = rec.http_headers

    def bad(reason: str, detail: str = "") -> Callable[[int], BadRecord]:
        return lambda offset: BadRecord("", offset, reason, detail)

    if rec.rec_type == "response":
        if http is None:
            return bad("read:not_http", "response without HTTP headers")
        status = http.get_statuscode() or ""
        if not status.startswith("2"):
            return bad("read:http_status", f"HTTP {status}")
        meta["content_type"] = http.get_header("Content-Type")
    try:
        stream = rec.content_stream()
        data = stream.read(max_doc_bytes + 1)
    except Exception as e:  # warcio's decoders raise many kinds on damaged bytes
        return bad("read:bad_payload", f"{type(e).__name__}: {e}"[:300])
    if len(data) > max_doc_bytes:
        return bad("read:giant", f"payload over {max_doc_bytes} bytes")
    if getattr(rec.raw_stream, "limit", 0) > 0:  # fewer bytes than Content-Length promised
        return bad("read:truncated", f"payload {rec.raw_stream.limit} bytes short")
    ctype = (meta["content_type"] or "").split(";")[0].strip().lower()
    if rec.rec_type == "conversion":
        text = decode_html(data, meta["content_type"]).strip()
    elif ctype in HTML_TYPES or (not ctype and _looks_like_html(data)):
        try:
            text = extract_text(data, meta["url"], extractor, meta["content_type"]) or ""
        except DataError:
            raise
        except Exception as e:  # lxml and extractors fail on hostile HTML
            return bad("read:extract_failed", f"{type(e).__name__}: {e}"[:300])
    else:
        return bad("read:not_html", ctype or "no content type")
    if not text:
        return bad("read:empty" if rec.rec_type == "conversion" else "read:no_text")
    rid = meta["warc_record_id"] or ""
    doc_id = rid.strip("<>")
    return lambda offset: Document(id=doc_id, text=text, metadata=meta, offset=offset)


def _looks_like_html(data: bytes) -> bool:
    head = data[:SNIFF_BYTES].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head
