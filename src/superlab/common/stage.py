"""The context a stage runs in: recipe, run directory, logger and progress bars."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from superlab.common.rundir import RunDir

if TYPE_CHECKING:
    from superlab.config import Recipe


class StageError(RuntimeError):
    """A stage cannot proceed for a reason the user can fix; the message says what."""


class ProgressHandle(Protocol):
    """One progress bar: advance it, or change its total or description."""

    def advance(self, n: float = 1) -> None: ...

    def update(self, *, total: float | None = None, description: str | None = None) -> None: ...


class _SilentHandle:
    def advance(self, n: float = 1) -> None:
        pass

    def update(self, *, total: float | None = None, description: str | None = None) -> None:
        pass


@dataclass
class StageContext:
    """Everything a stage needs. ``progress`` defaults to silent bars (tests, libraries)."""

    recipe: Recipe
    run: RunDir
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("superlab"))
    _open_bar: Callable[[str, float | None], ProgressHandle] | None = None
    _close_bar: Callable[[ProgressHandle], None] | None = None

    @contextmanager
    def progress(self, description: str, total: float | None = None) -> Iterator[ProgressHandle]:
        """A progress bar for the duration of the block."""
        if self._open_bar is None:
            yield _SilentHandle()
            return
        bar = self._open_bar(description, total)
        try:
            yield bar
        finally:
            if self._close_bar is not None:
                self._close_bar(bar)
