from __future__ import annotations

from superlab.data import Document
from superlab.data.dedup import ExactDedup, normalize


def test_normalize_ignores_case_punctuation_and_spacing() -> None:
    assert normalize("Hello,  World!\n\tAgain.") == "hello world again"
    assert normalize("Café — naïve") == "café naïve"


def test_first_occurrence_survives_and_duplicates_name_it() -> None:
    texts = {
        "a": "The cat sat on the mat.",
        "b": "the cat sat on the mat",  # case and punctuation only
        "c": "A different page.",
        "d": "A  different\npage!",
        "e": "THE CAT SAT ON THE MAT.",
        "f": "The cat sat on the mat today.",  # one more word: not a duplicate
    }
    dedup = ExactDedup()
    assert {i: dedup.dup_of(Document(i, t)) for i, t in texts.items()} == {
        "a": None,
        "b": "a",
        "c": None,
        "d": "c",
        "e": "a",
        "f": None,
    }
    assert len(dedup) == 3


def test_survivor_is_the_first_in_input_order() -> None:
    dedup = ExactDedup()
    assert dedup.dup_of(Document("z", "same text")) is None
    assert dedup.dup_of(Document("a", "Same text.")) == "z"
