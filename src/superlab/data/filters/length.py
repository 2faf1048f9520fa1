"""Word-count bounds: Gopher's first quality rule, run alone as a cheap gate."""

from __future__ import annotations

from superlab.data.document import Document
from superlab.data.filters import Verdict
from superlab.data.filters.analysis import analyze


class LengthFilter:
    """Keep documents with ``min_words`` to ``max_words`` words (punctuation-only tokens excluded).

    Gopher (Rae et al. 2021, appendix A.1.1) keeps 50 to 100,000 words; the reasons
    are ``gopher:min_words`` and ``gopher:max_words`` because the bounds are Gopher's.
    """

    def __init__(self, min_words: int = 50, max_words: int = 100_000) -> None:
        self.min_words = min_words
        self.max_words = max_words

    def keep(self, doc: Document) -> Verdict:
        n = analyze(doc).n_words
        if n < self.min_words:
            return False, "gopher:min_words"
        if n > self.max_words:
            return False, "gopher:max_words"
        return True
