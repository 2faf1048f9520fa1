"""Executors run one picklable top-level function over many items: ``map(fn, items, on_done)``.

Results come back in input order whatever order the work finishes in, so the output of a
pipeline does not depend on the executor or the number of workers. ``on_done(i, result)``
is called in the calling process as each item finishes (for progress bars).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")
OnDone = Callable[[int, Any], None]


class Executor(Protocol):
    """Runs ``fn`` over ``items``; results in input order. A context manager."""

    def map(
        self, fn: Callable[[T], R], items: Sequence[T], on_done: OnDone | None = None
    ) -> list[R]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...


def make_executor(kind: str, workers: int) -> Executor:
    """The executor a recipe names, ``local`` or ``ray``; ``workers`` 0 = all cores."""
    if kind == "local":
        from superlab.data.executors.local import LocalExecutor

        return LocalExecutor(workers)
    if kind == "ray":
        from superlab.data.executors.ray import RayExecutor

        return RayExecutor(workers)
    raise ValueError(f"unknown executor {kind!r}; executors are 'local' and 'ray'")


__all__ = ["Executor", "OnDone", "make_executor"]
