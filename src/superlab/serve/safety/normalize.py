"""Text views for the safety checks: one text, rewritten the ways attackers hide words.

``views(text)`` returns the text as checks should see it, folded (NFKC, case-folded,
accents, zero-width and bidi characters removed, Cyrillic/Greek lookalikes mapped to
Latin), plus the rewrites that undo common evasions, each only when it changes something:

- leetspeak undone (``s3x`` -> ``sex``; digits next to letters only, so "13 years" keeps
  its number in the folded view),
- spaced-out letters joined (``s e x``, ``s.e.x`` -> ``sex``) and, when a letter runs
  three times, repeated letters squeezed (``seeexy`` -> ``sexy``: checks match this view
  with squeezed patterns, see ``squeeze_pattern``),
- rot13 of the whole text,
- decoded base64, hex and URL-encoded runs (each decoded text is folded again, one level).

Every step is a single pass of a bounded regular expression or ``str.translate``, so the
cost is linear in the text (the 1 MB adversarial test in tests/serve/test_safety_floor.py).
``Views.regions`` says where a rewritten view differs from the folded text, so checks read
it only there (``match.py``).
Evasions follow the red-team literature on obfuscation (Wei et al. 2023, "Jailbroken:
How Does LLM Safety Training Fail?", base64 / rot13 / leetspeak / character splitting).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple, TypeVar
from urllib.parse import unquote_plus

# Zero-width, joiners, soft hyphen, bidi embeddings/overrides/isolates, BOM, and the tag
# block (U+E0000..E007F, used to smuggle invisible text). Unicode Format (Cf) characters.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f]"
)
# Lookalikes NFKC leaves alone (Unicode confusables.txt, the Latin-lookalike subset of
# Cyrillic and Greek lowercase, after case-folding).
_HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "в": "b", "с": "c", "ԁ": "d", "е": "e", "ё": "e", "һ": "h", "і": "i",
        "ї": "i", "ј": "j", "к": "k", "ӏ": "l", "м": "m", "н": "h", "о": "o", "р": "p",
        "ԛ": "q", "г": "r", "ѕ": "s", "т": "t", "у": "y", "х": "x", "ԝ": "w", "ь": "b",
        "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
        "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ς": "s", "σ": "o", "γ": "y",
        "ɡ": "g", "ı": "i", "ȷ": "j", "ℓ": "l", "’": "'", "‘": "'", "ʼ": "'",
    }
)  # fmt: skip
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t",
                       "8": "b", "9": "g", "@": "a", "$": "s", "!": "i", "|": "l",
                       "+": "t", "€": "e", "(": "c"})  # fmt: skip
# A run of leet symbols that touches a letter ("s3x", "k!ss", "$exy"); lone numbers stay.
# Ordinals and ages ("7th", "12yo") keep their digits.
_LEET_RUN = re.compile(
    r"(?<=[a-z])[0-9@$!|+€(]+|(?<![0-9])[0-9@$!|+€(]+(?=[a-z])(?!(?:st|nd|rd|th|yo|yrs?)\b)"
)
# Three or more single letters separated by the same kind of filler: "s e x", "s.e.x",
# "s-e-x-y". Each repetition consumes one letter and one short separator: linear.
_SPACED = re.compile(r"\b[a-z](?:[\s._*\-/]{1,3}[a-z]\b){2,}")
_SEPARATORS = re.compile(r"[\s._*\-/]+")
_REPEATS = re.compile(r"([a-z])\1+")
_SPACES = re.compile(r"\s+")
_RUN3 = re.compile(r"([a-z])\1\1")
_ARTICLE = re.compile(r"^([ai])(?=[a-z]{3})")
# Encoded runs worth decoding (lengths keep ordinary words and numbers out).
_B64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2}[\s:]?){8,}")
_PCT = re.compile(r"%[0-9a-fA-F]{2}")


def fold(text: str) -> str:
    """NFKC, invisible characters removed, case-folded, spaces collapsed, accents and
    lookalikes mapped."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).casefold()
    text = _SPACES.sub(" ", text)  # newlines and runs of spaces do not hide a match
    text = text.translate(_HOMOGLYPHS)
    if not text.isascii():  # strip combining accents: "años" -> "anos", "ção" -> "cao"
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
    return text


def squeeze(text: str) -> str:
    """Runs of one letter squeezed to one: ``seeexy`` -> ``sexy``, ``kiss`` -> ``kis``."""
    return _REPEATS.sub(r"\1", text)


def squeeze_pattern(pattern: str) -> str:
    """A regex source rewritten to match squeezed text (escapes and classes kept)."""
    out: list[str] = []
    prev, i, in_class = "", 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            prev, i = "", i + 2
            continue
        if c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        if not in_class and c.isalpha() and c == prev:
            i += 1
            continue
        out.append(c)
        prev = c if c.isalpha() and not in_class else ""
        i += 1
    return "".join(out)


def _printable(raw: bytes) -> str | None:
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    ok = sum(c.isprintable() or c.isspace() for c in s)
    return s if s and ok >= 0.9 * len(s) and any(c.isalpha() for c in s) else None


