"""URL blocklist: drop documents served from a listed domain or any of its subdomains.

Matching is by domain suffix on a label boundary, case-insensitive: ``example.com``
blocks ``example.com``, ``www.example.com`` and ``a.b.example.com`` but not
``notexample.com``. (C4 and FineWeb block adult and malware domains the same way,
with the UT1 blocklist; Raffel et al. 2020, Penedo et al. 2024.)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from superlab.data.document import Document
from superlab.data.filters import Verdict


def normalize_domain(entry: str) -> str:
    """``"*.Example.COM."`` or ``"https://example.com/x"`` -> ``"example.com"``; "" if none."""
    entry = entry.strip().lower()
    if "://" in entry:
        entry = urlsplit(entry).hostname or ""
    return entry.lstrip("*.").rstrip(".")


def read_blocklist(path: str | Path) -> list[str]:
    """Domains from a file: one a line, ``#`` starts a comment, blank lines skipped."""
    text = Path(path).read_text(encoding="utf-8")
    return [d for line in text.splitlines() if (d := line.split("#", 1)[0].strip())]


def host_of(url: str) -> str:
    """The lowercased host of ``url`` without port or trailing dot ("" if it has none)."""
    try:
        host = urlsplit(url if "//" in url else "//" + url).hostname
    except ValueError:  # malformed, e.g. a bad IPv6 literal
        return ""
    return (host or "").rstrip(".")


class URLFilter:
    """Drop a document whose ``metadata["url"]`` host is, or is under, a blocked domain."""

    def __init__(self, domains: Iterable[str] = (), file: str | Path | None = None) -> None:
        entries = [*domains, *(read_blocklist(file) if file else [])]
        self.domains = frozenset(d for d in map(normalize_domain, entries) if d)

    def keep(self, doc: Document) -> Verdict:
        url = doc.metadata.get("url")
        if not url or not self.domains:
            return True
        host = host_of(str(url))
        # Every suffix on a label boundary: a.b.c -> a.b.c, b.c, c.
        while host:
            if host in self.domains:
                return False, "url:blocklist"
            host = host.partition(".")[2]
        return True
