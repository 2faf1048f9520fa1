from __future__ import annotations

import pytest

from superlab.config.recipe import FilterConfig
from superlab.data import Document
from superlab.data.filters import apply_filters, build_filters
from superlab.data.filters.c4 import C4LineFilter
from superlab.data.filters.gopher import (
    GopherQualityFilter,
    GopherRepetitionFilter,
    _dup_ngram_chars,
    _top_ngram_chars,
)
from superlab.data.filters.length import LengthFilter

from ..helpers import VOCAB, english

QUALITY = GopherQualityFilter()
REPETITION = GopherRepetitionFilter()


def doc(text: str) -> Document:
    return Document(id="d", text=text)


def unique_words(n: int, start: int = 0) -> list[str]:
    return VOCAB[start : start + n]


def test_clean_english_passes_every_rule() -> None:
    for seed in range(20):
        d = doc(english(seed))
        assert LengthFilter().keep(d) is True
        assert REPETITION.keep(d) is True
        assert QUALITY.keep(d) is True


def test_length_bounds() -> None:
    assert LengthFilter().keep(doc("The cat and the dog sat.")) == (False, "gopher:min_words")
    # Punctuation-only tokens are not words: 49 words and a dash are still too few.
    assert LengthFilter(50).keep(doc(" ".join(["word"] * 49 + ["--"]))) == (
        False,
        "gopher:min_words",
    )
    assert LengthFilter(50).keep(doc(" ".join(["word"] * 50))) is True
    assert LengthFilter(1, 10).keep(doc(" ".join(["word"] * 11))) == (False, "gopher:max_words")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # Mean word length 2 (< 3).
        (" ".join(["ab"] * 60 + ["the", "of"]), "gopher:mean_word_length"),
        # Mean word length 12 (> 10).
        (" ".join(["abcdefghijkl"] * 60 + ["the", "of"]), "gopher:mean_word_length"),
        # 20 hashes over 130 words: 0.15 > 0.1.
        (english(1) + " " + " ".join(["#tag"] * 20), "gopher:symbol_word_ratio"),
        # Every line a bullet (100% > 90%).
        ("\n".join("- " + line for line in english(2, 10).splitlines()), "gopher:bullet_lines"),
        # 4 of 10 lines end with an ellipsis (40% > 30%).
        (
            "\n".join(
                line[:-1] + "..." if i < 4 else line
                for i, line in enumerate(english(3, 10).splitlines())
            ),
            "gopher:ellipsis_lines",
        ),
        # 40 of 120 words are numbers: 67% alphabetic (< 80%).
        (" ".join(unique_words(80) + ["1234"] * 40 + ["the", "of"]), "gopher:alpha_words"),
        # No English stop words at all (a foreign page).
        (english(4, stop_rate=0.0), "gopher:stop_words"),
    ],
)
def test_quality_rules(text: str, reason: str) -> None:
    assert QUALITY.keep(doc(text)) == (False, reason)


def test_stop_words_count_occurrences_case_and_punctuation_insensitive() -> None:
    words = unique_words(60)
    assert QUALITY.keep(doc(" ".join([*words, "The,"]))) == (False, "gopher:stop_words")
    assert QUALITY.keep(doc(" ".join([*words, "The,", "the."]))) is True


def test_repetition_rules() -> None:
    p1, p2, p3 = english(10, 1), english(11, 1), english(12, 1)
    # Paragraphs: 2 of 4 are repeats (50% > 30%).
    assert REPETITION.keep(doc("\n\n".join([p1, p1, p1, p2]))) == (False, "gopher:dup_para_frac")
    # Lines in one paragraph: 2 of 4 are repeats.
    assert REPETITION.keep(doc("\n".join([p1, p1, p1, p2]))) == (False, "gopher:dup_line_frac")
    # One long line twice among short ones: 1/8 lines repeat (fine) but most characters do.
    long = " ".join(unique_words(50, 100)) + "."
    shorts = [f"Short line number {VOCAB[i]} here." for i in range(6)]
    assert REPETITION.keep(doc("\n".join([long, long, *shorts]))) == (
        False,
        "gopher:dup_line_chars",
    )
    # A long paragraph twice among five: 1/5 paragraphs repeat (fine), ~1/3 of characters.
    big = english(13, 3).replace("\n", " ")
    assert REPETITION.keep(doc("\n\n".join([big, p1, p2, big, p3]))) == (
        False,
        "gopher:dup_para_chars",
    )


def test_ngram_rules() -> None:
    # "alpha beta" after every unique word: the top 2-gram covers most characters.
    words = [w for u in unique_words(40) for w in (u, "alpha", "beta")]
    assert REPETITION.keep(doc(" ".join(words))) == (False, "gopher:top_2gram")
    # A 12-word run repeated once in 100 unique words: 24 of 112 words in duplicate 5-grams.
    run = unique_words(12, 300)
    words = unique_words(50) + run + unique_words(50, 50) + run
    assert REPETITION.keep(doc(" ".join(words))) == (False, "gopher:dup_5gram")
    # Every word unique: nothing repeats.
    assert REPETITION.keep(doc(" ".join(unique_words(200)))) is True


def test_ngram_character_counts() -> None:
    assert _top_ngram_chars(doc("ab cd ab cd ab").text.split(), 2) == 4 * 2
    assert _top_ngram_chars(doc("a b c d").text.split(), 2) == 0  # no n-gram repeats
    # Both occurrences of "a b c d e" count, each word once.
    assert _dup_ngram_chars(doc("x a b c d e y a b c d e z").text.split(), 5) == 10
    # Overlapping repeats: ten "aa" hold the same 5-gram six times; every word counts once.
    assert _dup_ngram_chars(["aa"] * 10, 5) == 20


def test_build_filters_c4_switch_and_first_drop_wins() -> None:
    assert "C4LineFilter" not in [
        type(f).__name__ for f in build_filters(FilterConfig(c4_lines=False))
    ]
    # The first filter that drops a document names the reason; later ones do not see it.
    filters = [C4LineFilter(), LengthFilter()]
    assert apply_filters(filters, doc("Too short to keep.")) == (False, "gopher:min_words")


def test_word_regexes_match_their_plain_definitions() -> None:
    from superlab.data.filters.gopher import STOP_WORDS
    from superlab.data.filters.words import (
        PUNCTUATION,
        count_alpha_tokens,
        count_words,
        symbol_tokens,
        word_matcher,
    )

    text = 'The, -- _ "of" x2 42 … ##\t(and) THE! theory thé … naïve 3.14 to-be\n• with'
    words = text.split()
    symbols = [w for w in words if not any(ch.isalnum() for ch in w)]
    assert symbol_tokens(text) == symbols == ["--", "_", "…", "##", "…", "•"]
    assert count_words(text) == len(words) - len(symbols)
    assert count_alpha_tokens(text) == sum(any(ch.isalpha() for ch in w) for w in words)
    stops = [w for w in words if w.strip(PUNCTUATION).lower() in STOP_WORDS]
    assert (
        word_matcher(STOP_WORDS).findall(text) == stops == ["The,", '"of"', "(and)", "THE!", "with"]
    )
