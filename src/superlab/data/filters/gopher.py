"""Gopher's quality and repetition rules (Rae et al. 2021, "Scaling Language Models", appendix A).

Words are whitespace-separated tokens. Character fractions are over the characters
of the words (whitespace excluded) for the n-gram rules and over the characters of
the lines or paragraphs for the duplicate-line rules.
"""

from __future__ import annotations

from collections import Counter

from superlab.data.document import Document
from superlab.data.filters import ThresholdFilter, Verdict
from superlab.data.filters.analysis import analyze
from superlab.data.filters.words import word_matcher

# Gopher A.1.1: "at least two of the following English words: the, be, to, of, and,
# that, have, with". Counted as occurrences in any case, punctuation stripped (datatrove
# 0.10 counts distinct, case-sensitive spaCy tokens; the bench finds 1 doc in 7,460 differs).
STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
BULLETS = ("•", "●", "◦", "‣", "▪", "-", "*")
ELLIPSES = ("...", "…")
_STOP_WORD = word_matcher(STOP_WORDS)

# Gopher table A1, the repetition thresholds the recipe does not expose (yet).
MAX_DUP_LINE_FRAC = 0.30  # duplicate lines / lines
MAX_DUP_PARA_FRAC = 0.30  # duplicate paragraphs / paragraphs
MAX_DUP_PARA_CHAR_FRAC = 0.20  # characters in duplicate paragraphs / characters
MAX_TOP_NGRAM_CHAR_FRAC = {3: 0.18, 4: 0.16}  # (2-gram: FilterConfig)
MAX_DUP_NGRAM_CHAR_FRAC = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


class GopherQualityFilter(ThresholdFilter):
    """Gopher A.1.1 quality rules other than the word count (see ``LengthFilter``)."""

    def keep(self, doc: Document) -> Verdict:
        c = self.cfg
        st = analyze(doc)
        n = st.n_words
        if n <= 0:
            return False, "gopher:min_words"
        mean_len = (st.word_chars - sum(map(len, st.symbols))) / n
        if not c.min_mean_word_length <= mean_len <= c.max_mean_word_length:
            return False, "gopher:mean_word_length"
        # Hash and ellipsis each at most max_symbol_word_ratio per word.
        text = st.text
        hashes = text.count("#")
        ellipses = text.count("...") + text.count("…")
        if max(hashes, ellipses) / n > c.max_symbol_word_ratio:
            return False, "gopher:symbol_word_ratio"
        lines = st.lines
        if lines:
            bullets = sum(ln.startswith(BULLETS) for ln in lines)
            if bullets / len(lines) > c.max_bullet_lines_ratio:
                return False, "gopher:bullet_lines"
            trailing = sum(ln.endswith(ELLIPSES) for ln in lines)
            if trailing / len(lines) > c.max_ellipsis_lines_ratio:
                return False, "gopher:ellipsis_lines"
        if st.n_alpha_words / len(st.words) < c.min_alpha_words_ratio:
            return False, "gopher:alpha_words"
        if len(_STOP_WORD.findall(text)) < c.min_stop_words:
            return False, "gopher:stop_words"
        return True


class GopherRepetitionFilter(ThresholdFilter):
    """Gopher A.1.2 (table A1): drop documents with repeated lines, paragraphs or n-grams."""

    def keep(self, doc: Document) -> Verdict:
        st = analyze(doc)
        n_dup, dup_chars, total = st.paragraph_dups
        if st.paragraphs and n_dup / len(st.paragraphs) > MAX_DUP_PARA_FRAC:
            return False, "gopher:dup_para_frac"
        if total and dup_chars / total > MAX_DUP_PARA_CHAR_FRAC:
            return False, "gopher:dup_para_chars"
        n_dup, dup_chars, total = st.line_dups
        if st.lines and n_dup / len(st.lines) > MAX_DUP_LINE_FRAC:
            return False, "gopher:dup_line_frac"
        if total and dup_chars / total > self.cfg.max_dup_line_char_ratio:
            return False, "gopher:dup_line_chars"
        words, chars = st.words, st.word_chars
        if not chars:
            return True
        top = {2: self.cfg.max_top_2gram_char_ratio, **MAX_TOP_NGRAM_CHAR_FRAC}
        for n, limit in top.items():
            if _top_ngram_chars(words, n) / chars > limit:
                return False, f"gopher:top_{n}gram"
        for n, limit in MAX_DUP_NGRAM_CHAR_FRAC.items():
            dup = _dup_ngram_chars(words, n)
            if dup / chars > limit:
                return False, f"gopher:dup_{n}gram"
            if not dup:  # every repeated (n+1)-gram contains a repeated n-gram: none left
                break
        return True


def _top_ngram_chars(words: list[str], n: int) -> int:
    """Characters covered by the most frequent n-gram: its length times its count."""
    if len(words) < n:
        return 0
    counts = Counter(zip(*(words[i:] for i in range(n)), strict=False))
    gram, count = counts.most_common(1)[0]
    if count < 2:
        return 0
    return sum(map(len, gram)) * count


def _dup_ngram_chars(words: list[str], n: int) -> int:
    """Characters of the words covered by n-grams that occur more than once (each word once).

    Every occurrence of a repeated n-gram counts, overlaps once: Gopher's "fraction of
    characters contained within all duplicate n-grams" (datatrove counts repeats only).
    """
    if len(words) < 2 * n:
        return 0
    grams = list(zip(*(words[i:] for i in range(n)), strict=False))
    counts = Counter(grams)
    covered = bytearray(len(words))
    for i, g in enumerate(grams):
        if counts[g] > 1:
            covered[i : i + n] = b"\x01" * n
    return sum(len(w) for w, c in zip(words, covered, strict=True) if c)
