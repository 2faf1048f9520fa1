"""Writers: streams of records to files that appear only when complete (``JsonlWriter``)."""

from superlab.data.writers.jsonl import JsonlWriter

__all__ = ["JsonlWriter"]
