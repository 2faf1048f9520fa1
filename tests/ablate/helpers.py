"""Text for the ablation tests' tiny corpus (the same English-like text as tests/eval's)."""

from __future__ import annotations

import random

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "was",
    "for",
    "on",
    "as",
    "with",
    "by",
    "at",
    "from",
    "his",
    "her",
    "that",
    "it",
    "an",
    "which",
    "were",
    "are",
    "city",
    "river",
    "king",
    "army",
    "music",
    "school",
    "history",
    "science",
    "church",
    "village",
    "island",
    "language",
    "north",
    "south",
    "war",
    "team",
    "film",
    "album",
    "species",
    "district",
    "family",
    "company",
    "first",
    "second",
    "new",
]


def english(seed: int | str, words: int = 60) -> str:
    """Deterministic English-like text of ``words`` words."""
    rng = random.Random(f"english:{seed}")
    out = []
    for _ in range(words):
        out.append(rng.choice(WORDS))
        if rng.random() < 0.1:
            out[-1] += "."
    return " ".join(out).capitalize() + "."
