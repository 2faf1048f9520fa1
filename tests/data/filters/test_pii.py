from __future__ import annotations

import pytest

from superlab.config.recipe import PIIConfig
from superlab.data import Document
from superlab.data.filters.pii import PIIFilter


def mask(text: str, f: PIIFilter | None = None) -> str:
    d = Document("d", text)
    assert (f or PIIFilter()).keep(d) is True  # a modifier never drops
    return d.text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Write to jane.doe+news@mail.co.uk today.", "Write to email@example.com today."),
        ("<a@b.io>, (c_d@e-f.org)", "<email@example.com>, (email@example.com)"),
        ("DNS at 8.8.8.8.", "DNS at 192.0.2.1."),
        ("from 2a00:1450:4001:81b::200e ok", "from 2001:db8::1 ok"),
    ],
)
def test_emails_and_public_ips_are_masked(text: str, masked: str) -> None:
    assert mask(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "Private 192.168.1.1, loopback 127.0.0.1, docs 192.0.2.7 and ::1.",  # not public
        "Not an IP: 999.1.1.1, and 1.2.3.4.5 is a version string.",
        "Upgrade to version 1.2.3.4 or v8.8.8.8 now.",
        "At 12:30:45 the user @handle wrote a@b (no domain).",
        "Placeholders stay: email@example.com",
    ],
)
def test_lookalikes_and_non_public_addresses_are_left(text: str) -> None:
    assert mask(text) == text


def test_counts_by_kind_and_switches() -> None:
    f = PIIFilter()
    mask("a@b.com c@d.com 8.8.8.8 1.1.1.1 9.9.9.9", f)
    mask("e@f.com", f)
    assert f.masked == {"pii:email": 3, "pii:ip": 3}
    only_ips = PIIFilter(PIIConfig(emails=False))
    assert mask("a@b.com 8.8.8.8", only_ips) == "a@b.com 192.0.2.1"
    assert only_ips.masked == {"pii:ip": 1}
