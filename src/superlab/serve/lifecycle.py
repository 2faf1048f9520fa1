"""The server's life: serving, draining (SIGTERM) or dead (the engine loop stopped).

``/health`` answers 200 only while serving; draining and dead answer 503 with the reason,
so a load balancer stops sending. A drain refuses new generation requests (503
``server_shutting_down``), lets the ones in flight finish until ``drain_timeout_s``, then
ends what is left with a final error (``server_shutdown``) and asks the HTTP server to
stop. When the engine dies every open request fails at once (``engine_dead``) and the
server stops with exit status ``ENGINE_DEAD_EXIT`` so that a supervisor restarts it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Literal

from superlab.serve.protocol import ApiError
from superlab.serve.scheduler import Scheduler

# sysexits.h's EX_SOFTWARE ("internal software error"): the engine loop raised.
ENGINE_DEAD_EXIT = 70

State = Literal["serving", "draining", "dead"]


class Lifecycle:
    """What state the server is in, and the hooks that stop it."""

    def __init__(self) -> None:
        self.state: State = "serving"
        self.reason = ""
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: Callable[[], None] | None = None  # set by whoever runs the HTTP server
        self.scheduler: Scheduler | None = None

    def health(self) -> tuple[int, dict[str, str]]:
        if self.state == "serving":
            return 200, {"status": "ok"}
        return 503, {"status": self.state, "reason": self.reason}

    def check_open(self) -> None:
        """503 for a new request once the server is draining or dead."""
        if self.state == "draining":
            raise ApiError(503, "the server is shutting down", None, "server_shutting_down")
        if self.state == "dead":
            raise ApiError(503, f"the engine stopped: {self.reason}", None, "engine_dead")

    def engine_died(self, reason: str) -> None:
        """Called on the engine thread when its loop raised: mark dead, stop the server."""
        self.state, self.reason = "dead", reason
        if self.loop is not None and self.stop is not None:
            self.loop.call_soon_threadsafe(self.stop)

    async def drain(self, timeout_s: float) -> None:
        """Refuse new requests, wait up to ``timeout_s`` for those in flight, end the rest."""
        if self.state == "serving":
            self.state, self.reason = "draining", "shutting down (SIGTERM)"
        sched = self.scheduler
        deadline = time.monotonic() + timeout_s
        while sched is not None and sched.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if sched is not None and sched.in_flight:
            sched.fail_all(
                f"the server shut down before this request finished ({timeout_s:g} s drain)",
                "server_shutdown",
            )
            await asyncio.sleep(0.1)  # let the streams write their final error event
        if self.stop is not None:
            self.stop()
