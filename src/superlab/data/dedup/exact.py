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


def exact_key(text: str) -> str:
    """The exact-dedup key of a text: xxh3-128 of its normalized form, as hex (JSON-safe)."""
    return xxhash.xxh3_128_hexdigest(normalize(text).encode("utf-8"))


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
        return self.dup_of_key(exact_key(doc.text), doc.id)

    def dup_of_key(self, key: str, doc_id: str) -> str | None:
        """``dup_of`` for a precomputed ``exact_key`` (the pipeline hashes in its workers)."""
        h = int(key, 16)  # an int keeps the corpus-sized dict small
        first = self._first.get(h)
        if first is None:
            self._first[h] = doc_id
        return first

    def __len__(self) -> int:
        return len(self._first)
