"""The rule layer: regular expressions per category, from ``rules.yaml``."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

from superlab.serve.safety.policy import CATEGORIES, Flag

RULES = Path(__file__).with_name("rules.yaml")


class RuleCheck:
    """Flags a category (score 1.0) when one of its patterns matches."""

    name = "rules"

    def __init__(self, patterns: dict[str, list[str]]) -> None:
        self.patterns: dict[str, list[re.Pattern[str]]] = {}
        for cat, items in patterns.items():
            if cat not in CATEGORIES:
                raise ValueError(f"rules: {cat}: not one of S1..S14")
            self.patterns[cat] = []
            for i, p in enumerate(items):
                try:
                    self.patterns[cat].append(re.compile(p, re.IGNORECASE))
                except re.error as e:
                    raise ValueError(f"rules: {cat}[{i}]: {e}") from None

    @classmethod
    def default(cls) -> RuleCheck:
        return _default_rules()

    def flags(self, text: str) -> list[Flag]:
        text = " ".join(text.split())  # newlines and runs of spaces do not hide a match
        return [
            Flag(cat, 1.0, self.name)
            for cat, pats in self.patterns.items()
            if any(p.search(text) for p in pats)
        ]


@cache
def _default_rules() -> RuleCheck:
    return RuleCheck(yaml.safe_load(RULES.read_text()))
