"""Tokenize documents and write the packed shards described in ``superlab.data`` (the contract).

Legend: ``T`` tokens. Each split's documents go, in input order, into
``<split>-NNNNN.bin`` files of at most ``shard_tokens`` tokens (a document is never
split; one longer than ``shard_tokens`` gets a shard of its own).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import IO, Any

import numpy as np
from tokenizers import Tokenizer

from superlab.common import atomic_dir, atomic_write_json
from superlab.data.document import Document
from superlab.data.split import SPLITS, HeldoutSplit
from superlab.data.tokenizer import eos_id

BATCH_DOCS = 256  # documents per encode_batch call (tokenizers parallelizes within a batch)


def shard_dtype(vocab_size: int) -> np.dtype:
    """Little-endian uint16 when every id fits (vocab <= 65536), else uint32."""
    return np.dtype("<u2" if vocab_size <= 65536 else "<u4")


class ShardWriter:
    """Appends one split's documents to shards, each written to a temporary then renamed."""

    def __init__(self, out_dir: Path, split: str, dtype: np.dtype, shard_tokens: int) -> None:
        self.out_dir, self.split = out_dir, split
        self.dtype, self.shard_tokens = dtype, shard_tokens
        self.shards: list[dict[str, Any]] = []
        self._f: IO[bytes] | None = None
        self._offsets: list[int] = []
        self._tokens = 0
        self._text_bytes = 0

    def _name(self, suffix: str) -> str:
        return f"{self.split}-{len(self.shards):05d}{suffix}"

    def add(self, ids_T: np.ndarray, text_bytes: int) -> None:
        """Append one document's ids (EOS included) and its text's UTF-8 size."""
        if self._tokens and self._tokens + len(ids_T) > self.shard_tokens:
            self._finish()
        if self._f is None:
            # Held open across add() calls; closed by _finish() or abort().
            self._f = open(self.out_dir / f".{self._name('.bin')}.tmp", "wb")  # noqa: SIM115
        self._offsets.append(self._tokens)
        self._f.write(ids_T.astype(self.dtype, copy=False).tobytes())
        self._tokens += len(ids_T)
        self._text_bytes += text_bytes

    def close(self) -> list[dict[str, Any]]:
        """Finish the open shard; the index entries of every shard written."""
        if self._f is not None:
            self._finish()
        return self.shards

    def abort(self) -> None:
        """Close and remove the open shard's temporary file."""
        if self._f is not None:
            self._f.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._f.name)
            self._f = None

    def _finish(self) -> None:
        assert self._f is not None
        bin_name, docs_name = self._name(".bin"), self._name(".docs.npy")
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        os.replace(self._f.name, self.out_dir / bin_name)
        tmp = self.out_dir / f".{docs_name}.tmp"
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(self._offsets, dtype=np.int64))
        os.replace(tmp, self.out_dir / docs_name)
        self.shards.append(
            {
                "file": bin_name,
                "docs_file": docs_name,
                "tokens": self._tokens,
                "docs": len(self._offsets),
                "text_bytes": self._text_bytes,
            }
        )
        self._f, self._offsets, self._tokens, self._text_bytes = None, [], 0, 0


def _batches(docs: Iterable[Document], n: int) -> Iterator[list[Document]]:
    it = iter(docs)
    while batch := list(islice(it, n)):
        yield batch


def pack(
    docs: Iterable[Document],
    tok: Tokenizer,
    split: HeldoutSplit,
    shard_tokens: int,
    out_dir: str | Path,
    on_docs: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Tokenize ``docs`` and write ``out_dir`` (shards, then ``index.json`` last); the index.

    ``out_dir`` appears only complete: it is built in a temporary sibling and renamed.
    Text that spells a special token (``<|endoftext|>``) is encoded as plain text, so
    EOS appears only where a document ends.
    """
    tok.encode_special_tokens = True
    vocab_size = tok.get_vocab_size()
    dtype, eos = shard_dtype(vocab_size), eos_id(tok)
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)

    def fill(writers: dict[str, ShardWriter]) -> None:
        for batch in _batches(docs, BATCH_DOCS):
            encodings = encode([d.text for d in batch], add_special_tokens=False)
            for doc, enc in zip(batch, encodings, strict=True):
                ids_T = np.asarray([*enc.ids, eos], dtype=dtype)
                writers[split.split_of(doc.id)].add(ids_T, len(doc.text.encode("utf-8")))
            if on_docs is not None:
                on_docs(len(batch))

    return write_shards(out_dir, dtype, shard_tokens, vocab_size, eos, fill)


def write_shards(
    out_dir: str | Path,
    dtype: np.dtype,
    shard_tokens: int,
    vocab_size: int,
    eos: int,
    fill: Callable[[dict[str, ShardWriter]], None],
) -> dict[str, Any]:
    """A ``ShardWriter`` per split for ``fill`` to add documents to, then ``index.json`` last.

    ``out_dir`` appears only complete (built in a temporary sibling and renamed); the index.
    """
    with atomic_dir(out_dir) as tmp:
        writers = {s: ShardWriter(tmp, s, dtype, shard_tokens) for s in SPLITS}
        try:
            fill(writers)
            index = {
                "dtype": dtype.name,
                "vocab_size": vocab_size,
                "eos_id": eos,
                "splits": {s: w.close() for s, w in writers.items()},
            }
        finally:
            for w in writers.values():
                w.abort()
        atomic_write_json(tmp / "index.json", index)
    return index
