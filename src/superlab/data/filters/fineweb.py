"""FineWeb's extra quality rules (Penedo et al. 2024, "The FineWeb Datasets", section 3.3).

The paper: remove a document when "the fraction of lines ending with punctuation
<= 0.12", "the fraction of characters in duplicated lines >= 0.1", or "the fraction
of lines shorter than 30 characters >= 0.67". What counts follows datatrove's
``FineWebQualityFilter`` (the code that built FineWeb): lines are the non-blank
lines; a duplicated line is a repeat of an earlier line (the first copy is not
counted); characters are those of the whole text without its newlines. We strip
lines (so trailing spaces do not hide a full stop) and compare as the paper words it;
datatrove uses strict inequalities and ``len(line) <= 30``, which differ only on ties.
datatrove's extra ``new_line_ratio`` ("list_ratio") rule is not in the paper and not here.
"""

from __future__ import annotations

from superlab.data.document import Document
from superlab.data.filters import ThresholdFilter, Verdict
from superlab.data.filters.analysis import analyze

# Lines "ending with punctuation": the characters with the Unicode Character Database's
# Sentence_Terminal property, ASCII ". ! ?" and the full stops, question and exclamation
# marks of other scripts (generated from the Unicode data, not hand-picked).
TERMINAL_PUNCT = frozenset(
    ".!?"
    "\u0589\u061d\u061e\u061f\u06d4\u0700\u0701\u0702\u07f9\u0837\u0839\u083d\u083e\u0964"
    "\u0965\u104a\u104b\u1362\u1367\u1368\u166e\u1735\u1736\u17d4\u17d5\u1803\u1809\u1944"
    "\u1945\u1aa8\u1aa9\u1aaa\u1aab\u1b4e\u1b4f\u1b5a\u1b5b\u1b5e\u1b5f\u1b7d\u1b7e\u1b7f"
    "\u1c3b\u1c3c\u1c7e\u1c7f\u2024\u203c\u203d\u2047\u2048\u2049\u2cf9\u2cfa\u2cfb\u2e2e"
    "\u2e3c\u2e53\u2e54\u2e60\u2e61\u3002\ua4ff\ua60e\ua60f\ua6f3\ua6f7\ua876\ua877\ua8ce"
    "\ua8cf\ua92f\ua9c8\ua9c9\uaa5d\uaa5e\uaa5f\uaaf0\uaaf1\uabeb\ufe12\ufe15\ufe16\ufe52"
    "\ufe56\ufe57\uff01\uff0e\uff1f\uff61\U00010a56\U00010a57\U00010f55\U00010f56\U00010f57"
    "\U00010f58\U00010f59\U00010f86\U00010f87\U00010f88\U00010f89\U00011047\U00011048"
    "\U000110be\U000110bf\U000110c0\U000110c1\U00011141\U00011142\U00011143\U000111c5"
    "\U000111c6\U000111cd\U000111de\U000111df\U00011238\U00011239\U0001123b\U0001123c"
    "\U000112a9\U000113d4\U000113d5\U0001144b\U0001144c\U000115c2\U000115c3\U000115c9"
    "\U000115ca\U000115cb\U000115cc\U000115cd\U000115ce\U000115cf\U000115d0\U000115d1"
    "\U000115d2\U000115d3\U000115d4\U000115d5\U000115d6\U000115d7\U00011641\U00011642"
    "\U0001173c\U0001173d\U0001173e\U00011944\U00011946\U00011a42\U00011a43\U00011a9b"
    "\U00011a9c\U00011c41\U00011c42\U00011ef7\U00011ef8\U00011f43\U00011f44\U00016a6e"
    "\U00016a6f\U00016af5\U00016b37\U00016b38\U00016b44\U00016d6e\U00016d6f\U00016e98"
    "\U0001bc9f\U0001da88"
)


class FineWebQualityFilter(ThresholdFilter):
    """FineWeb's three line rules, reasons ``fineweb:punct_lines|dup_line_chars|short_lines``."""

    def keep(self, doc: Document) -> Verdict:
        c = self.cfg
        st = analyze(doc)
        lines = st.lines
        if not lines:
            return False, "fineweb:punct_lines"  # no line ends with punctuation
        punct = sum(ln[-1] in TERMINAL_PUNCT for ln in lines)  # lines are stripped, non-empty
        if punct / len(lines) <= c.fineweb_min_punct_line_ratio:
            return False, "fineweb:punct_lines"
        chars = len(st.text) - st.text.count("\n")
        if chars and st.line_dups[1] / chars >= c.fineweb_max_dup_line_char_ratio:
            return False, "fineweb:dup_line_chars"
        short = sum(len(ln) < c.fineweb_short_line_chars for ln in lines)
        if short / len(lines) >= c.fineweb_max_short_line_ratio:
            return False, "fineweb:short_lines"
        return True
