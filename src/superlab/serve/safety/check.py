"""What every check shares: the hazard categories, ``Flag``, messages and the ``Check`` shape.

The checks (``rules``, ``classifier``, ``floor``, ``guard``) and ``policy`` import this
module; it imports nothing from the package, so no import goes round in a circle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# MLCommons AI Safety hazard taxonomy v0.5 as Llama Guard 3 numbers it (Llama Guard 3
# model card, "Hazard Taxonomy and Policy").
CATEGORIES = {
    "S1": "Violent Crimes",
    "S2": "Non-Violent Crimes",
    "S3": "Sex-Related Crimes",
    "S4": "Child Sexual Exploitation",
    "S5": "Defamation",
    "S6": "Specialized Advice",
    "S7": "Privacy",
    "S8": "Intellectual Property",
    "S9": "Indiscriminate Weapons",
    "S10": "Hate",
    "S11": "Suicide & Self-Harm",
    "S12": "Sexual Content",
    "S13": "Elections",
    "S14": "Code Interpreter Abuse",
}


@dataclass(frozen=True)
class Flag:
    """A check's finding: a category, a score in [0, 1] and which check found it."""

    category: str
    score: float
    source: str


ROLES = ("system", "developer", "user", "assistant", "tool")
Message = tuple[str, str]


class Check(Protocol):
    """One layer of checks: ``text`` in the context of the conversation's messages."""

    name: str

    def flags(self, text: str, conversation: Sequence[Message]) -> list[Flag]: ...


def scan_texts(text: str, conversation: Sequence[Message]) -> list[str]:
    """What a check reads: the conversation joined (one pass, cached across an output's
    pieces; a request split over turns reads as one), and ``text`` unless it is one of
    the conversation's messages (an input check's text usually is)."""
    joined = "\n".join(c for _, c in conversation)
    if any(text == c for _, c in conversation):
        return [joined]
    return [t for t in (text, joined) if t]
