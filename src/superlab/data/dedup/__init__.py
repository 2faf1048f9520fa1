"""Deduplication: a removed document is reported with ``dup_of``, the id of the one kept."""

from superlab.data.dedup.exact import ExactDedup, exact_key, normalize
from superlab.data.dedup.lsh import NearDupResult, near_duplicates
from superlab.data.dedup.minhash import MinHasher, jaccard, shingle_words
from superlab.data.dedup.minhash_store import signature_path, write_signatures

__all__ = [
    "ExactDedup",
    "MinHasher",
    "NearDupResult",
    "exact_key",
    "jaccard",
    "near_duplicates",
    "normalize",
    "shingle_words",
    "signature_path",
    "write_signatures",
]
