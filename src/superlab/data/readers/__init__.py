"""Readers: turn files into a stream of ``Document`` (``read_jsonl``, ``read_documents``)."""

from superlab.data.readers.jsonl import read_documents, read_jsonl
from superlab.data.readers.source import read_source

__all__ = ["read_documents", "read_jsonl", "read_source"]
