"""Packing per piece of the corpus, in parallel, then the shards and their index merged at the end.

``pack`` tokenizes the whole corpus in one process. Here the corpus (``data/clean.jsonl``, then
the probe documents, if any) is cut into pieces of ``PIECE_DOCS`` documents; one task per piece
tokenizes it and writes, per split, its tokens (``<piece>.<split>.bin``) and each document's
token count and text size (``<piece>.<split>.docs.npy``, (docs, 2) int64), then its marker
``<piece>.done`` last. The merge streams the pieces in order through ``ShardWriter``, so the
shards, their document offsets and ``index.json`` are byte for byte those of ``pack``; it holds
one piece's counts and one shard's offsets at a time. ``plan.json`` pins the tokenizer and the
pieces: work made for another one is discarded.

Legend: T tokens, n documents of a piece.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from superlab.common import atomic_write_json
from superlab.common.atomic import atomic_write_with
from superlab.data.document import Document
from superlab.data.pack import BATCH_DOCS, ShardWriter, shard_dtype, write_shards
from superlab.data.split import SPLITS, HeldoutSplit
from superlab.data.tokenizer import eos_id, load_tokenizer

PIECE_DOCS = 100_000  # documents per packing task (~0.1 GiB of tokens at 500 per document)
MapFn = Callable[[Callable[[Any], dict[str, Any]], list[Any]], list[dict[str, Any]]]


@dataclass(frozen=True)
class PieceTask:
    """Piece ``index``: lines ``[start, end)`` (bytes) of ``corpus``, or the probe documents."""

    index: int
    corpus: str
    start: int
    end: int
    tokenizer: str
    split: HeldoutSplit
    out: str
    probes: dict[str, Any] | None = None  # ProbeMixConfig: this piece is the probe documents


def line_pieces(path: Path, piece_docs: int) -> Iterator[tuple[int, int, int]]:
    """``(start, end, docs)`` byte ranges of ``path`` holding ``piece_docs`` lines each."""
    start = pos = n = 0
    with open(path, "rb") as f:
        for line in f:
            pos += len(line)
            n += 1
            if n == piece_docs:
                yield start, pos, n
                start, n = pos, 0
    if n:
        yield start, pos, n


def _piece_docs(task: PieceTask) -> Iterator[Document]:
    if task.probes is not None:
        from superlab.config.data import ProbeMixConfig
        from superlab.data.probes import probe_documents

        yield from probe_documents(ProbeMixConfig(**task.probes))
        return
    with open(task.corpus, "rb") as f:
        f.seek(task.start)
        while f.tell() < task.end:
            yield Document.from_json(json.loads(f.readline()))


def pack_piece(task: PieceTask) -> dict[str, Any]:
    """Tokenize one piece into per-split token and count files; its marker last."""
    tok = load_tokenizer(task.tokenizer)
    tok.encode_special_tokens = True
    dtype, eos = shard_dtype(tok.get_vocab_size()), eos_id(tok)
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
    out = Path(task.out)
    tokens: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    counts: dict[str, list[tuple[int, int]]] = {s: [] for s in SPLITS}
    docs = _piece_docs(task)
    while batch := list(islice(docs, BATCH_DOCS)):
        encodings = encode([d.text for d in batch], add_special_tokens=False)
        for doc, enc in zip(batch, encodings, strict=True):
            ids_T = np.asarray([*enc.ids, eos], dtype=dtype)
            split = task.split.split_of(doc.id)
            tokens[split].append(ids_T)
            counts[split].append((len(ids_T), len(doc.text.encode("utf-8"))))
    for s in SPLITS:
        data = np.concatenate(tokens[s]) if tokens[s] else np.empty(0, dtype=dtype)
        atomic_write_with(out / f"{task.index:05d}.{s}.bin", lambda f, d=data: f.write(d.tobytes()))
        n_2 = np.asarray(counts[s], dtype=np.int64).reshape(-1, 2)
        atomic_write_with(out / f"{task.index:05d}.{s}.docs.npy", lambda f, a=n_2: np.save(f, a))
    stats = {"docs": sum(len(c) for c in counts.values())}
    atomic_write_json(out / f"{task.index:05d}.done", stats)
    return stats


def pack_sharded(
    corpus: Path,
    tokenizer: Path,
    split: HeldoutSplit,
    shard_tokens: int,
    out_dir: Path,
    work: Path,
    map_fn: MapFn,
    probes: dict[str, Any] | None = None,
    on_docs: Callable[[int], None] | None = None,
    piece_docs: int = PIECE_DOCS,
) -> dict[str, Any]:
    """``pack``'s output (shards, then ``index.json``) with tokenization in ``map_fn`` tasks."""
    pieces: list[tuple[int, int, int]] = list(line_pieces(corpus, piece_docs))
    tok_sha = hashlib.sha256(Path(tokenizer).read_bytes()).hexdigest()
    plan = {"tokenizer_sha256": tok_sha, "pieces": pieces, "probes": probes}
    plan_path = work / "plan.json"
    stored = json.loads(plan_path.read_text(encoding="utf-8")) if plan_path.is_file() else None
    if stored != json.loads(json.dumps(plan)):  # work for another tokenizer or corpus
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        atomic_write_json(plan_path, plan)
    tasks = [
        PieceTask(k, str(corpus), a, b, str(tokenizer), split, str(work))
        for k, (a, b, _) in enumerate(pieces)
    ]
    if probes is not None:
        tasks.append(PieceTask(len(tasks), "", 0, 0, str(tokenizer), split, str(work), probes))
    todo = [t for t in tasks if not (work / f"{t.index:05d}.done").exists()]
    if todo:
        map_fn(pack_piece, todo)
    index = _merge(work, len(tasks), tokenizer, shard_tokens, out_dir, on_docs)
    shutil.rmtree(work, ignore_errors=True)
    return index


def _merge(
    work: Path,
    n_pieces: int,
    tokenizer: Path,
    shard_tokens: int,
    out_dir: Path,
    on_docs: Callable[[int], None] | None,
) -> dict[str, Any]:
    tok = load_tokenizer(tokenizer)
    vocab_size = tok.get_vocab_size()
    dtype = shard_dtype(vocab_size)

    def fill(writers: dict[str, ShardWriter]) -> None:
        for k in range(n_pieces):
            for s in SPLITS:
                _copy_piece(work / f"{k:05d}.{s}", dtype, writers[s], on_docs)

    return write_shards(out_dir, dtype, shard_tokens, vocab_size, eos_id(tok), fill)


def _copy_piece(
    base: Path, dtype: np.dtype, writer: ShardWriter, on_docs: Callable[[int], None] | None
) -> None:
    """Feed one piece's documents of one split to ``writer``, in order."""
    n_2 = np.load(base.with_name(base.name + ".docs.npy"))
    if not len(n_2):
        return
    tokens_T = np.memmap(base.with_name(base.name + ".bin"), dtype=dtype, mode="r")
    ends = np.cumsum(n_2[:, 0])
    starts = ends - n_2[:, 0]
    for a, b, size in zip(starts.tolist(), ends.tolist(), n_2[:, 1].tolist(), strict=True):
        writer.add(np.asarray(tokens_T[a:b]), size)
    del tokens_T
    if on_docs is not None:
        on_docs(len(n_2))
