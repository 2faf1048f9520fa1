"""Patterns run only where they can match: a literal trigger per pattern, checked first.

Python's ``re`` tries every alternative of a pattern at every position, so 70 rule
patterns over five views of a 1 MB text took ~17 s. Most patterns need one of a few words
("kill", "murder", ...): ``triggers`` reads them from the parsed pattern, and a pattern
runs only when one of its triggers (cut to 4 characters) starts one of the view's words
(a set of word prefixes, so the check is one set intersection). Patterns without a usable
trigger always run. The regex search itself stays the judge; the trigger only skips work.
A trigger is the longest letter (or digit) run, starting a word, of a literal every match
holds; a pattern with none (it may start mid-word) always runs. Texts over LONG characters
and rewritten views (``Views.regions``) are searched only in windows around trigger words
or rewrites. ``tests/serve/test_safety_match.py`` checks all of it against plain search.
"""

from __future__ import annotations

import re
import re._parser as sre
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from superlab.serve.safety.normalize import TRIGGER_LEN, Views, squeeze, squeeze_pattern

_MAX_SET = 400  # alternatives kept while expanding a prefix set
_RUN = re.compile(r"[a-z]+|[0-9]+")


def _prefixes(seq: Sequence[Any]) -> tuple[set[str], bool] | None:
    """Strings one of which starts every match of ``seq``; True if they are the whole match."""
    out = {""}
    for op, av in seq:
        if op is sre.AT:
            continue  # \b and ^ consume nothing
        if op is sre.LITERAL:
            out = {s + chr(av) for s in out}
            continue
        if op is sre.SUBPATTERN:
            sub = _prefixes(av[-1])
        elif op is sre.BRANCH:
            parts = [_prefixes(b) for b in av[1]]
            if any(p is None for p in parts):
                return (out, False) if out != {""} else None
            sub = (set().union(*(p[0] for p in parts)), all(p[1] for p in parts))  # type: ignore[index]
        else:
            return (out, False) if out != {""} else None
        if sub is None:
            return (out, False) if out != {""} else None
        new = {s + t for s in out for t in sub[0]}
        if len(new) > _MAX_SET:
            return (out, False) if out != {""} else None
        out = new
        if not sub[1]:
            return out, False
    return out, True


def _flatten(seq: Sequence[Any]) -> list[Any]:
    """Top-level items, with plain groups (no alternation) opened up."""
    items: list[Any] = []
    for op, av in seq:
        body = av[-1] if op is sre.SUBPATTERN else None
        if body is not None and not (len(body) == 1 and body[0][0] is sre.BRANCH):
            items += _flatten(body)
        else:
            items.append((op, av))
    return items


def _token(s: str, at_word_start: bool) -> str:
    """The longest letter or digit run of a literal that starts a word of the text."""
    runs = [m for m in _RUN.finditer(s.lower()) if m.start() > 0 or at_word_start]
    return max((m.group() for m in runs), key=len) if runs else ""


def _word_start(prev: Any) -> bool:
    """Does whatever ``prev`` matches end a word (so the next literal starts one)?"""
    if prev is None:
        return True
    op, av = prev
    if op is sre.AT or (op is sre.ASSERT_NOT and av[0] == -1):  # \b, (?<!\w)
        return True
    if op is sre.LITERAL:
        return not chr(av).isalpha()
    if op is sre.IN:  # [\s-], [0-9]: no letters (letters and digits are separate runs)
        return all(
            (o is sre.LITERAL and not chr(a).isalpha())
            or (o is sre.CATEGORY and a in (sre.CATEGORY_SPACE, sre.CATEGORY_DIGIT))
            or (o is sre.RANGE and a[1] < ord("A"))
            for o, a in av
        )
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        body = av[2]
        return len(body) == 1 and _word_start(body[0])
    return False


def _starts_word(items: list[Any], i: int) -> bool:
    """Does a literal at ``items[i]`` start a word? (Optional items look further back.)"""
    if i == 0:
        return True
    prev = items[i - 1]
    if prev[0] in (sre.MAX_REPEAT, sre.MIN_REPEAT) and prev[1][0] == 0:
        return _word_start(prev) and _starts_word(items, i - 1)
    return _word_start(prev)


def triggers(source: str) -> frozenset[str] | None:
    """Word prefixes one of which every match of ``source`` holds (None: no useful set)."""
    try:
        items = _flatten(list(sre.parse(source, re.IGNORECASE)))
    except re.error:
        return None
    best: tuple[int, frozenset[str]] | None = None
    for i in range(len(items)):
        if items[i][0] not in (sre.LITERAL, sre.SUBPATTERN, sre.BRANCH):
            continue
        got = _prefixes(items[i:])
        if got is None:
            continue
        start = _starts_word(items, i)
        tokens = [_token(s, start) for s in got[0]]
        quality = min(len(t) for t in tokens)
        if quality >= 3 and (best is None or quality > best[0]):
            best = (quality, frozenset(t[:TRIGGER_LEN] for t in tokens))
    return best[1] if best else None


