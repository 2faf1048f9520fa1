"""The ``ray`` executor: the same per-shard functions as Ray tasks (``ray`` imported only here).

On a cluster, start Ray first (``ray start``, or ``RAY_ADDRESS``) and this joins it; there
``workers`` (when not 0) caps the tasks in flight and never sizes the cluster (Ray refuses
``num_cpus`` when joining). Otherwise it starts a local Ray with ``workers`` CPUs and shuts
it down on ``close``. Every worker must be able to import ``superlab`` and read the inputs
and the run directory (a shared filesystem).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from superlab.common import StageError
from superlab.common.deps import require
from superlab.data.executors import OnDone

T = TypeVar("T")
R = TypeVar("R")


def _import_ray() -> Any:
    return require(
        "ray", "data.executor 'ray'", "ray", instead="data.executor: local", error=StageError
    )


class RayExecutor:
    """Each item is one Ray task; results are gathered in input order."""

    def __init__(self, workers: int = 0) -> None:
        self.ray = _import_ray()
        self.workers = workers
        self._started = False
        if not self.ray.is_initialized() and not self._join():
            self.ray.init(
                num_cpus=workers or None,
                include_dashboard=False,
                logging_level=logging.WARNING,
            )
            self._started = True

    def _join(self) -> bool:
        """Connect to a running cluster (``RAY_ADDRESS``, else one ``ray start`` left here)."""
        if os.environ.get("RAY_ADDRESS"):  # a named cluster: not finding it is Ray's error
            self.ray.init(logging_level=logging.WARNING)
            return True
        try:
            self.ray.init(address="auto", logging_level=logging.WARNING)
        except ConnectionError:  # none running here
            return False
        return True

    def map(
        self, fn: Callable[[T], R], items: Sequence[T], on_done: OnDone | None = None
    ) -> list[R]:
        """``[fn(x) for x in items]`` as Ray tasks; ``on_done(i, result)`` as each finishes."""
        ray = self.ray
        task = ray.remote(fn)
        limit = self.workers or len(items)  # tasks in flight at once
        todo = iter(enumerate(items))
        pending: dict[Any, int] = {}

        def submit() -> None:
            for i, x in todo:
                pending[task.remote(x)] = i
                if len(pending) >= limit:
                    return

        out: list[Any] = [None] * len(items)
        try:
            submit()
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                i = pending.pop(done[0])
                # Ray re-raises a task's exception as an instance of its own class too,
                # so a StageError from a worker reaches the caller as a StageError.
                out[i] = ray.get(done[0])
                if on_done is not None:
                    on_done(i, out[i])
                submit()
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        return out

    def close(self) -> None:
        """Shut Ray down if this executor started it."""
        if self._started:
            self.ray.shutdown()
            self._started = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
