"""The rule layer: regular expressions per category, from ``rules.yaml``.

Patterns are matched against every view of ``normalize.views`` (folded, leetspeak and
spacing undone, rot13, decoded runs; squeezed views with squeezed patterns) of the text
and of the conversation joined (``check.scan_texts``), so a request split across turns
or hidden in base64 is read like a plain one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import yaml

from superlab.serve.safety.check import CATEGORIES, Flag, Message, scan_texts
from superlab.serve.safety.match import Patterns
from superlab.serve.safety.normalize import text_cache, views

RULES = Path(__file__).with_name("rules.yaml")


class RuleCheck:
    """Flags a category (score 1.0) when one of its patterns matches."""

    name = "rules"

    def __init__(self, patterns: dict[str, list[str]]) -> None:
        self.patterns: dict[str, Patterns] = {}
        for cat, items in patterns.items():
            if cat not in CATEGORIES:
                raise ValueError(f"rules: {cat}: not one of S1..S14")
            for i, p in enumerate(items):
                try:
                    re.compile(p)
                except re.error as e:
                    raise ValueError(f"rules: {cat}[{i}]: {e}") from None
            # Views are case-folded: patterns are lowered (``[A-Z]`` -> ``[a-z]``) and run
            # without IGNORECASE, which costs sre about a third more per position.
            self.patterns[cat] = Patterns([_lower(p) for p in items])
        # Per instance: the serve app re-checks the same messages for every output piece.
        self._categories = text_cache(maxsize=256)(self._categories_of)

    @classmethod
    def default(cls) -> RuleCheck:
        return _default_rules()

    def flags(self, text: str, conversation: Sequence[Message] = ()) -> list[Flag]:
        found: set[str] = set()
        for t in scan_texts(text, conversation):
            found |= self._categories(t)
        return [Flag(cat, 1.0, self.name) for cat in self.patterns if cat in found]

    def _categories_of(self, text: str) -> frozenset[str]:
        v = views(text)  # folded: runs of spaces and newlines are one space
        return frozenset(cat for cat, pats in self.patterns.items() if pats.search(v))


def _lower(source: str) -> str:
    """Pattern source for case-folded text: literals lowered, escapes (``\\S``, ``\\W``) kept."""
    return re.sub(
        r"\\.|[A-Z]", lambda m: m.group() if len(m.group()) > 1 else m.group().lower(), source
    )


@cache
def _default_rules() -> RuleCheck:
    return RuleCheck(yaml.safe_load(RULES.read_text()))
