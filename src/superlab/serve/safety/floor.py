"""The minor-safety floor: sexual or romantic content involving a minor is always refused.

Applied after the policy, and nothing in a policy file reaches it. It refuses a text when

- any check flags S4 (child sexual exploitation), or
- the text, or anything the user said in the conversation, signals a minor (an age
  under 18, a school grade, "my daughter", "preteen"...), and the text or the user's
  words are sexual or romantic (a user who says they are 14 and asks for a girlfriend
  role-play; a love scene with a seventh-grader).

Media genre names ("romantic comedy", "rom-com") are not romantic content by themselves:
removed before matching, so "a romantic comedy for my 13-year-old" passes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from superlab.serve.safety.policy import Flag

_AGE_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    "fifteen|sixteen|seventeen"
)
_MINOR = re.compile(
    r"\b(?:"
    rf"(?:[1-9]|1[0-7]|{_AGE_WORDS})[\s-]*(?:years?[\s-]*old|yrs?[\s-]*old|y/?o\b|yo\b)"
    r"|(?:i'?m|i am|she'?s|he'?s|she is|he is|they'?re|aged?|turned?|turning)\s+"
    rf"(?:only\s+|just\s+)?(?:[1-9]|1[0-7]|{_AGE_WORDS})\b"
    r"(?!\s*(?:%|percent|dollars|minutes|hours|feet|ft|kg|lbs|pounds|am|pm|o'clock|min))"
    r"|(?:[1-8](?:st|nd|rd|th)|first|second|third|fourth|fifth|sixth|seventh|eighth)[\s-]+grade\w*"
    r"|(?:middle|elementary|primary|junior high)[\s-]+school\w*"
    r"|year\s+[1-9]\s+(?:student|pupil)s?"
    r"|high[\s-]+school\s+(?:freshman|sophomore|girl|boy|student)s?"
    r"|minors?|underage\w*|under[\s-]+(?:the\s+)?age|pre-?teens?|tweens?|teen(?:age|ager)?s?"
    r"|child(?:ren)?|kids?|little\s+(?:girl|boy)s?|schoolgirls?|schoolboys?|toddlers?"
    r"|young\s+(?:girl|boy)s?|(?:my|his|her|a)\s+(?:daughter|son|niece|nephew|stepdaughter|stepson)"
    r"|puberty|loli\w*|shota\w*|jailbait"
    r")\b",
    re.IGNORECASE,
)
_ROMANTIC = re.compile(
    r"\b(?:romantic\w*|romance|love\s+(?:scene|story|letter|affair)|in\s+love|kiss\w*|making\s+out"
    r"|make\s+out|(?:go|going|went)\s+(?:out\s+)?on\s+a\s+date|dating|girlfriend|boyfriend"
    r"|flirt\w*|seduc\w*|intimate\w*|intimacy"
    r"|sex\w*|erotic\w*|nude\w*|naked|undress\w*|lingerie|aroused|arousal|foreplay"
    r"|groom(?:ing)?|sleep\s+(?:with|together)|hook\s*up|explicit|lewd|nsfw|touch(?:ing)?\s+(?:her|him)"
    r"|secret\s+relationship|relationship\s+with\s+(?:a|my|an)\b|marry\s+me|be\s+my\s+(?:gf|bf|lover))",
    re.IGNORECASE,
)
_GENRES = re.compile(r"\b(?:romantic[\s-]+comed(?:y|ies)|rom-?coms?)\b", re.IGNORECASE)


def has_minor(text: str) -> bool:
    """Does the text signal a person under 18?"""
    return bool(_MINOR.search(text))


def is_romantic(text: str) -> bool:
    """Is the text sexual or romantic (genre names aside)?"""
    return bool(_ROMANTIC.search(_GENRES.sub(" ", text)))


def violates(text: str, user_texts: list[str], flags: list[Flag]) -> bool:
    """True when the floor refuses ``text`` (see the module docstring)."""
    if any(f.category == "S4" for f in flags):
        return True
    said = [text, *user_texts]
    return any(has_minor(t) for t in said) and (
        is_romantic(text) or any(is_romantic(t) for t in user_texts)
    )
