"""Readers: turn input files into a stream of ``Document`` and ``BadRecord``.

The shape: a reader is a generator over one input (a file, or a demo shard) that yields
a ``Document`` per good record and a ``BadRecord`` (``read:<why>``) per bad one, streams
with memory independent of the input's size, and never raises on bad data; it raises
``DataError`` only for configuration errors (a missing column, a missing package).

    list_inputs(cfg) -> list[str]               # what the executor shards over
    read_input(name, cfg, counts) -> Iterator   # one input
    read_source_records(cfg) -> Iterator        # all inputs, chained
    read_source(cfg) -> Iterator[Document]      # strict: raises on the first bad record
"""

from superlab.data.readers.jsonl import read_documents, read_jsonl, read_jsonl_file
from superlab.data.readers.source import (
    list_inputs,
    read_input,
    read_source,
    read_source_records,
)

__all__ = [
    "list_inputs",
    "read_documents",
    "read_input",
    "read_jsonl",
    "read_jsonl_file",
    "read_source",
    "read_source_records",
]
