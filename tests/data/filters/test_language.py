from __future__ import annotations

import pickle
import time

import pytest

from superlab.config.recipe import LanguageConfig, SourceConfig
from superlab.data import Document
from superlab.data.corpus import CorpusFetchError, iter_wiki_demo

pytest.importorskip("py3langid", reason="language id needs py3langid")
from superlab.data.filters.language import LanguageFilter, detect


@pytest.fixture(scope="module")
def pages() -> list[Document]:
    """Every es/fr page of the full demo corpus (291) and 300 clean English pages."""
    try:
        docs = list(iter_wiki_demo(SourceConfig(seed=0)))
    except CorpusFetchError as e:
        pytest.skip(f"demo corpus unavailable: {e}")
    foreign = [d for d in docs if d.metadata["lang"] != "en"]
    english = [d for d in docs if d.metadata["lang"] == "en" and not d.metadata["planted"]]
    return foreign + english[:300]


def test_accuracy_on_real_en_es_fr_pages(pages: list[Document]) -> None:
    assert len(pages) >= 500
    t = time.perf_counter()
    right = sum(detect(d.text)[0] == d.metadata["lang"] for d in pages)
    rate = len(pages) / (time.perf_counter() - t)
    assert right / len(pages) >= 0.95, right / len(pages)
    assert rate > 200  # ~2,800 docs/s on one core; a loose floor for slow CI machines


def test_filter_keeps_english_and_names_the_foreign_language(pages: list[Document]) -> None:
    f = LanguageFilter(LanguageConfig())
    verdicts = [(d.metadata["lang"], f.keep(Document(d.id, d.text))) for d in pages]
    en = [v for lang, v in verdicts if lang == "en"]
    assert sum(v is True for v in en) / len(en) >= 0.95
    foreign = [(lang, v) for lang, v in verdicts if lang != "en"]
    named = sum(v == (False, f"language:{lang}") for lang, v in foreign)
    assert named / len(foreign) >= 0.95


def test_metadata_low_score_and_languages() -> None:
    d = Document("d", "The committee approved the budget for the new library on Monday.")
    assert LanguageFilter().keep(d) is True
    assert d.metadata["language"] == "en" and d.metadata["language_score"] >= 0.65
    fr = Document("f", "Le comité a approuvé le budget de la nouvelle bibliothèque lundi.")
    assert LanguageFilter().keep(fr) == (False, "language:fr")
    assert LanguageFilter(LanguageConfig(languages=["en", "fr"])).keep(fr) is True
    # English wins but below the bar.
    strict = LanguageFilter(LanguageConfig(min_score=0.999999))
    assert strict.keep(Document("s", "The committee met yesterday.")) == (
        False,
        "language:low_score",
    )


def test_picklable_without_the_model() -> None:
    f = LanguageFilter()
    f.keep(Document("d", "Some English text to load the model."))
    assert len(pickle.dumps(f)) < 1000
    assert pickle.loads(pickle.dumps(f)).keep(Document("e", "The cat sat on the mat.")) is True
