from __future__ import annotations

from superlab.data import Document
from superlab.data.filters.c4 import C4LineFilter

GOOD = "The river runs to the sea and the town grew along it."
GOOD2 = "Farmers brought grain to the market every week."


def test_lines_removed_by_reason_and_text_rewritten() -> None:
    text = "\n".join(
        [
            "Home | About | Contact",  # no terminal punctuation
            GOOD,
            "Read more.",  # two words
            "Please enable JavaScript to view this page.",
            "",
            "",
            GOOD2,
            "This site uses cookies to improve your experience.",
            "By using it you accept our Terms of Use.",
            "To be continued...",  # an ellipsis is not terminal punctuation
            '  He said "it is done."  ',
        ]
    )
    f = C4LineFilter()
    d = Document("d", text)
    assert f.keep(d) is True
    assert d.text == f'{GOOD}\n\n{GOOD2}\nHe said "it is done."'
    assert f.lines_removed == {
        "c4:no_terminal_punct": 2,
        "c4:short_line": 1,
        "c4:javascript": 1,
        "c4:policy": 2,
    }


def test_lorem_ipsum_and_curly_bracket_drop_the_document() -> None:
    f = C4LineFilter()
    lorem = Document("a", f"{GOOD}\nLorem ipsum dolor sit amet, consectetur.")
    assert f.keep(lorem) == (False, "c4:lorem_ipsum")
    code = Document("b", f"{GOOD}\nThe map is {{a: 1}} in this language.")
    assert f.keep(code) == (False, "c4:curly_bracket")
    assert lorem.text.startswith(GOOD) and "Lorem" in lorem.text  # a dropped doc is untouched
    assert f.lines_removed == {}  # whole-document drops do not count lines


def test_curly_bracket_in_a_removed_line_does_not_drop_the_document() -> None:
    # c4_utils checks terminal punctuation first: "int main() {" is just a removed line.
    f = C4LineFilter()
    d = Document("c", f"int main() {{\n{GOOD}\n}}")
    assert f.keep(d) is True
    assert d.text == GOOD
    assert f.lines_removed == {"c4:no_terminal_punct": 2}


def test_document_with_no_line_left_is_dropped_as_empty() -> None:
    f = C4LineFilter()
    d = Document("e", "Menu\nSign in\nShare this")
    assert f.keep(d) == (False, "c4:empty")
    assert f.lines_removed == {"c4:no_terminal_punct": 3}


def test_counts_accumulate_over_documents() -> None:
    f = C4LineFilter()
    for i in range(3):
        assert f.keep(Document(str(i), f"{GOOD}\nPrivacy Policy: we care.")) is True
    assert f.lines_removed == {"c4:policy": 3}
