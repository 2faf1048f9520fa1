"""Exact deduplication: one 128-bit hash of normalized text per document, first one wins."""

from __future__ import annotations

import re

import xxhash

from superlab.data.document import Document

_PUNCT = re.compile(r"[^\w\s]+")


def normalize(text: str) -> str:
    """Lowercase, punctuation removed, whitespace collapsed: what "the same text" means here.

    Documents differing only in case, punctuation or spacing count as duplicates (the
    CCNet-style normalization Lee et al. 2022 use before exact matching).
    """
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


class ExactDedup:
    """Remembers every normalized text seen; ``dup_of(doc)`` names the earlier survivor.

    The dict from xxh3-128 digest to survivor id is the one corpus-sized structure of
    the data stage (about 150 bytes per unique document). With 128-bit hashes a false
    match is ~1e-20 likely even at 1e9 documents. Deterministic: the first occurrence
    in input order survives.
    """

    def __init__(self) -> None:
        self._first: dict[int, str] = {}

    def dup_of(self, doc: Document) -> str | None:
        """The id of the first document with the same normalized text, or None (and remember it)."""
        key = xxhash.xxh3_128_intdigest(normalize(doc.text).encode("utf-8"))
        first = self._first.get(key)
        if first is None:
            self._first[key] = doc.id
        return first

    def __len__(self) -> int:
        return len(self._first)
