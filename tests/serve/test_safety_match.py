"""Trigger prefilter and windows of ``match.Patterns``: they skip work, never a match."""

from superlab.serve.safety import floor
from superlab.serve.safety.evaluate import SETS, load_set
from superlab.serve.safety.match import LONG, Patterns, triggers
from superlab.serve.safety.normalize import views
from superlab.serve.safety.rules import RuleCheck


def _brute(p: Patterns, text: str) -> bool:
    v = views(text)
    return any(full.search(x) for full, _, _, _ in p.items for x in v.plain) or any(
        sq.search(x) for _, sq, _, _ in p.items for x in v.squeezed
    )


def test_triggers_are_word_prefixes():
    assert triggers(r"(?<![\w])(?:pre-?teens?)(?![\w])") == {"pre"}  # not "teen": mid-word
    assert triggers(r"\b(?:kill|murder)\w*\s+my") == {"kill", "murd"}
    assert triggers(r"\w*porn") is None  # may start mid-word: always run


def test_prefilter_agrees_with_brute_force():
    groups = [floor._MINOR, floor._SEXUAL, floor._REQUEST, floor._PROTECTIVE]
    groups += list(RuleCheck.default().patterns.values())
    items = load_set(SETS / "harmful.jsonl")[::4] + load_set(SETS / "benign.jsonl")[::4]
    for it in items:
        for g in groups:
            assert g.search(views(it.text)) == _brute(g, it.text), it.text


def test_windows_of_a_long_text_find_a_match_anywhere():
    p = Patterns([r"\bkill\w*\s+my\s+neighbou?r\b"])
    filler = "the weather is nice today and we went for a walk. " * (2 * LONG // 50)
    for text in (
        filler + "kill my neighbour",
        "kill my neighbour " + filler,
        filler[:3000] + " killing my neighbor " + filler,
    ):
        assert len(text) > LONG and p.search(views(text)), text[-40:]
    assert not p.search(views(filler + " kill time with my neighbour"))
