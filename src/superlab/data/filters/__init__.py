"""Filters answer ``keep(doc) -> True | (False, reason)``; a line filter may rewrite ``doc.text``.

Reasons are ``<rule set>:<rule>`` (``gopher:stop_words``, ``c4:empty``) so that stats and
``rejects.jsonl`` say which published rule removed a document.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, Protocol, TypeAlias

from superlab.config.recipe import FilterConfig
from superlab.data.document import Document

Verdict: TypeAlias = Literal[True] | tuple[Literal[False], str]


class Filter(Protocol):
    """Keep a document, or drop it with a reason."""

    def keep(self, doc: Document) -> Verdict: ...


def apply_filters(filters: Iterable[Filter], doc: Document) -> Verdict:
    """Run ``filters`` in order; the first drop wins and later filters do not see the doc."""
    for f in filters:
        verdict = f.keep(doc)
        if verdict is not True:
            return verdict
    return True


def build_filters(cfg: FilterConfig) -> list[Filter]:
    """The quality filters a recipe asks for, in the order they run."""
    from superlab.data.filters.c4 import C4LineFilter
    from superlab.data.filters.gopher import GopherQualityFilter, GopherRepetitionFilter
    from superlab.data.filters.length import LengthFilter

    filters: list[Filter] = [C4LineFilter()] if cfg.c4_lines else []
    # Cheap word-count gate first, on the cleaned text; then the costlier Gopher rules.
    filters += [LengthFilter(cfg.min_words, cfg.max_words), GopherRepetitionFilter(cfg)]
    filters.append(GopherQualityFilter(cfg))
    return filters


__all__ = ["Filter", "Verdict", "apply_filters", "build_filters"]
