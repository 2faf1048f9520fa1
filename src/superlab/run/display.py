"""What the user sees while a run goes: a rich progress display and console log lines."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from superlab.common import StageContext


class _Bar:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress, self.task = progress, task

    def advance(self, n: float = 1) -> None:
        self._progress.advance(self.task, n)

    def update(self, *, total: float | None = None, description: str | None = None) -> None:
        kwargs: dict[str, object] = {}
        if total is not None:
            kwargs["total"] = total
        if description is not None:
            kwargs["description"] = f"  {description}"
        self._progress.update(self.task, **kwargs)  # type: ignore[arg-type]


class Display:
    """Progress bars and INFO log lines on the console; silent when ``quiet``."""

    def __init__(self, console: Console | None = None, quiet: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet

    @contextmanager
    def logging_to_console(self, log: logging.Logger) -> Iterator[None]:
        """Echo INFO and above of ``log`` on the console while the block runs."""
        if self.quiet:
            yield
            return
        handler = RichHandler(console=self.console, show_path=False, markup=False)
        handler.setLevel(logging.INFO)
        log.addHandler(handler)
        try:
            yield
        finally:
            log.removeHandler(handler)

    @contextmanager
    def stage(self, name: str, ctx: StageContext) -> Iterator[None]:
        """Show the stage's progress bars while the block runs."""
        if self.quiet:
            yield
            return
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )

        def open_bar(description: str, total: float | None) -> _Bar:
            return _Bar(progress, progress.add_task(f"  {description}", total=total))

        def close_bar(bar: _Bar) -> None:
            task = progress.tasks[[t.id for t in progress.tasks].index(bar.task)]
            if task.total is None:
                progress.update(bar.task, total=task.completed or 1, completed=task.completed or 1)

        ctx._open_bar, ctx._close_bar = open_bar, close_bar  # type: ignore[assignment]
        with progress:
            yield
