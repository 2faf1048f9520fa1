"""Reading ``.zst`` (``zstandard`` imported only here): concatenated frames, truncation checked.

``zstandard``'s own ``stream_reader`` treats a file cut off inside a frame as a clean end
of input, which would silently drop the rest of a corpus; this reader raises instead.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO, Any

from superlab.common.deps import require
from superlab.data.errors import DataError

CHUNK = 1 << 20  # compressed bytes read at a time


def open_zst(path: Path) -> IO[bytes]:
    """A buffered binary reader of the decompressed content of ``path``."""
    zstandard = require("zstandard", f"{path}: reading .zst", "zstd", error=DataError)
    return io.BufferedReader(_ZstdRaw(path, zstandard))


class _ZstdRaw(io.RawIOBase):
    """Raw reader over all zstd frames in a file; ends inside a frame raise ``EOFError``."""

    def __init__(self, path: Path, zstandard: Any) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 (closed in close())
        self._error = zstandard.ZstdError
        self._dctx = zstandard.ZstdDecompressor()
        self._dobj = self._dctx.decompressobj()
        self._in_frame = False  # the current frame has had input but has not ended
        self._out = memoryview(b"")
        self._pending: Exception | None = None  # an error to raise once good output is read

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._out:
            if self._pending is not None:
                raise OSError(f"zstd: {self._pending}")
            chunk = self._file.read(CHUNK)
            if not chunk:
                if self._in_frame:
                    raise EOFError("the zstd stream ends inside a frame (truncated file?)")
                return 0
            try:
                self._out = memoryview(self._decompress(chunk))
            except self._error as e:
                raise OSError(f"zstd: {e}") from None
        n = min(len(b), len(self._out))
        b[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def _decompress(self, chunk: bytes) -> bytes:
        parts: list[bytes] = []
        while chunk:
            self._in_frame = True
            try:
                parts.append(self._dobj.decompress(chunk))
            except self._error as e:
                if not parts:
                    raise
                # Earlier frames in this chunk decoded fine: hand them out first, so no
                # good record before the damage is lost, then raise on the next read.
                self._pending = e
                break
            if not self._dobj.eof:
                break
            chunk = self._dobj.unused_data  # the next frame starts here
            self._dobj = self._dctx.decompressobj()
            self._in_frame = False
        return b"".join(parts)

    def close(self) -> None:
        self._file.close()
        super().close()