def decoded(text: str) -> list[str]:
    """Texts hidden in base64, hex or URL-encoded runs of ``text`` (raw, not folded)."""
    found: list[str] = []
    for m in _B64.finditer(text):
        run = m.group().replace("-", "+").replace("_", "/")
        # A long run of letters only is a word, not base64 (no digits, no case mix).
        if run.isalpha() and (run.islower() or run.isupper()):
            continue
        try:
            s = _printable(base64.b64decode(run + "=" * (-len(run) % 4)))
        except (binascii.Error, ValueError):
            s = None
        if s:
            found.append(s)
    for m in _HEX.finditer(text):
        digits = re.sub(r"[\s:]", "", m.group())
        s = _printable(bytes.fromhex(digits[: len(digits) // 2 * 2]))
        if s:
            found.append(s)
    if _PCT.search(text):
        found.append(unquote_plus(text))
    return found


_WORD = re.compile(r"[a-z]+|[0-9]+")
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
TRIGGER_LEN = 4  # ``match`` triggers are word prefixes of up to this many characters


class Views(NamedTuple):
    """A text as the checks read it."""

    plain: tuple[str, ...]  # match with patterns as written
    squeezed: tuple[str, ...]  # match with ``squeeze_pattern`` patterns
    words: tuple[frozenset[str], ...]  # per view (plain, then squeezed): its words' prefixes
    # per view: the spans where it differs from the folded text (None: read all of it)
    regions: tuple[tuple[tuple[int, int], ...] | None, ...]


R = TypeVar("R")
CACHED_CHARS = 32_000  # longer texts: only the last two are kept (a cache of 1 MB prompts
# would hold gigabytes); a conversation's messages and joined text usually are shorter


def text_cache(maxsize: int) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """``lru_cache`` for functions whose first argument is a text, skipping long texts."""

    def wrap(fn: Callable[..., R]) -> Callable[..., R]:
        cached = lru_cache(maxsize=maxsize)(fn)
        recent = lru_cache(maxsize=2)(fn)  # long texts: only while one check reads them

        def call(text: str, *args: object) -> R:
            return (cached if len(text) <= CACHED_CHARS else recent)(text, *args)

        call.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        call.cache_info = cached.cache_info  # type: ignore[attr-defined]
        return call

    return wrap


@text_cache(maxsize=256)
def views(text: str) -> Views:
    """Every view of ``text`` (module docstring).

    Cached: the serve app checks the same conversation messages for every output piece.
    """
    plain, squeezed, regions = _views(text, depth=0)
    return Views(plain, squeezed, tuple(_words(v) for v in plain + squeezed), regions)


def _words(text: str) -> frozenset[str]:
    """The 3- and 4-character prefixes of every letter run and digit run."""
    words = set(_WORD.findall(text))
    return frozenset({w[:3] for w in words if len(w) >= 3} | {w[:4] for w in words if len(w) >= 4})


Regions = tuple[tuple[int, int], ...] | None


def _views(text: str, depth: int) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Regions, ...]]:
    base = fold(text)
    plain = [base]
    regions: list[Regions] = [None]
    leet = _LEET_RUN.sub(lambda m: m.group().translate(_LEET), base)
    if leet != base:
        plain.append(leet)
        # same length as the folded text: only around the rewritten runs is it new
        regions.append(tuple(m.span() for m in _LEET_RUN.finditer(base)))

    def join(x: str, keep_article: bool = False) -> tuple[str, Regions]:
        """Spaced letters joined, and where the joins landed (the rest of ``x`` is as it
        was, so matches there are found in ``x``'s own view)."""
        out: list[str] = []
        spans: list[tuple[int, int]] = []
        at = size = 0
        for m in _SPACED.finditer(x):
            out.append(x[at : m.start()])
            size += m.start() - at
            word = _SEPARATORS.sub("", m.group())
            if keep_article:  # "a s e x y scene": keep the one-letter word apart
                word = _ARTICLE.sub(r"\1 ", word)
            out.append(word)
            spans.append((size, size + len(word)))
            size += len(word)
            at = m.end()
        out.append(x[at:])
        return "".join(out), tuple(spans)

    joined, spans = join(leet)
    if spans:
        plain.append(joined)
        # Joins of the leetspeak view: near a leetspeak rewrite too, so read it all.
        regions.append(spans if leet == base else None)
        apart, spans_apart = join(leet, keep_article=True)
        if apart != joined:
            plain.append(apart)
            regions.append(spans_apart if leet == base else None)
    if leet != base:  # "7th g r a d e r": leetspeak would eat the 7
        joined_base, spans_base = join(base)
        if spans_base:
            plain.append(joined_base)
            regions.append(spans_base)
    plain.append(codecs.encode(base, "rot13"))
    regions.append(None)
    # Squeezed only when a letter runs three times ("seeexy"); ordinary double letters
    # ("kiss", "speech") are read as written.
    squeezed = [squeeze(joined)] if _RUN3.search(joined) else []
    s_regions: list[Regions] = [None] * len(squeezed)
    if depth == 0:
        for hidden in decoded(text):
            p, s, r = _views(hidden, depth + 1)
            n = len(p)
            plain += p
            regions += r[:n]
            squeezed += s
            s_regions += r[n:]
    return tuple(plain), tuple(squeezed), tuple(regions + s_regions)
