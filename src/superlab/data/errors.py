"""The error a data step raises for input the user can fix (a bad line, a missing file)."""

from __future__ import annotations

from superlab.common import StageError


class DataError(StageError):
    """Bad or missing input data; the message names the file, line and field."""
