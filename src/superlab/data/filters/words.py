"""Word statistics shared by the rule-based filters, as regexes over the text (C speed).

A word is a whitespace-separated token. A *symbol* token has no letter or digit
(``--``, ``...``, ``•``); Gopher's word counts leave those out.
"""

from __future__ import annotations

import re
import string

# ASCII punctuation plus the common typographic marks (quotes, dashes, ellipsis).
PUNCTUATION = string.punctuation + "“”‘’«»„…–—·•§¶"

# (?<!\S) anchors each match at the start of a token, so a scan is linear in the text.
_SYMBOL_TOKEN = re.compile(r"(?<!\S)(?:[^\w\s]|_)+(?!\S)")
_ALPHA_TOKEN = re.compile(r"(?<!\S)\S*?[^\W\d_]\S*")


def symbol_tokens(text: str) -> list[str]:
    """The tokens of ``text`` with no letter or digit."""
    return _SYMBOL_TOKEN.findall(text)


def count_words(text: str) -> int:
    """Tokens that are not symbols alone: Gopher's word count."""
    return len(text.split()) - len(symbol_tokens(text))


def count_alpha_tokens(text: str) -> int:
    """Tokens with at least one letter (or a rare numeral such as ½, which `\\w` also matches)."""
    return len(_ALPHA_TOKEN.findall(text))


def word_matcher(words: frozenset[str]) -> re.Pattern[str]:
    """A regex matching tokens equal to one of ``words`` once punctuation is stripped, any case."""
    alternatives = "|".join(sorted(map(re.escape, words)))
    p = f"[{re.escape(PUNCTUATION)}]*"
    return re.compile(rf"(?<!\S){p}(?:{alternatives}){p}(?!\S)", re.IGNORECASE)
