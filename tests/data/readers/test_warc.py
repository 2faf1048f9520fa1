from __future__ import annotations

import gzip
import io
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from superlab.data.document import BadRecord, Document
from superlab.data.errors import DataError
from superlab.data.readers.warc import read_warc_file

pytest.importorskip("warcio", reason="warcio not installed (the superlab[web] extra)")
pytest.importorskip("trafilatura", reason="trafilatura not installed (the superlab[web] extra)")

ARTICLE = "<html><body><article>" + "<p>Rivers carry water to the sea every day.</p>" * 20


def _split(recs: list) -> tuple[list[Document], list[BadRecord]]:
    return [r for r in recs if isinstance(r, Document)], [
        r for r in recs if isinstance(r, BadRecord)
    ]


def _tokens(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", text.lower()))


def test_common_crawl_excerpt(shared_data: Path) -> None:
    counts: Counter[str] = Counter()
    path = shared_data / "warc" / "cc-2020-34-excerpt.warc.gz"
    docs, bad = _split(list(read_warc_file(path, counts=counts)))
    # 16 responses: 15 with text, one whose page has no main text.
    assert (len(docs), [b.reason for b in bad]) == (15, ["read:no_text"])
    assert counts == {"skipped:warcinfo": 1, "skipped:request": 17, "skipped:metadata": 16}
    first = docs[0]
    assert (first.offset, first.source) == (940, str(path))
    assert first.id.startswith("urn:uuid:") and first.metadata["url"].startswith("http://")
    assert set(first.metadata) == {"url", "date", "warc_record_id", "content_type"}
    assert [d.offset for d in docs] == sorted(d.offset for d in docs)
    cyrillic = next(d for d in docs if "01spb.ru" in d.metadata["url"])  # windows-1251
    assert "компании" in cyrillic.text


def test_extracted_text_is_within_common_crawls_wet_text(shared_data: Path) -> None:
    (html,) = read_warc_file(shared_data / "warc" / "whirlwind.warc.gz")
    (wet,) = read_warc_file(shared_data / "warc" / "whirlwind.warc.wet.gz")
    assert html.metadata["url"] == wet.metadata["url"] == "https://an.wikipedia.org/wiki/Escopete"
    assert wet.metadata["content_type"] == "text/plain" and wet.offset == 466
    ours, theirs = _tokens(html.text), _tokens(wet.text)
    overlap = sum((ours & theirs).values())
    # WET keeps the whole page (menus too); ours is the article: contained in it, and smaller.
    assert overlap / sum(ours.values()) >= 0.95
    assert 0.3 <= overlap / sum(theirs.values()) <= 0.9


MALFORMED = {
    # file: (documents, bad-record reasons)
    "clipped.warc.gz": (0, ["read:truncated"]),
    "example-bad-non-chunked.warc.gz": (1, []),
    "example-bad.warc.gz.bad": (1, ["read:http_status"]),
    "example-trunc.warc": (1, []),
    "example-wget-bad-target-uri.warc.gz": (1, []),
    "example-wrong-chunks.warc.gz": (0, ["read:truncated", "read:bad_warc"]),
}


def test_every_malformed_file_is_covered(shared_data: Path) -> None:
    names = {p.name for p in (shared_data / "warc" / "malformed").iterdir()} - {"LICENSE"}
    assert names == set(MALFORMED)


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_files_never_raise(shared_data: Path, name: str) -> None:
    recs = list(read_warc_file(shared_data / "warc" / "malformed" / name))
    docs, bad = _split(recs)
    assert (len(docs), [b.reason for b in bad]) == MALFORMED[name]


def _warc(records: list[tuple[str, str, bytes, str]], gz: bool = True) -> bytes:
    """A WARC of (type, url, payload, content type) records, written with warcio."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=gz)
    for kind, url, payload, ctype in records:
        http = None
        if kind == "response":
            status = "404 Not Found" if "missing" in url else "200 OK"
            http = StatusAndHeaders(status, [("Content-Type", ctype)], protocol="HTTP/1.1")
        rec = writer.create_warc_record(
            url,
            kind,
            payload=io.BytesIO(payload),
            http_headers=http,
            warc_content_type=ctype if kind != "response" else None,
        )
        writer.write_record(rec)
    return buf.getvalue()


GENERATED = [
    ("warcinfo", "", b"software: test\r\n", "application/warc-fields"),
    ("response", "http://a.test/", ARTICLE.encode(), "text/html; charset=utf-8"),
    ("request", "http://a.test/", b"GET / HTTP/1.1\r\n\r\n", "application/http"),
    ("response", "http://a.test/logo.png", b"\x89PNG....", "image/png"),
    ("response", "http://a.test/missing", b"<html>gone</html>", "text/html"),
    ("response", "http://a.test/huge", b"<html>" + b"<p>big</p>" * 2000, "text/html"),
    ("conversion", "http://a.test/", b"Plain text from a WET file.", "text/plain"),
    ("conversion", "http://a.test/blank", b"  \n", "text/plain"),
    ("response", "http://b.test/", ARTICLE.encode("utf-16"), "text/html"),
]


def test_generated_warc_every_record_kind(tmp_path: Path) -> None:
    p = tmp_path / "gen.warc.gz"
    p.write_bytes(_warc(GENERATED))
    counts: Counter[str] = Counter()
    recs = list(read_warc_file(p, max_doc_bytes=10_000, counts=counts))
    assert [(type(r).__name__, getattr(r, "reason", "")) for r in recs] == [
        ("Document", ""),
        ("BadRecord", "read:not_html"),
        ("BadRecord", "read:http_status"),
        ("BadRecord", "read:giant"),
        ("Document", ""),
        ("BadRecord", "read:empty"),
        ("Document", ""),
    ]
    assert counts == {"skipped:warcinfo": 1, "skipped:request": 1}
    docs, _ = _split(recs)
    assert "Rivers carry water" in docs[0].text and docs[1].text == "Plain text from a WET file."
    assert docs[2].text == docs[0].text  # UTF-16 with a BOM, no declared charset
    assert len({r.offset for r in recs}) == len(recs) and recs[0].offset > 0


@pytest.mark.parametrize("gz", [True, False])
def test_cut_file_keeps_records_before_the_cut(tmp_path: Path, gz: bool) -> None:
    data = _warc([GENERATED[1]] * 5, gz=gz)
    p = tmp_path / ("cut.warc.gz" if gz else "cut.warc")
    p.write_bytes(data[: len(data) * 7 // 10])
    docs, bad = _split(list(read_warc_file(p)))
    assert len(docs) == 3 and len(bad) == 1
    assert bad[0].reason in ("read:truncated", "read:bad_warc") and bad[0].offset >= docs[-1].offset


def test_single_member_gzip_is_read_whole(tmp_path: Path) -> None:
    p = tmp_path / "one-member.warc.gz"
    p.write_bytes(gzip.compress(_warc([GENERATED[1], GENERATED[6]] * 3, gz=False)))
    docs, bad = _split(list(read_warc_file(p)))
    assert (len(docs), bad) == (6, [])


def test_missing_extractor_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = tmp_path / "x.warc"
    p.write_bytes(_warc([GENERATED[1]], gz=False))
    monkeypatch.setitem(sys.modules, "resiliparse", None)
    with pytest.raises(DataError, match=r"'resiliparse' package .*superlab\[resiliparse\]"):
        list(read_warc_file(p, extractor="resiliparse"))
