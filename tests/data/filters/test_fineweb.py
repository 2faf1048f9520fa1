from __future__ import annotations

from superlab.config.recipe import FilterConfig
from superlab.data import Document
from superlab.data.filters.fineweb import FineWebQualityFilter

FW = FineWebQualityFilter()
LONG = "This sentence is comfortably longer than thirty characters"


def keep(text: str) -> object:
    return FW.keep(Document("d", text))


def test_keeps_ordinary_prose() -> None:
    assert keep("\n".join(f"{LONG} number {i}." for i in range(10))) is True


def test_punct_lines_at_most_12_percent_end_with_punctuation() -> None:
    # 1 of 10 lines ends with a full stop: 10% <= 12%.
    lines = [f"{LONG} {i}" for i in range(9)] + [f"{LONG}."]
    assert keep("\n".join(lines)) == (False, "fineweb:punct_lines")
    # 2 of 10 (20%) pass; a non-Latin full stop counts (Unicode Sentence_Terminal).
    lines[0] += "。"
    assert keep("\n".join(lines)) is True
    assert keep("") == (False, "fineweb:punct_lines")


def test_dup_line_chars_repeats_of_earlier_lines_over_text_characters() -> None:
    # The repeat (not the first copy) holds 63/(11*63 + 0 newlines) ~ 9% of characters: kept.
    lines = [f"{LONG} {i:04d}." for i in range(10)]
    assert keep("\n".join([*lines, lines[0]])) is True
    # Two repeats: ~17% >= 10%.
    assert keep("\n".join([*lines, lines[0], lines[1]])) == (False, "fineweb:dup_line_chars")


def test_short_lines_at_least_67_percent_shorter_than_30_characters() -> None:
    short = [f"Short line {i}." for i in range(7)]  # 14-15 characters
    long = [f"{LONG} {i}." for i in range(3)]
    assert keep("\n".join(short + long)) == (False, "fineweb:short_lines")  # 70%
    assert keep("\n".join(short[:6] + long)) is True  # 6/9 = 66.7% < 67%
    # Lines of exactly 30 characters are not shorter than 30 (datatrove counts <= 30).
    lines30 = [f"Line {i} has thirty characters!!" for i in range(3)]
    assert {len(s) for s in lines30} == {30}
    assert keep("\n".join([*lines30, f"{LONG}."])) is True


def test_thresholds_come_from_the_config() -> None:
    f = FineWebQualityFilter(FilterConfig(fineweb_short_line_chars=80))
    assert f.keep(Document("d", "\n".join(f"{LONG} {i}." for i in range(5)))) == (
        False,
        "fineweb:short_lines",
    )
