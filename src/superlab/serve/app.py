"""The OpenAI-compatible HTTP server: ``create_app(...)`` returns a FastAPI app.

Routes: ``/v1/models``, ``/v1/completions`` (``echo`` + ``logprobs`` give prompt
log-probabilities), ``/v1/chat/completions``, SSE streaming in OpenAI's chunk format,
``/health``, ``/metrics`` (Prometheus), ``/tokenize``, ``/detokenize``, ``/tokenizer_info``
(vLLM's shapes, so lm-evaluation-harness's ``local-completions`` with its remote tokenizer
grades the server). Every route but ``/health`` needs an API key; ``/docs`` and
``/openapi.json`` exist only with ``serve.docs``.

A generation request is admitted cheapest check first (``admission``), then generated
(``streaming``); the server's state (serving, draining, dead) is ``lifecycle``'s. No
request can raise out of a route: anything unexpected is a 500 in OpenAI's shape.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import Route
from tokenizers import Tokenizer

from superlab.config.recipe import ServeConfig
from superlab.serve import admission as adm
from superlab.serve.admission import Ctx, Reservation
from superlab.serve.auth import ApiKey, Denied, KeyRing
from superlab.serve.engine import Engine
from superlab.serve.lifecycle import Lifecycle
from superlab.serve.limits import BodyLimit
from superlab.serve.metrics import Metrics
from superlab.serve.protocol import (
    CHAT_STOPS,
    CHAT_TEMPLATE,
    ApiError,
    ChatRequest,
    CompletionRequest,
    DetokenizeRequest,
    TokenizeRequest,
    parse,
)
from superlab.serve.safety import Policy
from superlab.serve.sampling import SamplingParams
from superlab.serve.scheduler import Scheduler
from superlab.serve.streaming import (
    Run,
    all_of,
    chat_events,
    chat_response,
    complete_choice,
    completion_events,
    sse,
    usage,
)

log = logging.getLogger("superlab.serve")
PUBLIC = {"/health"}


def create_app(
    model: Any,
    tokenizer: Tokenizer,
    *,
    name: str,
    max_seq_len: int,
    keys: list[ApiKey],
    cfg: ServeConfig | None = None,
    policy: Policy | None = None,
) -> FastAPI:
    """An app serving ``model`` under ``name``; the engine thread starts with the app.

    ``app.state.life`` is its ``Lifecycle``: whoever runs the HTTP server sets its
    ``stop`` hook (``superlab.serve.load.run_server`` does) and calls ``drain``.
    """
    cfg = cfg or ServeConfig()
    metrics = Metrics(name)
    ring = KeyRing(keys)
    policy = policy if policy is not None else Policy.load(cfg.policy)
    life = Lifecycle()
    holder: dict[str, Ctx] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = Engine(model, tokenizer, max_seq_len, cfg.max_batch)
        scheduler = Scheduler(engine, cfg.queue_size, metrics, on_death=life.engine_died)
        pool = ThreadPoolExecutor(cfg.check_workers, thread_name_prefix="superlab-check")
        life.loop, life.scheduler = asyncio.get_running_loop(), scheduler
        chars = adm.longest_token_chars(tokenizer)
        holder["ctx"] = Ctx(
            name, tokenizer, cfg, max_seq_len, ring, policy, metrics, scheduler, life, pool, chars
        )
        # A check builds what it needs at first use (the classifier trains): do it now, so
        # the server starts ready and the first request does not wait for it.
        await asyncio.get_running_loop().run_in_executor(pool, policy.check, "", [])
        try:
            yield
        finally:
            scheduler.fail_all("the server is shutting down", "server_shutdown")
            scheduler.close()
            pool.shutdown(wait=False, cancel_futures=True)

    docs = cfg.docs
    app = FastAPI(
        title="superlab",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.life = life
    app.add_middleware(BodyLimit, max_bytes=cfg.max_body_bytes, metrics=metrics)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, e: ApiError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status)

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, e: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        return JSONResponse(
            ApiError(e.status_code, str(e.detail), None, code).body(), status_code=e.status_code
        )

    routes: set[str] = set()  # filled below, once every route exists
    app.add_middleware(KeyCheck, holder=holder, metrics=metrics, routes=routes)

    @app.get("/health")
    async def health() -> JSONResponse:
        status, body = life.health()
        return JSONResponse(body, status_code=status)

    @app.get("/metrics")
    async def metrics_route() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        ctx = holder["ctx"]
        adm.admit(ctx, request, tokens=False)
        return {
            "object": "list",
            "data": [
                {
                    "id": ctx.name,
                    "object": "model",
                    "created": ctx.created,
                    "owned_by": "superlab",
                    "max_model_len": ctx.max_seq_len,
                }
            ],
        }

    @app.get("/tokenizer_info")
    async def tokenizer_info(request: Request) -> dict[str, Any]:
        ctx = holder["ctx"]
        adm.admit(ctx, request, tokens=False)
        vocab = ctx.tokenizer.get_vocab()
        return {
            "tokenizer_class": "superlab.ByteLevelBPE",
            "eos_token": "<|endoftext|>" if "<|endoftext|>" in vocab else None,
            "bos_token": None,
            "pad_token": "<|pad|>" if "<|pad|>" in vocab else None,
            "unk_token": None,
            "chat_template": CHAT_TEMPLATE,
            "model_max_length": ctx.max_seq_len,
            "vocab_size": ctx.vocab,
        }

    @app.post("/tokenize")
    async def tokenize(request: Request) -> dict[str, Any]:
        ctx = holder["ctx"]
        adm.admit(ctx, request, tokens=False)
        req = parse(TokenizeRequest, await adm.body(ctx, request))
        if (req.prompt is None) == (req.messages is None):
            raise ApiError(400, "give exactly one of prompt or messages", "prompt", "invalid_value")
        text = req.prompt if req.prompt is not None else adm.chat_prompt(req.messages or [])
        adm.check_chars(ctx, len(text), "prompt")
        ids = await adm.encode(ctx, text)
        return {"tokens": ids, "count": len(ids), "max_model_len": ctx.max_seq_len}

    @app.post("/detokenize")
    async def detokenize(request: Request) -> dict[str, Any]:
        ctx = holder["ctx"]
        adm.admit(ctx, request, tokens=False)
        req = parse(DetokenizeRequest, await adm.body(ctx, request))
        bad = [t for t in req.tokens if not 0 <= t < ctx.vocab]
        if bad:
            raise ApiError(
                400, f"tokens: id {bad[0]} is outside 0..{ctx.vocab - 1}", "tokens", "invalid_token"
            )
        return {"prompt": await adm.off_loop(ctx, ctx.tokenizer.decode, req.tokens)}

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        ctx = holder["ctx"]
        key = adm.admit(ctx, request)
        req: CompletionRequest = parse(CompletionRequest, await adm.body(ctx, request))
        adm.check_model(ctx, req.model)
        adm.check_n(ctx, req.n)
        p = adm.params(ctx, req, req.max_tokens, req.logprobs, ())
        prompts = await adm.prompts(ctx, req.prompt)
        if req.stream and len(prompts) != 1:
            raise ApiError(400, "prompt: streaming takes one prompt", "prompt", "invalid_value")
        for text, _ in prompts:
            await adm.check_input(ctx, text, [("user", text)], key)
        adm.check_queue(ctx)
        worst = sum(len(ids) + req.n * p.max_tokens for _, ids in prompts)
        res = Reservation(ctx, key, worst)
        try:
            runs = [
                (i * req.n + j, text, Run(ctx, key, [("user", text)], ids, _nth(p, j), res))
                for i, (text, ids) in enumerate(prompts)
                for j in range(req.n)
            ]
            if req.stream:
                return sse(completion_events([r for _, _, r in runs], req.include_usage, res), res)
            choices = await all_of(
                [_choice_job(run, idx, text, req.echo, req.logprobs) for idx, text, run in runs]
            )
        except BaseException:
            res.settle()
            raise
        res.settle()
        body = {
            "id": f"cmpl-{runs[0][2].id}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": ctx.name,
            "choices": choices,
            "usage": usage([r for _, _, r in runs], [ids for _, ids in prompts]),
        }
        return JSONResponse(body)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        ctx = holder["ctx"]
        key = adm.admit(ctx, request)
        req: ChatRequest = parse(ChatRequest, await adm.body(ctx, request))
        adm.check_model(ctx, req.model)
        adm.check_n(ctx, req.n)
        conversation = [(m.role, m.text()) for m in req.messages]
        adm.check_chars(ctx, sum(len(c) for _, c in conversation), "messages")
        max_tokens = req.max_completion_tokens or req.max_tokens
        top = (req.top_logprobs or 0) if req.logprobs else None
        p = adm.params(ctx, req, max_tokens, top, CHAT_STOPS)
        ids = await adm.encode(ctx, adm.chat_prompt(req.messages))
        adm.check_length(ctx, ids, "messages")
        text = "\n".join(c for _, c in conversation)
        await adm.check_input(ctx, text, conversation, key)
        adm.check_queue(ctx)
        res = Reservation(ctx, key, len(ids) + req.n * p.max_tokens)
        try:
            runs = [Run(ctx, key, conversation, ids, _nth(p, j), res) for j in range(req.n)]
            if req.stream:
                return sse(chat_events(runs, req.include_usage, res), res)
            await all_of([r.drain for r in runs])
        except BaseException:
            res.settle()
            raise
        res.settle()
        return JSONResponse(chat_response(runs))

    routes.update(r.path for r in app.routes if isinstance(r, APIRoute | Route))
    return app


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
                key = self.holder["ctx"].keys.find(adm.bearer(Request(scope)))
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


def _nth(p: SamplingParams, j: int) -> SamplingParams:
    """The j-th choice's settings: with a seed, choice j samples with seed + j."""
    return p if j == 0 or p.seed is None else dataclasses.replace(p, seed=p.seed + j)


def _choice_job(run: Run, index: int, text: str, echo: bool, logprobs: int | None) -> Any:
    return lambda: complete_choice(run, index, text, echo, logprobs)
