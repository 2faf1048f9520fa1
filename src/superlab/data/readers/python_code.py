"""Python source files as documents: the interpreter's standard library, or files under paths.

Kind ``python_code``: one document per ``.py`` file, its text as written. With ``paths``
empty the files are the running interpreter's standard library (``sysconfig``'s
``stdlib`` directory, Python Software Foundation License 2.0), less its test suites,
``site-packages`` and caches; no download is needed. The files are sorted by relative
path and split into ``SHARDS`` contiguous virtual inputs ``python_code:i/n``, so the
corpus is the same for one Python version whatever the executor.
"""

from __future__ import annotations

import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path

from superlab.config.data import SourceConfig
from superlab.data.document import BadRecord, Document
from superlab.data.readers.paths import expand_paths, shard_of

SHARDS = 4
LICENSE = "PSF-2.0"  # the Python Software Foundation License, version 2
ToDoc = Callable[[Path, str, str], Document | BadRecord]  # (file, name, text) -> a document
# Directory names left out of the standard library: test suites, installed packages, caches.
SKIP_DIRS = frozenset(
    {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "_bundled"}
)


def stdlib_root() -> Path:
    """The running interpreter's standard library directory."""
    return Path(sysconfig.get_paths()["stdlib"])


def python_files(cfg: SourceConfig) -> list[tuple[Path, str]]:
    """(file, name) of every ``.py`` file the source reads, sorted; at most ``cfg.max_docs``."""
    found: list[tuple[Path, str]] = []
    if cfg.paths:
        for entry in cfg.paths:  # a directory (its .py files, recursively), a file or a glob
            if (d := Path(entry)).is_dir():
                found += [(f, f.relative_to(d).as_posix()) for f in sorted(d.rglob("*.py"))]
            else:
                found += [(f, f.name) for f in expand_paths([entry])]
    else:
        root = stdlib_root()
        for f in sorted(root.rglob("*.py")):
            rel = f.relative_to(root)
            if not SKIP_DIRS.intersection(rel.parts[:-1]):
                found.append((f, rel.as_posix()))
    return found[: cfg.max_docs] if cfg.max_docs else found


def virtual_inputs(kind: str, shards: int = SHARDS) -> list[str]:
    """``kind:i/n`` for the ``n`` contiguous slices of a generated source."""
    return [f"{kind}:{i}/{shards}" for i in range(shards)]


def shard_slice(name: str, kind: str, n_items: int) -> range:
    """The item positions of the virtual input ``name`` (``kind:i/n``)."""
    i, n = shard_of(name, kind, "shard name", SHARDS)
    per = -(-n_items // n)  # ceil
    return range(i * per, min((i + 1) * per, n_items))


def read_text_file(path: Path, max_bytes: int) -> str | BadRecord:
    """The file's UTF-8 text, or a ``BadRecord`` (``read:giant``, ``read:bad_utf8``)."""
    size = path.stat().st_size
    if size > max_bytes:
        return BadRecord(str(path), 0, "read:giant", f"{size} bytes > max_doc_bytes {max_bytes}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        return BadRecord(str(path), 0, "read:bad_utf8", str(e))


def read_files(
    name: str, kind: str, cfg: SourceConfig, to_doc: ToDoc
) -> Iterator[Document | BadRecord]:
    """``to_doc(file, name, text)`` for each file of the virtual input ``name``, in order;
    a file that cannot be read is its ``BadRecord``."""
    files = python_files(cfg)
    for k in shard_slice(name, kind, len(files)):
        path, rel = files[k]
        text = read_text_file(path, cfg.max_doc_bytes)
        yield text if isinstance(text, BadRecord) else to_doc(path, rel, text)


def read_python_code(name: str, cfg: SourceConfig) -> Iterator[Document | BadRecord]:
    """One virtual input of a ``python_code`` source: a document per file."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"

    def to_doc(path: Path, rel: str, text: str) -> Document:
        meta = {"path": rel, "lang": "python"}
        if not cfg.paths:
            meta |= {"license": LICENSE, "python": version}
        return Document(f"python_code:{rel}", text, meta, str(path), 0)

    return read_files(name, "python_code", cfg, to_doc)
