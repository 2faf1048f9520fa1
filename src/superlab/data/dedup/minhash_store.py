"""Per-shard signature files: ``NNNNN.sig.npy`` (the completion marker, written last) and
``NNNNN.refs.jsonl`` (each document's id, source and offset), both written by atomic rename.

A shard's signatures are computed in one worker (shards in parallel); the clustering step
(``lsh.near_duplicates``) reads them back in the order of the list it is given, which defines
the global document index.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from superlab.common.atomic import atomic_write_with
from superlab.data.dedup.minhash import MinHasher
from superlab.data.document import Document

SIG_SUFFIX = ".sig.npy"
REFS_SUFFIX = ".refs.jsonl"


def signature_path(out_dir: Path, shard: int) -> Path:
    """Where shard ``shard``'s signatures go: ``out_dir/NNNNN.sig.npy``."""
    return Path(out_dir) / f"{shard:05d}{SIG_SUFFIX}"


def refs_path(sig_path: Path) -> Path:
    """The refs file next to a signature file."""
    return sig_path.with_name(sig_path.name.removesuffix(SIG_SUFFIX) + REFS_SUFFIX)


def save_array(path: Path, arr: np.ndarray) -> None:
    """``np.save`` by atomic rename: a reader sees the whole file or none."""
    atomic_write_with(Path(path), lambda f: np.save(f, arr))


def write_signatures(
    docs: Iterable[Document], path: Path, hasher: MinHasher, batch_size: int = 2048
) -> int:
    """Compute the signatures of one shard's documents, in order, into ``path``; the doc count."""
    path = Path(path)
    sigs: list[np.ndarray] = []
    refs: list[bytes] = []
    batch: list[Document] = []

    def flush() -> None:
        sigs.append(hasher.signatures([d.text for d in batch]))
        refs.extend(json.dumps([d.id, d.source, d.offset]).encode() + b"\n" for d in batch)
        batch.clear()

    for doc in docs:
        batch.append(doc)
        if len(batch) == batch_size:
            flush()
    if batch or not sigs:
        flush()
    sig_DP = np.concatenate(sigs)
    atomic_write_with(refs_path(path), lambda f: f.writelines(refs))
    save_array(path, sig_DP)  # last: its presence marks the shard done
    return len(sig_DP)


def iter_refs(sig_files: list[Path], wanted: np.ndarray) -> Iterator[tuple[int, str, str, int]]:
    """``(global index, id, source, offset)`` of the sorted global indices ``wanted``, streaming."""
    wanted = np.asarray(wanted, dtype=np.int64)
    pos, base = 0, 0
    for sig in sig_files:
        n = np.load(sig, mmap_mode="r").shape[0]
        stop = int(np.searchsorted(wanted, base + n))
        if stop > pos:
            local = set((wanted[pos:stop] - base).tolist())
            with refs_path(Path(sig)).open("rb") as f:
                for i, line in enumerate(f):
                    if i in local:
                        doc_id, source, offset = json.loads(line)
                        yield base + i, doc_id, source, offset
        pos, base = stop, base + n
