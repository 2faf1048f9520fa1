"""The held-out split: a document's side depends only on its id's hash, not on order."""

from __future__ import annotations

import xxhash

TRAIN, HELDOUT = "train", "heldout"
SPLITS = (TRAIN, HELDOUT)


def heldout_score(doc_id: str) -> float:
    """A uniform number in [0, 1) from the id's xxh3-64 hash."""
    return xxhash.xxh3_64_intdigest(doc_id.encode("utf-8")) / 2**64


class HeldoutSplit:
    """``split_of(id)``: ``heldout`` when the id's score is below ``fraction``, else ``train``.

    ``forced`` names ids sent to held-out regardless (``HeldoutGuard`` picks one when a
    small corpus would otherwise get an empty held-out split).
    """

    def __init__(self, fraction: float, forced: frozenset[str] = frozenset()) -> None:
        self.fraction = fraction
        self.forced = forced

    def split_of(self, doc_id: str) -> str:
        """``train`` or ``heldout`` for this document id."""
        if doc_id in self.forced or heldout_score(doc_id) < self.fraction:
            return HELDOUT
        return TRAIN


class HeldoutGuard:
    """Watches the final ids; ``forced()`` is the lowest-scoring id if none fell in held-out.

    The choice depends only on the set of ids, so it too is independent of order. It is
    made only when held-out was asked for and at least two documents exist.
    """

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction
        self.docs = 0
        self.heldout = 0
        self._best: tuple[float, str] | None = None

    def observe(self, doc_id: str) -> None:
        """Count one final document."""
        score = heldout_score(doc_id)
        self.docs += 1
        self.heldout += score < self.fraction
        if self._best is None or (score, doc_id) < self._best:
            self._best = (score, doc_id)

    def forced(self) -> frozenset[str]:
        """The ids to force into held-out (empty or one)."""
        if self.fraction > 0 and self.heldout == 0 and self.docs >= 2 and self._best:
            return frozenset({self._best[1]})
        return frozenset()
