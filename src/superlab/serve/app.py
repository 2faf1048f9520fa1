"""The OpenAI-compatible HTTP server: ``create_app(...)`` returns a FastAPI app.

Routes: ``/v1/models``, ``/v1/completions`` (``echo`` + ``logprobs`` give prompt
log-probabilities), ``/v1/chat/completions``, SSE streaming in OpenAI's chunk format,
``/health``, ``/metrics`` (Prometheus), ``/tokenize``, ``/detokenize``, ``/tokenizer_info``
(vLLM's shapes, so lm-evaluation-harness's ``local-completions`` with its remote tokenizer
grades the server). Every route but ``/health`` needs an API key; ``/docs`` and
``/openapi.json`` exist only with ``serve.docs``.

This module is the routes only. The key check is ``keycheck``'s middleware; a request is
admitted cheapest check first (``admission``), a generation request is handled (runs,
output checks) by ``handling`` and shaped by ``responses``; the server's state (serving,
draining, dead) is ``lifecycle``'s. No request can raise out of a route: anything
unexpected is a 500 in OpenAI's shape.
"""

from __future__ import annotations

import asyncio
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
from superlab.serve import handling, images
from superlab.serve.admission import Ctx
from superlab.serve.auth import ApiKey, KeyRing
from superlab.serve.engine import Engine
from superlab.serve.keycheck import KeyCheck
from superlab.serve.lifecycle import Lifecycle
from superlab.serve.limits import BodyLimit
from superlab.serve.metrics import Metrics
from superlab.serve.protocol import (
    CHAT_TEMPLATE,
    ApiError,
    ChatRequest,
    CompletionRequest,
    DetokenizeRequest,
    TokenizeRequest,
    parse,
)
from superlab.serve.safety import Policy
from superlab.serve.scheduler import Scheduler


def create_app(
    model: Any,
    tokenizer: Tokenizer,
    *,
    name: str,
    max_seq_len: int,
    keys: list[ApiKey],
    cfg: ServeConfig | None = None,
    policy: Policy | None = None,
    cache_namespace: str | None = None,
) -> FastAPI:
    """An app serving ``model`` under ``name``; the engine thread starts with the app.

    ``cache_namespace`` names the weights for the prefix cache (``Engine``); None: a fresh
    one, so no cached block outlives this app.

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
        engine = Engine(
            model,
            tokenizer,
            max_seq_len,
            cfg.max_batch,
            prefill_tokens=cfg.prefill_tokens,
            prefill_share=cfg.prefill_share,
            kv_block_size=cfg.kv_block_size,
            kv_cache_blocks=cfg.kv_cache_blocks,
            prefix_caching=cfg.prefix_caching,
            cache_namespace=cache_namespace,
        )
        scheduler = Scheduler(engine, cfg.queue_size, metrics, on_death=life.engine_died)
        pool = ThreadPoolExecutor(cfg.check_workers, thread_name_prefix="superlab-check")
        life.loop, life.scheduler = asyncio.get_running_loop(), scheduler
        chars = adm.longest_token_chars(tokenizer)
        holder["ctx"] = Ctx(
            name, tokenizer, cfg, max_seq_len, ring, policy, metrics, scheduler, life, pool, chars
        )
        holder["ctx"].vision = getattr(getattr(model, "cfg", None), "vision", None)
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
        if req.messages is not None:  # the chat prompt's ids, image placeholders included
            image_parts = images.parts(req.messages)
            images.check(ctx, image_parts)
            ids = await images.chat_ids(ctx, req.messages, len(image_parts))
        else:
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
        return await handling.complete(
            ctx, key, parse(CompletionRequest, await adm.body(ctx, request))
        )

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        ctx = holder["ctx"]
        key = adm.admit(ctx, request)
        return await handling.chat(ctx, key, parse(ChatRequest, await adm.body(ctx, request)))

    routes.update(r.path for r in app.routes if isinstance(r, APIRoute | Route))
    return app
