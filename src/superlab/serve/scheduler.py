"""The engine's worker thread and its bridge to asyncio request handlers.

All model work (decode steps, prompt scoring) runs on one thread, in order; handlers on
the event loop submit work and read their request's ``Delta``s from an ``asyncio.Queue``.
The number of requests waiting to join the batch is bounded: past ``queue_size`` a
submit raises ``QueueFull`` (the server answers 429).

If the engine loop itself raises (a failed forward over the running batch, a bug), the
scheduler is dead: every open request fails at once with ``Unavailable`` (503), new ones
are refused, and ``on_death(reason)`` tells the server, which exits non-zero so that its
supervisor restarts it (docs/serve.md, "When the engine dies"). ``fail_all`` ends every
open request the same way when a drain runs past its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
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


class Unavailable(Exception):
    """The engine cannot answer: it died, or the server is shutting down (HTTP 503)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message, self.code = message, code


class Scheduler:
    """Runs an ``Engine`` on a daemon thread; ``stream`` yields one request's Deltas."""

    def __init__(
        self,
        engine: Engine,
        queue_size: int,
        metrics: Metrics,
        on_death: Callable[[str], None] | None = None,
    ) -> None:
        self.engine, self.queue_size, self.metrics = engine, queue_size, metrics
        self.on_death = on_death
        self.dead: str | None = None  # why the engine loop stopped, once it has
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._outs: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Queue[Any]]] = {}
        self._waiting = 0  # submitted, not yet admitted to the batch
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="superlab-engine", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def in_flight(self) -> int:
        """Requests submitted and not yet finished."""
        return len(self._outs)

    def fail_all(self, message: str, code: str) -> None:
        """End every open request now with ``Unavailable(message, code)`` (and abort it)."""
        with self._lock:
            outs, self._outs = self._outs, {}
        for request_id, (loop, out) in outs.items():
            self._inbox.put(("abort", request_id))
            with contextlib.suppress(RuntimeError):  # the event loop already closed
                loop.call_soon_threadsafe(out.put_nowait, Unavailable(message, code))

    def close(self) -> None:
        self._stop.set()
        self._inbox.put(("wake", None))
        self._thread.join(timeout=5)

    async def stream(self, req: GenRequest) -> AsyncIterator[Delta]:
        """Submit ``req`` and yield its Deltas; leaving early (cancel, close) aborts it.

        Deltas that piled up while the reader was busy come joined into one, so a slow
        reader (an output check under load) does one check for many tokens.
        """
        out: asyncio.Queue[Any] = asyncio.Queue()
        with self._lock:
            if self.dead is not None:
                raise Unavailable(f"the engine stopped: {self.dead}", "engine_dead")
            if self._waiting >= self.queue_size:
                raise QueueFull(f"{self._waiting} requests already waiting")
            self._waiting += 1
            self._outs[req.id] = (asyncio.get_running_loop(), out)
        self._inbox.put(("submit", req))
        finished = False
        try:
            while True:
                items = [await out.get()]
                while not out.empty() and isinstance(items[-1], Delta):
                    if items[-1].finish_reason is not None:
                        break
                    items.append(out.get_nowait())
                if isinstance(items[-1], Unavailable):
                    finished = True  # already aborted by whoever failed it
                    raise items[-1]
                delta = _join(items)
                yield delta
                if delta.finish_reason is not None:
                    finished = True
                    return
        finally:
            if not finished:
                self._inbox.put(("abort", req.id))

    async def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the engine thread between steps (prompt scoring) and await it."""
        if self.dead is not None:
            raise Unavailable(f"the engine stopped: {self.dead}", "engine_dead")
        fut: Future[Any] = Future()
        self._inbox.put(("call", (fn, fut)))
        return await asyncio.wrap_future(fut)

    async def score(self, ids: list[int], top_n: int) -> list[TokenLogprob | None]:
        return await self.call(lambda: self.engine.score(ids, top_n))

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as e:  # the loop's death must reach every client
            self._die(f"{type(e).__name__}: {e}")

    def _die(self, reason: str) -> None:
        with self._lock:
            self.dead = reason
        self.fail_all(f"the engine stopped: {reason}", "engine_dead")
        while True:  # calls that were waiting for the engine fail too
            try:
                kind, item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if kind == "call":
                item[1].set_exception(Unavailable(f"the engine stopped: {reason}", "engine_dead"))
        if self.on_death is not None:
            self.on_death(reason)

    def _loop(self) -> None:
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
            if item.id in self._outs:  # not failed (fail_all) while it sat in the inbox
                self.engine.submit(item)
            else:
                with self._lock:
                    self._waiting -= 1
        elif kind == "abort":
            self.engine.abort(item)
        elif kind == "call":
            fn, fut = item
            try:
                fut.set_result(fn())
            except Exception as e:  # handed to the awaiting handler, which answers it
                fut.set_exception(e)

    def publish_stats(self) -> None:
        """Copy the engine's cache and step counters (``Engine.stats``) into the metrics."""
        stats = self.engine.stats()
        for key, (name, total) in STATS_METRICS.items():
            if total:
                self.metrics.set(name, float(stats[key]))
            else:
                self.metrics.gauges[name] = float(stats[key])

    def _step(self) -> None:
        pending_before = {r.id for r in self.engine.pending}
        deltas = self.engine.step()
        pending_after = {r.id for r in self.engine.pending}
        with self._lock:
            self._waiting -= len(pending_before - pending_after)
        self.metrics.gauges["vllm:num_requests_running"] = self.engine.n_running
        self.metrics.gauges["vllm:num_requests_waiting"] = self._waiting
        self.publish_stats()
        for d in deltas:
            with self._lock:
                target = self._outs.get(d.request_id)
                if d.finish_reason is not None:
                    self._outs.pop(d.request_id, None)
            if target is not None:
                loop, out = target
                loop.call_soon_threadsafe(out.put_nowait, d)


# Engine.stats() name -> (metric, counter: a running total rather than a gauge).
STATS_METRICS = {
    "prefix_cache_queries": ("vllm:prefix_cache_queries_total", True),
    "prefix_cache_hits": ("vllm:prefix_cache_hits_total", True),
    "preemptions": ("vllm:num_preemptions_total", True),
    "prefix_cache_hit_rate": ("superlab:prefix_cache_hit_rate", False),
    "kv_blocks_used": ("superlab:kv_blocks_used", False),
    "kv_blocks_free": ("superlab:kv_blocks_free", False),
    "prefill_tokens_last_step": ("superlab:step_prefill_tokens", False),
    "decode_tokens_last_step": ("superlab:step_decode_tokens", False),
}


def _join(deltas: list[Delta]) -> Delta:
    """One Delta for consecutive Deltas of one request (the last one's counts and end)."""
    if len(deltas) == 1:
        return deltas[0]
    last = deltas[-1]
    return Delta(
        last.request_id,
        "".join(d.text for d in deltas),
        [t for d in deltas for t in d.token_ids],
        [lp for d in deltas for lp in d.logprobs],
        last.finish_reason,
        last.prompt_tokens,
        last.completion_tokens,
        last.error,
    )


def now() -> float:
    return time.perf_counter()
