"""Input files: globs expanded deterministically, data suffixes stripped, compression undone."""

from __future__ import annotations

import glob
import gzip
from pathlib import Path
from typing import IO

from superlab.data.errors import DataError
from superlab.data.readers.zstd import open_zst

_GLOB_CHARS = frozenset("*?[")
_SUFFIXES = (".gz", ".zst", ".jsonl", ".ndjson", ".json", ".parquet", ".warc", ".wet", ".wat")


def shard_of(name: str, kind: str, what: str, shards: int) -> tuple[int, int]:
    """``(i, n)`` of the virtual input ``kind:i/n``; a ``DataError`` naming ``what`` if not one."""
    head, _, shard = name.partition(":")
    try:
        i, n = (int(x) for x in shard.split("/"))
    except ValueError:  # not two whole numbers
        i = n = 0
    if head != kind or not 0 <= i < n:
        raise DataError(f"{name!r} is not a {what} like '{kind}:0/{shards}'")
    return i, n


def expand_paths(paths: list[str]) -> list[Path]:
    """Files named by ``paths`` in the given order, each glob's matches sorted, duplicates once."""
    found: dict[Path, None] = {}  # an ordered set
    for p in paths:
        if _GLOB_CHARS & set(p):
            matches = [Path(m) for m in sorted(glob.glob(p, recursive=True)) if Path(m).is_file()]
            if not matches:
                raise DataError(f"{p}: no files match this pattern")
            found.update(dict.fromkeys(matches))
        elif Path(p).is_file():
            found[Path(p)] = None
        else:
            raise DataError(f"{p}: no such file")
    return list(found)


def file_stem(path: Path) -> str:
    """``dir/part-1.jsonl.gz`` -> ``part-1``: the name without its data suffixes."""
    name = path.name
    while name.endswith(_SUFFIXES):
        name = name[: name.rindex(".")]
    return name or path.name


def open_binary(path: Path) -> IO[bytes]:
    """Open ``path`` for reading bytes, decompressing ``.gz`` and ``.zst`` on the fly."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    if path.name.endswith(".zst"):
        return open_zst(path)
    return open(path, "rb")
