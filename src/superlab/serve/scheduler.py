"""The engine's worker thread and its bridge to asyncio request handlers.

All model work (decode steps, prompt scoring) runs on one thread, in order; handlers on
the event loop submit work and read their request's ``Delta``s from an ``asyncio.Queue``.
The number of requests waiting to join the batch is bounded: past ``queue_size`` a
submit raises ``QueueFull`` (the server answers 429).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from typing import Any

from superlab.serve.engine import Delta, Engine, GenRequest, TokenLogprob
from superlab.serve.metrics import Metrics


class QueueFull(Exception):
    """More requests are waiting than the queue holds."""


class Scheduler:
    """Runs an ``Engine`` on a daemon thread; ``stream`` yields one request's Deltas."""

    def __init__(self, engine: Engine, queue_size: int, metrics: Metrics) -> None:
        self.engine, self.queue_size, self.metrics = engine, queue_size, metrics
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._outs: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Queue[Delta]]] = {}
        self._waiting = 0  # submitted, not yet admitted to the batch
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="superlab-engine", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        return self._waiting

    def close(self) -> None:
        self._stop.set()
        self._inbox.put(("wake", None))
        self._thread.join(timeout=5)

    async def stream(self, req: GenRequest) -> AsyncIterator[Delta]:
        """Submit ``req`` and yield its Deltas; leaving early (cancel, close) aborts it."""
        with self._lock:
            if self._waiting >= self.queue_size:
                raise QueueFull(f"{self._waiting} requests already waiting")
            self._waiting += 1
        out: asyncio.Queue[Delta] = asyncio.Queue()
        self._outs[req.id] = (asyncio.get_running_loop(), out)
        self._inbox.put(("submit", req))
        finished = False
        try:
            while True:
                delta = await out.get()
                yield delta
                if delta.finish_reason is not None:
                    finished = True
                    return
        finally:
            if not finished:
                self._inbox.put(("abort", req.id))

    async def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the engine thread between steps (prompt scoring) and await it."""
        fut: Future[Any] = Future()
        self._inbox.put(("call", (fn, fut)))
        return await asyncio.wrap_future(fut)

    async def score(self, ids: list[int], top_n: int) -> list[TokenLogprob | None]:
        return await self.call(lambda: self.engine.score(ids, top_n))

    def _run(self) -> None:
        while not self._stop.is_set():
            block = self.engine.idle
            try:
                kind, item = self._inbox.get(timeout=0.1) if block else self._inbox.get_nowait()
            except queue.Empty:
                kind, item = "none", None
            self._handle(kind, item)
            while True:  # drain everything else that arrived
                try:
                    kind, item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                self._handle(kind, item)
            if not self.engine.idle:
                self._step()

    def _handle(self, kind: str, item: Any) -> None:
        if kind == "submit":
            self.engine.submit(item)
        elif kind == "abort":
            self.engine.abort(item)
        elif kind == "call":
            fn, fut = item
            try:
                fut.set_result(fn())
            except Exception as e:  # handed to the awaiting handler, which answers it
                fut.set_exception(e)

    def _step(self) -> None:
        pending_before = {r.id for r in self.engine.pending}
        deltas = self.engine.step()
        pending_after = {r.id for r in self.engine.pending}
        with self._lock:
            self._waiting -= len(pending_before - pending_after)
        self.metrics.gauges["vllm:num_requests_running"] = len(self.engine.running)
        self.metrics.gauges["vllm:num_requests_waiting"] = self._waiting
        for d in deltas:
            target = self._outs.get(d.request_id)
            if d.finish_reason is not None:
                self._outs.pop(d.request_id, None)
            if target is not None:
                loop, out = target
                loop.call_soon_threadsafe(out.put_nowait, d)


def now() -> float:
    return time.perf_counter()
