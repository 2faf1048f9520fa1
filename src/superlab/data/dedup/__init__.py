"""Deduplication: a removed document is reported with ``dup_of``, the id of the one kept."""

from superlab.data.dedup.exact import ExactDedup, normalize

__all__ = ["ExactDedup", "normalize"]
