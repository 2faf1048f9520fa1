from __future__ import annotations

import pickle

from superlab.config.recipe import FilterConfig, LanguageConfig, PIIConfig
from superlab.data import Document
from superlab.data.filters import apply_filters, build_filters

from ..helpers import english


def kinds(filters: list[object]) -> list[str]:
    return [type(f).__name__ for f in filters]


def test_full_chain_order() -> None:
    cfg = FilterConfig(url_blocklist=["bad.test"])
    assert kinds(build_filters(cfg, LanguageConfig(), PIIConfig())) == [
        "URLFilter",
        "C4LineFilter",
        "LengthFilter",
        "LanguageFilter",
        "GopherQualityFilter",
        "GopherRepetitionFilter",
        "FineWebQualityFilter",
        "PIIFilter",
    ]


def test_backwards_compatible_call_and_switches() -> None:
    # build_filters(cfg.filters): no language id, no PII, no URL filter without a list.
    assert kinds(build_filters(FilterConfig())) == [
        "C4LineFilter",
        "LengthFilter",
        "GopherQualityFilter",
        "GopherRepetitionFilter",
        "FineWebQualityFilter",
    ]
    off = build_filters(
        FilterConfig(c4_lines=False, fineweb=False),
        LanguageConfig(enabled=False),
        PIIConfig(emails=False, ips=False),
    )
    assert kinds(off) == ["LengthFilter", "GopherQualityFilter", "GopherRepetitionFilter"]


def test_chain_is_picklable_and_works_after_a_round_trip(tmp_path: object) -> None:
    filters = build_filters(FilterConfig(url_blocklist=["bad.test"]), pii=PIIConfig())
    filters = pickle.loads(pickle.dumps(filters))
    text = english(3) + "\nWrite to someone@mail.test for details."
    d = Document("d", text, metadata={"url": "https://ok.test/a"})
    assert apply_filters(filters, d) is True
    assert "email@example.com" in d.text
    blocked = Document("b", text, metadata={"url": "https://www.bad.test/a"})
    assert apply_filters(filters, blocked) == (False, "url:blocklist")
