"""Request body size limit as ASGI middleware: 413 before the body is read past the limit.

``Content-Length`` over the limit is refused at once; a body sent without one (chunked)
is counted as it arrives and refused as soon as it passes the limit.
"""

from __future__ import annotations

import json
from typing import Any

from superlab.serve.metrics import Metrics
from superlab.serve.protocol import ApiError

Scope = dict[str, Any]


class BodyLimit:
    """Answer 413 in OpenAI's error shape for bodies over ``max_bytes``."""

    def __init__(self, app: Any, max_bytes: int, metrics: Metrics) -> None:
        self.app, self.max_bytes, self.metrics = app, max_bytes, metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        refused = False

        async def counted() -> dict[str, Any]:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    raise _TooLarge
            return message

        started = False

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)
        if refused and not started:
            return

    async def _refuse(self, send: Any) -> None:
        self.metrics.inc("superlab:rejected_requests_total", reason="body_too_large")
        body = json.dumps(
            ApiError(
                413, f"the request body is over {self.max_bytes} bytes", None, "request_too_large"
            ).body()
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    """The body passed the limit while it was being read."""
