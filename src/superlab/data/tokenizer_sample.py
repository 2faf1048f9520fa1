"""The deterministic sample of documents the tokenizer trains on (``data.tokenizer_sample``).

How it is drawn: every document gets a key, the 64-bit xxh3 hash of its id under a fixed seed
(``SAMPLE_SEED``, not the held-out split's, so the two draws are independent); documents are
taken in ascending key order (ties: corpus order) while both limits hold, ``docs`` documents
and ``bytes`` UTF-8 bytes of text, and the first that would break one ends the sample. So the
sample is a function of the set of (id, text) pairs alone: not of the executor, the number of
workers or the order documents arrive in, and a larger limit gives a superset. It is drawn in
one streaming pass holding only the sample (a max-heap on the key), then trained on in corpus
order.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

import xxhash

from superlab.data.document import Document

SAMPLE_SEED = 0x70C5A3F1  # any fixed value other than the held-out split's (xxh3 seed 0)


def sample_key(doc_id: str) -> int:
    """A document's place in the sampling order."""
    return xxhash.xxh3_64_intdigest(doc_id.encode("utf-8"), seed=SAMPLE_SEED)


@dataclass
class TokenizerSample:
    """Collects the sample from a stream of documents; ``documents()`` in corpus order."""

    max_docs: int | None = None
    max_bytes: int | None = None
    bytes: int = 0
    _heap: list[tuple[int, int, int, Document]] = field(default_factory=list)  # -key, -pos
    _cutoff: tuple[int, int] | None = None  # (key, pos) at or past which nothing can enter
    _seen: int = 0

    def add(self, doc: Document) -> None:
        """Offer the next document of the corpus."""
        pos, self._seen = self._seen, self._seen + 1
        rank = (sample_key(doc.id), pos)
        if self._cutoff is not None and rank >= self._cutoff:
            return
        size = len(doc.text.encode("utf-8"))
        heapq.heappush(self._heap, (-rank[0], -rank[1], size, doc))
        self.bytes += size
        while self._heap and self._over():
            # The last in key order can never be in the sample: with it, the documents
            # before it in key order already break a limit.
            neg_key, neg_pos, size, _ = heapq.heappop(self._heap)
            self.bytes -= size
            self._cutoff = (-neg_key, -neg_pos)

    def _over(self) -> bool:
        too_many = self.max_docs is not None and len(self._heap) > self.max_docs
        return too_many or (self.max_bytes is not None and self.bytes > self.max_bytes)

    def documents(self) -> list[Document]:
        """The sample, in corpus order."""
        return [d for *_, d in sorted(self._heap, key=lambda e: -e[1])]


def sample_documents(
    docs: Iterable[Document], max_docs: int | None, max_bytes: int | None
) -> list[Document]:
    """The sample of ``docs`` under the two limits (None: no limit), in corpus order."""
    sample = TokenizerSample(max_docs, max_bytes)
    for doc in docs:
        sample.add(doc)
    return sample.documents()
