"""The recipe's document source, by kind: a demo corpus or the user's JSONL files."""

from __future__ import annotations

from collections.abc import Iterator

from superlab.config.recipe import SourceConfig
from superlab.data.document import Document
from superlab.data.readers.jsonl import read_jsonl


def read_source(cfg: SourceConfig) -> Iterator[Document]:
    """Stream the documents ``cfg`` names."""
    if cfg.kind == "jsonl":
        return read_jsonl(cfg.paths, cfg.text_field, cfg.id_field)
    if cfg.kind == "wiki_demo":
        from superlab.data.corpus.wiki_demo import iter_wiki_demo

        return iter_wiki_demo(cfg)
    raise ValueError(f"unknown source kind {cfg.kind!r}")
