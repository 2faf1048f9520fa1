"""Documents in, clean deduplicated text out, then a tokenizer and packed token shards.

The shape of a unit of work: a *step* is a function over an iterator of
``Document`` that yields the documents it keeps; a *filter* answers
``keep(doc) -> True | (False, reason)``. Every removal is counted under its
reason and written to ``data/rejects.jsonl`` (step, reason, id, source, offset).

Packed shards (``runs/<name>/data/shards/``), the contract with ``train`` and ``eval``:

- ``index.json``: ``{"dtype": "uint16"|"uint32", "vocab_size": V, "eos_id": E,
  "splits": {"train": [SHARD, ...], "heldout": [SHARD, ...]}}`` where each SHARD is
  ``{"file": "train-00000.bin", "docs_file": "train-00000.docs.npy",
  "tokens": N, "docs": M, "text_bytes": B}``.
- ``<split>-NNNNN.bin``: the raw little-endian token ids of the shard's documents,
  each document followed by EOS (read with ``numpy.memmap``).
- ``<split>-NNNNN.docs.npy``: int64 start offset of each document in the shard.
- ``text_bytes`` is the UTF-8 size of the shard's text, for bits-per-byte.
"""

from superlab.data.document import Document

__all__ = ["Document"]
