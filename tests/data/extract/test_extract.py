from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest

from superlab.data.errors import DataError
from superlab.data.extract import decode_html, extract_text


@pytest.mark.parametrize(
    ("data", "content_type", "expected"),
    [
        ("<p>déjà vu</p>".encode(), None, "<p>déjà vu</p>"),  # undeclared: UTF-8 first
        ("<p>déjà</p>".encode("cp1252"), "text/html; charset=ISO-8859-1", "<p>déjà</p>"),
        (b'<meta charset="windows-1251"><p>' + "мир".encode("cp1251"), None, "мир"),
        ("<p>中文</p>".encode("gbk"), "text/html; charset=gb2312", "中文"),  # GBK under gb2312
        ("<p>x</p>".encode("utf-8-sig"), "text/html; charset=cp1252", "<p>x</p>"),  # BOM wins
        ("<p>ü</p>".encode(), "text/html; charset=bogus-charset", "<p>ü</p>"),
    ],
)
def test_decode_html(data: bytes, content_type: str | None, expected: str) -> None:
    assert expected in decode_html(data, content_type)


def test_decode_html_never_raises_on_garbage() -> None:
    assert isinstance(decode_html(bytes(range(256)) * 10, "text/html; charset=utf-8"), str)


def test_extract_text_on_a_benchmark_page(shared_data: Path) -> None:
    pytest.importorskip("trafilatura", reason="trafilatura not installed (superlab[web])")
    bench = shared_data / "web" / "article-extraction-benchmark"
    truth = json.loads((bench / "ground-truth.json").read_text(encoding="utf-8"))
    page_id = sorted(truth)[0]
    html = gzip.decompress((bench / "html" / f"{page_id}.html.gz").read_bytes())
    text = extract_text(html, truth[page_id]["url"])
    assert text is not None
    body = truth[page_id]["articleBody"]
    words = set(body.lower().split())
    assert len(words & set(text.lower().split())) / len(words) > 0.8
    assert extract_text("<html><body>   </body></html>", None) is None
    assert extract_text(b"", None) is None


def test_resiliparse_extractor() -> None:
    pytest.importorskip("resiliparse", reason="resiliparse not installed (optional)")
    html = "<html><body><nav>Home | About</nav><main><p>" + "Real content here. " * 30
    text = extract_text(html + "</p></main></body></html>", None, extractor="resiliparse")
    assert text is not None and "Real content here." in text


def test_unknown_or_missing_extractor(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="unknown extractor 'magic'"):
        extract_text("<p>x</p>", None, extractor="magic")
    monkeypatch.setitem(sys.modules, "trafilatura", None)
    with pytest.raises(DataError, match=r"'trafilatura' package .*superlab\[web\]"):
        extract_text("<p>x</p>", None)