def _first_chars(seq: Sequence[Any]) -> set[str] | None:
    """Characters every match of ``seq`` starts with (None: any)."""
    for op, av in seq:
        if op is sre.AT or (op is sre.ASSERT_NOT and av[0] == -1):
            continue  # \b, (?<!\w): zero width
        if op is sre.LITERAL:
            return {chr(av)}
        if op is sre.IN:
            out: set[str] = set()
            for o, a in av:
                if o is sre.LITERAL:
                    out.add(chr(a))
                elif o is sre.RANGE:
                    out |= {chr(c) for c in range(a[0], a[1] + 1)}
                else:
                    return None
            return out
        if op is sre.SUBPATTERN:
            return _first_chars(av[-1])
        if op is sre.BRANCH:
            out = set()
            for b in av[1]:
                f = _first_chars(b)
                if f is None:
                    return None
                out |= f
            return out
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and av[0] >= 1:
            return _first_chars(av[2])
        return None
    return None


def _lead(source: str) -> str:
    """``source`` behind a lookahead of its first characters: sre then skips positions
    that cannot start a match in C (~25% off a scan of our rules; a leading ``\b``
    alone keeps sre from it)."""
    try:
        first = _first_chars(list(sre.parse(source)))
    except re.error:
        return source
    if not first or len(first) > 40 or any(c.isupper() for c in first):
        return source
    chars = "".join(sorted(re.escape(c) for c in first))
    return f"(?=[{chars}])(?:{source})"


class Patterns:
    """Regex sources compiled for the plain and the squeezed views, each with triggers."""

    def __init__(self, sources: Sequence[str], flags: int = 0) -> None:
        self.items = []
        for src in sources:
            trig = triggers(src)
            squeezed_trig = frozenset(squeeze(t) for t in trig) if trig else None
            sq_src = squeeze_pattern(src)
            self.items.append(
                (
                    re.compile(_lead(src), flags),
                    re.compile(_lead(sq_src), flags),
                    trig,
                    squeezed_trig,
                )
            )

    def search(self, v: Views, squeezed: bool = True) -> bool:
        """Does any pattern match any view of ``v``?"""
        n = len(v.plain)
        for full, sq, trig, sq_trig in self.items:
            for x, words, where in zip(v.plain, v.words[:n], v.regions[:n], strict=True):
                if _hit(full, trig, x, words, where):
                    return True
            if not squeezed:
                continue
            for x, words, where in zip(v.squeezed, v.words[n:], v.regions[n:], strict=True):
                if _hit(sq, sq_trig, x, words, where):
                    return True
        return False


# A long view is searched only in windows around its trigger words: every match holds a
# trigger, and no pattern of ours spans more than a few hundred characters around it
# (gaps are ``.{0,60}`` at most), so WINDOW on each side loses no match.
LONG, WINDOW = 50_000, 400
_WORD_AT = re.compile(r"[a-z]+|[0-9]+")


def _hit(
    pat: re.Pattern[str],
    trig: frozenset[str] | None,
    x: str,
    words: frozenset[str],
    regions: tuple[tuple[int, int], ...] | None,
) -> bool:
    if trig is not None and trig.isdisjoint(words):
        return False
    if regions is not None:  # a rewritten view: new matches can only be near a rewrite
        spans = list(regions)
    elif trig is None or len(x) <= LONG:
        return bool(pat.search(x))
    else:
        spans = [m.span() for m in _finder(trig).finditer(x)]
    return _search_windows(pat, x, spans)


def _search_windows(pat: re.Pattern[str], x: str, spans: list[tuple[int, int]]) -> bool:
    """Search ``x`` within WINDOW of each of the (sorted) ``spans``, whole spans included."""
    lo = hi = -1
    for a, b in spans:  # merge overlapping windows, search each once
        if a - WINDOW > hi:
            if hi >= 0 and pat.search(x, lo, hi):
                return True
            lo = max(a - WINDOW, 0)
        hi = max(hi, min(b + WINDOW, len(x)))
    return hi >= 0 and bool(pat.search(x, lo, hi))


@lru_cache(maxsize=4096)
def _finder(trig: frozenset[str]) -> re.Pattern[str]:
    """Where any of ``trig`` starts a word (letters and digits are separate runs)."""
    letters = "|".join(sorted(t for t in trig if t.isalpha())) or "(?!)"
    digits = "|".join(sorted(t for t in trig if not t.isalpha())) or "(?!)"
    return re.compile(rf"(?<![a-z])(?:{letters})|(?<![0-9])(?:{digits})")
