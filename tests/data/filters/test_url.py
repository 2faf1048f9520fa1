from __future__ import annotations

from pathlib import Path

import pytest

from superlab.data import Document
from superlab.data.filters.url import URLFilter, host_of


def doc(url: str | None) -> Document:
    return Document("d", "text", metadata={} if url is None else {"url": url})


@pytest.mark.parametrize(
    "url",
    [
        "https://bad.example/page",
        "http://WWW.Bad.Example:8080/x?y=1",
        "https://a.b.bad.example./",
        "bad.example/path",
        "https://user:pw@shop.bad.example",
    ],
)
def test_host_equal_to_or_under_a_blocked_domain_is_dropped(url: str) -> None:
    assert URLFilter(["Bad.Example"]).keep(doc(url)) == (False, "url:blocklist")


@pytest.mark.parametrize(
    "url", ["https://notbad.example/", "https://bad.example.org/", "https://example/", None, ""]
)
def test_other_hosts_and_docs_without_url_pass(url: str | None) -> None:
    assert URLFilter(["bad.example"]).keep(doc(url)) is True


def test_blocklist_file_with_comments(tmp_path: Path) -> None:
    path = tmp_path / "block.txt"
    path.write_text("# adult\nporn.test  # inline comment\n\n*.casino.test\nhttps://x.test/a\n")
    f = URLFilter(["spam.test"], file=path)
    assert f.domains == {"porn.test", "casino.test", "x.test", "spam.test"}
    assert f.keep(doc("https://www.casino.test/win")) == (False, "url:blocklist")
    assert f.keep(doc("https://spam.test")) == (False, "url:blocklist")
    assert f.keep(doc("https://wiki.test")) is True


def test_malformed_urls_do_not_raise() -> None:
    assert host_of("http://[::1") == ""
    assert URLFilter(["bad.example"]).keep(doc("http://[::1")) is True
