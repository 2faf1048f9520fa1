"""The minor-safety floor: sexual or romantic content involving a minor is always refused.

A check of its own (``FloorCheck``), which ``Policy`` runs whatever its file says: no
category action, threshold, ``classifier: false`` or guard setting reaches it. It reads
the whole conversation (every message of every role: system, developer, user, assistant
prefill, tool) together with the text under check, each in every view of
``normalize.views`` (leetspeak, spacing, zero-width characters, homoglyphs, rot13,
base64/hex/URL-encoded runs undone). It refuses when

- a minor is signalled anywhere (an age under 18 in digits or words, a school grade or
  year, a word for a minor, a fictional character's age "Emma (13)", in English, Spanish,
  French, German or Portuguese; ``floor_terms.py``), and
- sexual or romantic content, or grooming's mechanics (getting a child alone, secrecy
  from parents), is anywhere, and
- the conversation asks for something to be produced, played or done (write, role-play,
  "be my girlfriend", "how do I kiss her") or carries no protective context.

Protective context (reporting abuse material, signs of grooming, puberty medicine, sex
education, law) lets a question through only when nothing is requested: "how do I talk to
my 10-year-old about puberty" passes; "as a parent, write a love scene with a
13-year-old" does not. Fiction or role-play framing never helps: it is a request.
Media genre names ("romantic comedy") are not romantic content. Any S4 flag of another
check is refused as well (``Policy``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from superlab.serve.safety import floor_terms as T
from superlab.serve.safety.check import Flag, scan_texts
from superlab.serve.safety.match import Patterns
from superlab.serve.safety.normalize import text_cache, views


def _compile(alternatives: list[str]) -> Patterns:
    """Each top-level alternative its own pattern, between word boundaries."""
    return Patterns([rf"(?<![\w])(?:{b})(?![\w])" for a in alternatives for b in _split(a)])


def _split(source: str) -> list[str]:
    """``a|b|(?:c|d)`` -> ``[a, b, (?:c|d)]``: top-level alternatives, so each gets triggers."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(source):
        c = source[i]
        if c == "\\":
            i += 2
            continue
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == "|" and depth == 0:
            parts.append(source[start:i])
            start = i + 1
        i += 1
    parts.append(source[start:])
    return parts


_MINOR = _compile(T.MINOR)
_WEAK = _compile(T.WEAK_MINOR)
_ADULTS = _compile(T.ADULT_COUPLE)
_SEXUAL = _compile(T.SEXUAL + T.GROOM_WORD + T.GROOMING)
_GENRES = re.compile(rf"\b(?:{'|'.join(T.GENRES)})\b")
_GENRE_WORDS = ("rom", "come", "carb", "radi", "isot", "dati")  # GENRES' first words
_REQUEST = _compile(T.REQUEST + T.GROOMING)
_PROTECTIVE = _compile(T.PROTECTIVE)


def signals(text: str) -> frozenset[str]:
    """Which of minor / weak / adults / sexual / request / protective ``text`` shows."""
    return _signals(text, ("minor", "weak", "adults", "sexual", "request", "protective"))


def _signals(text: str, wanted: tuple[str, ...]) -> frozenset[str]:
    v = views(text)
    # Genre names out before sexual/romantic words are looked for ("romantic comedy").
    no_genres = v
    if "sexual" in wanted and any(w in ws for ws in v.words for w in _GENRE_WORDS):
        no_genres = v._replace(
            plain=tuple(_GENRES.sub(" ", x) for x in v.plain),
            squeezed=tuple(_GENRES.sub(" ", x) for x in v.squeezed),
            regions=(None,) * len(v.regions),  # lengths changed: read every view whole
        )
    found = set()
    for name, pats, seen, squeezed in (
        ("minor", _MINOR, v, True),
        ("weak", _WEAK, v, True),
        ("adults", _ADULTS, v, False),
        ("sexual", _SEXUAL, no_genres, True),
        ("request", _REQUEST, v, True),
        ("protective", _PROTECTIVE, v, False),
    ):
        if name in wanted and pats.search(seen, squeezed):
            found.add(name)
    return frozenset(found)


@text_cache(maxsize=1536)
def _signal(text: str, name: str) -> bool:
    return name in _signals(text, (name,))


def decide(texts: Sequence[str]) -> bool:
    """True when the floor refuses a conversation made of ``texts`` (module docstring).

    Signals are read lazily, cheapest question first: most texts stop at "no minor"."""
    texts = [t for t in texts if t]

    def has(name: str) -> bool:
        return any(_signal(t, name) for t in texts)

    minor = has("minor") or (has("weak") and not has("adults"))
    return minor and has("sexual") and (has("request") or not has("protective"))


class FloorCheck:
    """The floor as a check: flags S4 (score 1.0) when ``decide`` refuses."""

    name = "floor"

    def flags(self, text: str, conversation: Sequence[tuple[str, str]] = ()) -> list[Flag]:
        refuse = decide(scan_texts(text, conversation))
        return [Flag("S4", 1.0, self.name)] if refuse else []
