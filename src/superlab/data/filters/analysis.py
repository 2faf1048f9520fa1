"""One analysis per document, shared by every filter and by MinHash.

datatrove re-splits and re-tokenizes the text in each filter; here ``analyze(doc)``
builds a ``TextStats`` once per text and every filter reads its lazily computed,
cached fields (lines, words, symbol tokens, duplicate lines, MinHash words). The
cache is keyed by the identity of ``doc.text``: a filter that rewrites the text (C4's
line filter, PII masking) assigns a new string, so the next ``analyze`` call builds
a fresh analysis; ``set_text`` lets such a filter hand over what it already knows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property

from superlab.data.document import Document
from superlab.data.filters.words import count_alpha_tokens, symbol_tokens

_PARAGRAPHS = re.compile(r"\n\s*\n")
# The same normalisation as ``superlab.data.dedup.exact.normalize``: lowercase, each run of
# characters that are neither word characters nor whitespace becomes a space.
_NON_WORD = re.compile(r"[^\w\s]+")


class TextStats:
    """Lazily computed facts about one text; each field is computed at most once."""

    def __init__(self, text: str, lines: list[str] | None = None) -> None:
        self.text = text
        if lines is not None:  # a line filter already knows the stripped non-blank lines
            self.__dict__["lines"] = lines

    @cached_property
    def raw_lines(self) -> list[str]:
        """``text.splitlines()``, unstripped, blank lines included."""
        return self.text.splitlines()

    @cached_property
    def lines(self) -> list[str]:
        """The stripped non-blank lines."""
        return [s for s in (ln.strip() for ln in self.raw_lines) if s]

    @cached_property
    def paragraphs(self) -> list[str]:
        """The stripped non-blank paragraphs (blocks separated by blank lines)."""
        return [s for s in (p.strip() for p in _PARAGRAPHS.split(self.text)) if s]

    @cached_property
    def words(self) -> list[str]:
        """Whitespace-separated tokens."""
        return self.text.split()

    @cached_property
    def symbols(self) -> list[str]:
        """Tokens with no letter or digit (``--``, ``...``, ``•``)."""
        return symbol_tokens(self.text)

    @cached_property
    def n_words(self) -> int:
        """Gopher's word count: tokens that are not symbols alone."""
        return len(self.words) - len(self.symbols)

    @cached_property
    def word_chars(self) -> int:
        """Characters in all tokens (whitespace excluded)."""
        return sum(map(len, self.words))

    @cached_property
    def n_alpha_words(self) -> int:
        """Tokens with at least one letter."""
        return count_alpha_tokens(self.text)

    @cached_property
    def line_dups(self) -> tuple[int, int, int]:
        """(repeated lines, their characters, characters of all lines) over ``lines``."""
        return duplicates(self.lines)

    @cached_property
    def paragraph_dups(self) -> tuple[int, int, int]:
        """(repeated paragraphs, their characters, characters of all paragraphs)."""
        return duplicates(self.paragraphs)

    @cached_property
    def minhash_words(self) -> list[str]:
        """Lowercased words with punctuation replaced by spaces: MinHash's shingle input."""
        return _NON_WORD.sub(" ", self.text.lower()).split()


def duplicates(items: Sequence[str]) -> tuple[int, int, int]:
    """(items seen before, their characters, all characters): repeats after the first."""
    seen: set[str] = set()
    n_dup = dup_chars = total = 0
    for it in items:
        total += len(it)
        if it in seen:
            n_dup += 1
            dup_chars += len(it)
        else:
            seen.add(it)
    return n_dup, dup_chars, total


# One entry per process: filters run one document at a time, so the last analysis is the
# one the next filter needs. Holding the text keeps its identity valid.
_last: TextStats | None = None


def analyze(doc: Document) -> TextStats:
    """The shared analysis of ``doc.text``, built on first use and reused until the text changes."""
    global _last
    stats = _last
    if stats is None or stats.text is not doc.text:
        stats = _last = TextStats(doc.text)
    return stats


def set_text(doc: Document, text: str, lines: list[str] | None = None) -> None:
    """Rewrite ``doc.text`` and start its analysis, seeded with its stripped non-blank lines."""
    global _last
    doc.text = text
    _last = TextStats(text, lines)


def words_for_minhash(doc: Document) -> list[str]:
    """Lowercase, punctuation replaced by spaces, split on whitespace (cached per text)."""
    return analyze(doc).minhash_words
