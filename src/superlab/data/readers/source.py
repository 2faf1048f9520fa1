"""The recipe's document source, by kind, split into inputs that workers read independently.

An *input* is one file (jsonl, parquet, warc) or one virtual shard of the demo corpus
(``wiki_demo:i/n``: the i-th of n contiguous slices of the stream, so shard order is
stream order and "first in corpus order" means the same for dedup whatever the sharding;
every worker regenerates the deterministic stream up to the end of its slice). The executor calls
``list_inputs`` once and ``read_input`` per worker; ``read_source_records`` chains them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from superlab.config.recipe import SourceConfig
from superlab.data.document import BadRecord, Document
from superlab.data.errors import DataError
from superlab.data.readers.jsonl import read_jsonl_file
from superlab.data.readers.paths import expand_paths, shard_of

WIKI_DEMO = "wiki_demo"
WIKI_DEMO_SHARDS = 4  # virtual shards of the demo corpus, so it runs in parallel too

# How read_source words a bad record in the error it raises (the pipeline's old messages).
_WORDS = {"read:invalid_json": "invalid JSON", "read:not_object": "expected a JSON object"}


def list_inputs(cfg: SourceConfig) -> list[str]:
    """The source's inputs, in a fixed order: files (globs expanded) or demo shard names."""
    if cfg.kind == WIKI_DEMO:
        return [f"{WIKI_DEMO}:{i}/{WIKI_DEMO_SHARDS}" for i in range(WIKI_DEMO_SHARDS)]
    if cfg.kind in ("jsonl", "parquet", "warc"):
        return [str(p) for p in expand_paths(cfg.paths)]
    if cfg.kind in ("python_code", "python_docs"):
        from superlab.data.readers.python_code import virtual_inputs

        return virtual_inputs(cfg.kind)
    if cfg.kind == "wiki_summaries":
        from superlab.data.corpus.wiki_summaries import summary_inputs

        return summary_inputs(cfg)
    if cfg.kind == "sharegpt":
        from superlab.data.readers.sharegpt import sharegpt_inputs

        return sharegpt_inputs(cfg)
    raise DataError(f"unknown source kind {cfg.kind!r}")


def read_input(
    name: str, cfg: SourceConfig, counts: Counter[str] | None = None
) -> Iterator[Document | BadRecord]:
    """Stream one input of ``list_inputs(cfg)``: documents, and a ``BadRecord`` per bad record.

    ``counts`` (optional) receives non-document records that are skipped without being
    rejects, as ``skipped:<kind>`` (e.g. WARC ``skipped:request``).
    """
    if cfg.kind == WIKI_DEMO:
        return _wiki_demo_shard(name, cfg)
    if cfg.kind == "python_code":
        from superlab.data.readers.python_code import read_python_code

        return read_python_code(name, cfg)
    if cfg.kind == "python_docs":
        from superlab.data.readers.python_docs import read_python_docs

        return read_python_docs(name, cfg)
    if cfg.kind == "wiki_summaries":
        from superlab.data.corpus.wiki_summaries import read_wiki_summaries

        return read_wiki_summaries(name, cfg)
    if cfg.kind == "sharegpt":
        from superlab.data.readers.sharegpt import read_sharegpt

        return read_sharegpt(name, cfg)
    path = Path(name)
    if cfg.kind == "jsonl":
        return read_jsonl_file(path, cfg.text_field, cfg.id_field, cfg.max_doc_bytes)
    if cfg.kind == "parquet":
        from superlab.data.readers.parquet import read_parquet_file

        return read_parquet_file(path, cfg.text_field, cfg.id_field, cfg.max_doc_bytes)
    if cfg.kind == "warc":
        from superlab.data.readers.warc import read_warc_file

        return read_warc_file(path, cfg.extractor, cfg.max_doc_bytes, counts)
    raise DataError(f"unknown source kind {cfg.kind!r}")


def _wiki_demo_shard(name: str, cfg: SourceConfig) -> Iterator[Document]:
    from superlab.data.corpus.wiki_demo import iter_wiki_demo

    yield from iter_wiki_demo(cfg, shard=shard_of(name, WIKI_DEMO, "demo shard name", 4))


def read_source_records(
    cfg: SourceConfig, counts: Counter[str] | None = None
) -> Iterator[Document | BadRecord]:
    """Every input in order: the whole source as documents and ``BadRecord``s."""
    if cfg.kind == WIKI_DEMO:  # one unsplit stream: the same order as before sharding
        from superlab.data.corpus.wiki_demo import iter_wiki_demo

        yield from iter_wiki_demo(cfg)
        return
    for name in list_inputs(cfg):
        yield from read_input(name, cfg, counts)


def read_source(cfg: SourceConfig) -> Iterator[Document]:
    """Documents only, strictly: the first bad record raises ``DataError`` naming file:offset."""
    for rec in read_source_records(cfg):
        if isinstance(rec, BadRecord):
            words = _WORDS.get(rec.reason, rec.reason)
            raise DataError(f"{rec.source}:{rec.offset}: {words} ({rec.detail})")
        yield rec
