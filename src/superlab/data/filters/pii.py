"""Mask personal data in kept documents: email addresses and public IP addresses.

A modifier, like C4's line filter: it rewrites ``doc.text`` and never drops. As in
datatrove's ``PIIFormatter`` (used for FineWeb), only *public* IPs are masked: private,
loopback, link-local, reserved and documentation addresses identify no one. Things
that look like IPs but are versions are left alone: an address glued to more dotted
numbers or letters (``1.2.3.4.5``, ``v1.2.3.4``) or right after "version"/"release".
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter

from superlab.config.recipe import PIIConfig
from superlab.data.document import Document
from superlab.data.filters import Verdict
from superlab.data.filters.analysis import set_text

EMAIL_MASK = "email@example.com"
IPV4_MASK = "192.0.2.1"  # TEST-NET-1 (RFC 5737): not public, so masking is idempotent
IPV6_MASK = "2001:db8::1"  # documentation prefix (RFC 3849)

_EMAIL = re.compile(
    r"(?<![\w.%+-])[\w.%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}(?![\w-])"
)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_VERSION_BEFORE = re.compile(r"(?:version|release|ver\.|build)\s*$", re.IGNORECASE)


def _public_ip(s: str) -> bool:
    """True for a valid, globally routable IPv4 or IPv6 address."""
    try:
        return ipaddress.ip_address(s).is_global
    except ValueError:
        return False


class PIIFilter:
    """Replace emails and public IPs with fixed documentation addresses (RFC 2606, 5737, 3849).

    ``masked`` holds ``pii:email`` and ``pii:ip`` counts over every document seen.
    """

    def __init__(self, cfg: PIIConfig | None = None) -> None:
        cfg = cfg or PIIConfig()
        self.emails = cfg.emails
        self.ips = cfg.ips
        self.masked: Counter[str] = Counter()

    def keep(self, doc: Document) -> Verdict:
        text = doc.text
        counts: Counter[str] = Counter()
        if self.emails and "@" in text:
            text = _EMAIL.sub(lambda m: self._mask(m, EMAIL_MASK, "pii:email", counts), text)
        if self.ips and "." in text:
            text = _IPV4.sub(lambda m: self._ip(m, IPV4_MASK, counts), text)
        if self.ips and ":" in text:
            text = _IPV6.sub(lambda m: self._ip(m, IPV6_MASK, counts), text)
        if counts:
            self.masked.update(counts)
            set_text(doc, text)
        return True

    @staticmethod
    def _mask(m: re.Match[str], mask: str, kind: str, counts: Counter[str]) -> str:
        if m.group() == mask:
            return mask
        counts[kind] += 1
        return mask

    @staticmethod
    def _ip(m: re.Match[str], mask: str, counts: Counter[str]) -> str:
        s = m.group()
        if not _public_ip(s) or _VERSION_BEFORE.search(m.string, 0, m.start()):
            return s
        counts["pii:ip"] += 1
        return mask
