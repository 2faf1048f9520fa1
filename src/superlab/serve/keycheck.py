"""The API key check as ASGI middleware, with the request count and the last-resort 500.

Every route but ``PUBLIC`` needs a bearer key from the ``KeyRing`` (``auth``): a missing or
unknown one is a 401 before the route runs, and the found ``ApiKey`` rides in the request
scope's ``state.key`` for the route's rate and quota checks (``admission.admit``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from superlab.serve.admission import Ctx, bearer
from superlab.serve.auth import Denied
from superlab.serve.metrics import Metrics
from superlab.serve.protocol import ApiError

log = logging.getLogger("superlab.serve")
PUBLIC = {"/health"}


class KeyCheck:
    """ASGI middleware: the bearer key (401), the request count by route and status, and
    a 500 in OpenAI's shape for anything unexpected. Plain ASGI rather than Starlette's
    ``BaseHTTPMiddleware``, which passes every streamed chunk through an extra task."""

    def __init__(
        self, app: Any, holder: dict[str, Ctx], metrics: Metrics, routes: set[str]
    ) -> None:
        self.app, self.holder, self.metrics, self.routes = app, holder, metrics, routes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        status = 0

        async def counted(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if path not in PUBLIC:
                key = self.holder["ctx"].keys.find(bearer(Request(scope)))
                scope.setdefault("state", {})["key"] = key
            await self.app(scope, receive, counted)
        except Denied as e:
            err = ApiError(e.status, e.message, None, e.code)
            await JSONResponse(err.body(), status_code=e.status)(scope, receive, counted)
        except Exception:  # a bug, not the client's fault: still OpenAI's shape, logged
            log.exception("unhandled error on %s", path)
            if status == 0:  # nothing sent yet
                err = ApiError(500, "internal server error", None, "internal_error")
                await JSONResponse(err.body(), status_code=500)(scope, receive, counted)
        # Unknown paths share one label, so that random URLs cannot grow the metrics.
        route = path if path in self.routes else "other"
        self.metrics.inc("superlab:http_requests_total", route=route, status=str(status))
