"""Filters answer ``keep(doc) -> True | (False, reason)``; a modifier may rewrite ``doc.text``.

Reasons are ``<rule set>:<rule>`` (``gopher:stop_words``, ``c4:empty``) so that stats and
``rejects.jsonl`` say which published rule removed a document. Every filter reads the
document through one shared analysis (``analysis.analyze``), computed once per text.
A filter whose thresholds are ``FilterConfig`` fields subclasses ``ThresholdFilter``.
Modifiers count what they change: ``C4LineFilter.lines_removed``, ``PIIFilter.masked``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, Protocol, TypeAlias

from superlab.config.recipe import FilterConfig, LanguageConfig, PIIConfig
from superlab.data.document import Document

Verdict: TypeAlias = Literal[True] | tuple[Literal[False], str]


class Filter(Protocol):
    """Keep a document, or drop it with a reason."""

    def keep(self, doc: Document) -> Verdict: ...


class ThresholdFilter:
    """A filter whose thresholds are ``FilterConfig`` fields (its defaults when none given)."""

    def __init__(self, cfg: FilterConfig | None = None) -> None:
        self.cfg = cfg or FilterConfig()


def apply_filters(filters: Iterable[Filter], doc: Document) -> Verdict:
    """Run ``filters`` in order; the first drop wins and later filters do not see the doc."""
    for f in filters:
        verdict = f.keep(doc)
        if verdict is not True:
            return verdict
    return True


def build_filters(
    cfg: FilterConfig | None = None,
    language: LanguageConfig | None = None,
    pii: PIIConfig | None = None,
) -> list[Filter]:
    """The filters a recipe asks for, cheap ones first, PII masking last on kept documents.

    ``language`` and ``pii`` left as None are not applied (the pre-language pipeline).
    """
    from superlab.data.filters.c4 import C4LineFilter
    from superlab.data.filters.fineweb import FineWebQualityFilter
    from superlab.data.filters.gopher import GopherQualityFilter, GopherRepetitionFilter
    from superlab.data.filters.language import LanguageFilter
    from superlab.data.filters.length import LengthFilter
    from superlab.data.filters.pii import PIIFilter
    from superlab.data.filters.url import URLFilter

    cfg = cfg or FilterConfig()
    filters: list[Filter] = []
    if cfg.url_blocklist or cfg.url_blocklist_file:
        filters.append(URLFilter(cfg.url_blocklist, cfg.url_blocklist_file))
    if cfg.c4_lines:
        filters.append(C4LineFilter())
    # A word-count gate on the cleaned text; language before Gopher, so a foreign page is
    # dropped as language:fr rather than as gopher:stop_words.
    filters.append(LengthFilter(cfg.min_words, cfg.max_words))
    if language is not None and language.enabled:
        filters.append(LanguageFilter(language))
    filters += [GopherQualityFilter(cfg), GopherRepetitionFilter(cfg)]
    # FineWeb's rules come on top of Gopher's and C4's (Penedo et al. 2024, sec. 3.3), so
    # a fineweb:* reason names a document only FineWeb's rules remove.
    if cfg.fineweb:
        filters.append(FineWebQualityFilter(cfg))
    if pii is not None and (pii.emails or pii.ips):
        filters.append(PIIFilter(pii))
    return filters


__all__ = ["Filter", "Verdict", "apply_filters", "build_filters"]
