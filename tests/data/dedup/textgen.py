"""Seeded random text for the dedup tests: documents, and copies with a known amount edited."""

from __future__ import annotations

import random

from superlab.data.dedup.minhash import shingle_words

_RNG = random.Random(7)
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
VOCAB = sorted({"".join(_RNG.choice(_LETTERS) for _ in range(6)) for _ in range(5000)})


def doc(rng: random.Random, n_words: int) -> str:
    """A document of ``n_words`` random words with some punctuation and case."""
    words = [rng.choice(VOCAB) for _ in range(n_words)]
    return " ".join(w.capitalize() + "," if i % 11 == 0 else w for i, w in enumerate(words))


def block_edit(rng: random.Random, text: str, frac: float) -> str:
    """``text`` with one contiguous block of ``frac`` of its words replaced by random words."""
    words = text.split()
    k = max(1, round(frac * len(words)))
    at = rng.randrange(0, len(words) - k + 1)
    words[at : at + k] = [rng.choice(VOCAB) for _ in range(k)]
    return " ".join(words)


def exact_jaccard(a: str, b: str, n: int = 5) -> float:
    """Reference Jaccard of the two texts' word n-gram sets, with Python sets of tuples."""

    def grams(t: str) -> set[tuple[str, ...]]:
        w = shingle_words(t)
        return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)} if len(w) >= n else {tuple(w)}

    ga, gb = grams(a), grams(b)
    return len(ga & gb) / len(ga | gb)
