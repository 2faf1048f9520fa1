"""The ``local`` executor: a process pool on this machine (the default)."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

from superlab.common.lifeline import die_with
from superlab.data.executors import OnDone

T = TypeVar("T")
R = TypeVar("R")


class LocalExecutor:
    """A process pool of ``workers`` processes (0 = all cores).

    With one worker, or one item, the work runs in this process: no start-up cost, and
    a debugger or a test's monkeypatch sees it. Pools start workers with ``forkserver``
    (``spawn`` where that is missing), never ``fork``: the parent may hold threads
    (progress bars, tokenizers' thread pool) that a forked child would inherit locked.
    Workers exit within moments of the main process's death, however it dies (``die_with``).
    """

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers or os.cpu_count() or 1

    def map(
        self, fn: Callable[[T], R], items: Sequence[T], on_done: OnDone | None = None
    ) -> list[R]:
        """``[fn(x) for x in items]``, in parallel; ``on_done(i, result)`` as each finishes."""
        if self.workers == 1 or len(items) <= 1:
            results = []
            for i, item in enumerate(items):
                results.append(fn(item))
                if on_done is not None:
                    on_done(i, results[-1])
            return results
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        out: list[Any] = [None] * len(items)
        pool = ProcessPoolExecutor(
            min(self.workers, len(items)),
            mp_context=mp.get_context(method),
            initializer=die_with,
            initargs=(os.getpid(),),
        )
        try:
            futures: dict[Future[R], int] = {pool.submit(fn, x): i for i, x in enumerate(items)}
            for fut in as_completed(futures):
                i = futures[fut]
                out[i] = fut.result()
                if on_done is not None:
                    on_done(i, out[i])
        except BaseException:
            # Drop queued work at once; running items finish or die with the pool.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        return out

    def close(self) -> None:
        """Nothing to release: each ``map`` owns its pool."""

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
