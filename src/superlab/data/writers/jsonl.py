"""A JSONL file written to a temporary sibling and renamed into place only on success."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from types import TracebackType
from typing import IO, Any


class JsonlWriter:
    """``with JsonlWriter(path) as w: w.write(obj)``: ``path`` exists only if the block succeeds.

    On any exception (KeyboardInterrupt included) the temporary file is removed, so
    a reader never sees a half-written file. Temporaries are named ``.<name>.*.tmp``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.count = 0
        self._tmp: Path | None = None
        self._f: IO[str] | None = None

    def __enter__(self) -> JsonlWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(6)}.tmp")
        # Mode 0o666 less the umask, like open(): readable by whoever reads the run.
        fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        self._f = os.fdopen(fd, "w", encoding="utf-8")
        return self

    def write(self, obj: dict[str, Any]) -> None:
        """Append one record as a JSON line."""
        assert self._f is not None, "use JsonlWriter as a context manager"
        self._f.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.count += 1

    def write_raw(self, line: str) -> None:
        """Append one already-serialized JSON line (with or without its newline)."""
        assert self._f is not None, "use JsonlWriter as a context manager"
        self._f.write(line if line.endswith("\n") else line + "\n")
        self.count += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._f is not None and self._tmp is not None
        try:
            if exc_type is None:
                self._f.flush()
                os.fsync(self._f.fileno())
            self._f.close()
            if exc_type is None:
                os.replace(self._tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()
