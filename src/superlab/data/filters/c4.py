"""C4's line rules (Raffel et al. 2020, section 2.2), a filter that also rewrites the text.

Order and details follow the reference implementation, ``clean_page`` in
tensorflow_datasets' ``c4_utils.py``: per stripped line, drop it without terminal
punctuation (or ending in an ellipsis), then with fewer than 3 words; drop the page
on "lorem ipsum"; drop lines with "javascript"; drop the page on "{"; drop policy
boilerplate lines. Like datatrove's ``C4QualityFilter`` it rewrites ``doc.text`` to
the lines kept; blank lines are kept as paragraph breaks and are not counted.
"""

from __future__ import annotations

from collections import Counter

from superlab.data.document import Document
from superlab.data.filters import Verdict
from superlab.data.filters.analysis import analyze, set_text

# c4_utils._END_MARKS, plus the typographic closing quotes.
END_MARKS = (".", "?", "!", '"', "”")
ELLIPSES = ("...", "…")
MIN_WORDS_PER_LINE = 3  # c4_utils: min_words_per_line=3
# C4 paper: 'removed any lines containing the strings "terms of use", "privacy policy",
# "cookie policy", "uses cookies", "use of cookies", or "use cookies"'.
POLICY_SUBSTRINGS = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)


class C4LineFilter:
    """Remove C4's bad lines from ``doc.text``; drop the document with a reason if it must go.

    ``lines_removed`` counts removed lines by reason (``c4:no_terminal_punct``,
    ``c4:short_line``, ``c4:javascript``, ``c4:policy``) over documents that were kept
    or became empty (``c4:empty``); a document dropped whole (``c4:lorem_ipsum``,
    ``c4:curly_bracket``) counts as one document removal, not as its lines.
    """

    def __init__(self) -> None:
        self.lines_removed: Counter[str] = Counter()

    def keep(self, doc: Document) -> Verdict:
        kept: list[str] = []
        removed: Counter[str] = Counter()
        for raw in analyze(doc).raw_lines:
            line = raw.strip()
            if not line:
                if kept and kept[-1]:
                    kept.append("")
                continue
            reason = self._line_reason(line)
            if reason == "c4:lorem_ipsum" or reason == "c4:curly_bracket":
                return False, reason
            if reason:
                removed[reason] += 1
            else:
                kept.append(line)
        self.lines_removed.update(removed)
        while kept and not kept[-1]:
            kept.pop()
        if not kept:
            return False, "c4:empty"
        set_text(doc, "\n".join(kept), [ln for ln in kept if ln])
        return True

    @staticmethod
    def _line_reason(line: str) -> str | None:
        """Why C4 removes this (stripped, non-empty) line, or None to keep it."""
        if not line.endswith(END_MARKS) or line.endswith(ELLIPSES):
            return "c4:no_terminal_punct"
        if len(line.split()) < MIN_WORDS_PER_LINE:
            return "c4:short_line"
        low = line.lower()
        if "lorem ipsum" in low:
            return "c4:lorem_ipsum"
        if "javascript" in low:
            return "c4:javascript"
        if "{" in line:
            return "c4:curly_bracket"
        if any(s in low for s in POLICY_SUBSTRINGS):
            return "c4:policy"
        return None
