from __future__ import annotations

import pytest

from superlab.config.recipe import FilterConfig, PIIConfig
from superlab.data import Document
from superlab.data.dedup.exact import normalize
from superlab.data.filters import analysis, apply_filters, build_filters
from superlab.data.filters.analysis import TextStats, analyze, words_for_minhash

from ..helpers import english


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the text of every TextStats built, and each computation of its fields."""
    texts: list[str] = []

    class Counted(TextStats):
        def __init__(self, text: str, lines: list[str] | None = None) -> None:
            texts.append(text)
            super().__init__(text, lines)

    monkeypatch.setattr(analysis, "TextStats", Counted)
    monkeypatch.setattr(analysis, "_last", None)
    return texts


def test_one_analysis_per_text_across_the_whole_chain(built: list[str]) -> None:
    d = Document("d", english(7) + "\nMenu")  # "Menu" is removed by C4: the text changes once
    filters = build_filters(FilterConfig(), pii=PIIConfig())
    assert len(filters) == 6
    assert apply_filters(filters, d) is True
    # One analysis of the raw text (C4 reads its lines), one of the cleaned text that the
    # five later filters share; PII found nothing to mask so the text stays.
    assert len(built) == 2 and built[1] == d.text
    st = analyze(d)
    assert "words" in vars(st) and "line_dups" in vars(st)  # computed once, kept
    assert words_for_minhash(d) == normalize(d.text).split()
    assert analyze(d) is st and len(built) == 2


def test_fields_are_computed_once() -> None:
    st = TextStats("a b\n\nc d")
    assert st.words is st.words and st.lines is st.lines
    assert st.lines == ["a b", "c d"] and st.paragraphs == ["a b", "c d"]


def test_rewritten_text_gets_a_fresh_analysis(built: list[str]) -> None:
    d = Document("d", "one two three.")
    first = analyze(d)
    assert analyze(d) is first
    d.text = "four five."
    assert analyze(d) is not first and analyze(d).words == ["four", "five."]
    assert len(built) == 2


def test_minhash_words_match_exact_dedup_normalisation() -> None:
    text = "The U.S. e-mail, “quoted” café_bar — 3.14!\nNew   line's END"
    d = Document("d", text)
    assert words_for_minhash(d) == normalize(text).split()
    assert words_for_minhash(d)[:4] == ["the", "u", "s", "e"]
