"""The OpenAI-compatible HTTP server: ``create_app(...)`` returns a FastAPI app.

Routes: ``/v1/models``, ``/v1/completions`` (``echo`` + ``logprobs`` give prompt
log-probabilities), ``/v1/chat/completions``, SSE streaming in OpenAI's chunk format,
``/health``, ``/metrics`` (Prometheus), ``/tokenize``, ``/detokenize``, ``/tokenizer_info``
(vLLM's shapes, so lm-evaluation-harness's ``local-completions`` with its remote tokenizer
grades the server). Every route but ``/health`` needs an API key.

A generation request goes: key (401) and its limits (429) -> body size (413) -> JSON and
fields (400) -> input safety check (400 ``content_policy_violation``) -> the bounded
queue (429) -> the engine, each piece of output checked by the policy before it is
released (cut with ``finish_reason: content_filter``) -> usage charged to the key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from tokenizers import Tokenizer

from superlab.config.recipe import ServeConfig
from superlab.serve.auth import ApiKey, Denied, KeyRing
from superlab.serve.engine import Delta, Engine, GenRequest, TokenLogprob
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
    render_chat,
)
from superlab.serve.safety import Policy, Verdict
from superlab.serve.sampling import SamplingParams
from superlab.serve.scheduler import QueueFull, Scheduler

log = logging.getLogger("superlab.serve")
PUBLIC = {"/health"}


@dataclass
class Ctx:
    """What the routes share."""

    name: str
    tokenizer: Tokenizer
    cfg: ServeConfig
    max_seq_len: int
    keys: KeyRing
    policy: Policy
    metrics: Metrics
    scheduler: Scheduler
    created: int = field(default_factory=lambda: int(time.time()))


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
    """An app serving ``model`` under ``name``; the engine thread starts with the app."""
    cfg = cfg or ServeConfig()
    metrics = Metrics(name)
    ring = KeyRing(keys)
    policy = policy if policy is not None else Policy.load(cfg.policy)
    holder: dict[str, Ctx] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = Engine(model, tokenizer, max_seq_len, cfg.max_batch)
        scheduler = Scheduler(engine, cfg.queue_size, metrics)
        holder["ctx"] = Ctx(name, tokenizer, cfg, max_seq_len, ring, policy, metrics, scheduler)
        try:
            yield
        finally:
            scheduler.close()

    app = FastAPI(title="superlab", lifespan=lifespan)
    app.add_middleware(BodyLimit, max_bytes=cfg.max_body_bytes, metrics=metrics)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, e: ApiError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status)

    @app.middleware("http")
    async def _auth_and_count(request: Request, call_next: Any) -> Response:
        path = request.url.path
        try:
            if path not in PUBLIC:
                ctx = holder["ctx"]
                token = _bearer(request)
                request.state.key = ctx.keys.find(token)
            response = await call_next(request)
        except Denied as e:
            response = JSONResponse(
                ApiError(e.status, e.message, None, e.code).body(), status_code=e.status
            )
        metrics.inc("superlab:http_requests_total", route=path, status=str(response.status_code))
        return response

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics_route() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        ctx = holder["ctx"]
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
    async def tokenizer_info() -> dict[str, Any]:
        ctx = holder["ctx"]
        vocab = ctx.tokenizer.get_vocab()
        return {
            "tokenizer_class": "superlab.ByteLevelBPE",
            "eos_token": "<|endoftext|>" if "<|endoftext|>" in vocab else None,
            "bos_token": None,
            "pad_token": "<|pad|>" if "<|pad|>" in vocab else None,
            "unk_token": None,
            "chat_template": CHAT_TEMPLATE,
            "model_max_length": ctx.max_seq_len,
            "vocab_size": ctx.tokenizer.get_vocab_size(),
        }

    @app.post("/tokenize")
    async def tokenize(request: Request) -> dict[str, Any]:
        ctx = holder["ctx"]
        req = parse(TokenizeRequest, await _json(request))
        if (req.prompt is None) == (req.messages is None):
            raise ApiError(400, "give exactly one of prompt or messages", "prompt")
        text = req.prompt if req.prompt is not None else _chat_prompt(req.messages or [])
        ids = ctx.tokenizer.encode(text).ids
        return {"tokens": ids, "count": len(ids), "max_model_len": ctx.max_seq_len}

    @app.post("/detokenize")
    async def detokenize(request: Request) -> dict[str, Any]:
        ctx = holder["ctx"]
        req = parse(DetokenizeRequest, await _json(request))
        vocab = ctx.tokenizer.get_vocab_size()
        bad = [t for t in req.tokens if not 0 <= t < vocab]
        if bad:
            raise ApiError(400, f"tokens: id {bad[0]} is outside 0..{vocab - 1}", "tokens")
        return {"prompt": ctx.tokenizer.decode(req.tokens)}

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        ctx = holder["ctx"]
        key = _admit(ctx, request)
        req: CompletionRequest = parse(CompletionRequest, await _json(request))
        _check_model(ctx, req.model)
        prompts = _prompts(ctx, req.prompt)
        for text, _ in prompts:
            _check_input(ctx, text, [text], key)
        params = _params(ctx, req, req.max_tokens, req.logprobs, ())
        _check_queue(ctx)
        if req.stream:
            if len(prompts) != 1:
                raise ApiError(400, "prompt: streaming takes one prompt", "prompt")
            text, ids = prompts[0]
            gen = _CompletionStream(ctx, key, text, ids, params, req.include_usage)
            return _sse(gen.events())
        choices, usage = [], {"prompt_tokens": 0, "completion_tokens": 0}
        for i, (text, ids) in enumerate(prompts):
            choice, n_prompt, n_gen = await _complete(ctx, key, i, text, ids, params, req)
            choices.append(choice)
            usage["prompt_tokens"] += n_prompt
            usage["completion_tokens"] += n_gen
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return JSONResponse(
            {
                "id": f"cmpl-{uuid.uuid4().hex}",
                "object": "text_completion",
                "created": int(time.time()),
                "model": ctx.name,
                "choices": choices,
                "usage": usage,
            }
        )

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        ctx = holder["ctx"]
        key = _admit(ctx, request)
        req: ChatRequest = parse(ChatRequest, await _json(request))
        _check_model(ctx, req.model)
        user_texts = [m.text() for m in req.messages if m.role != "assistant"]
        _check_input(ctx, "\n".join(user_texts), user_texts, key)
        prompt = _chat_prompt(req.messages)
        ids = ctx.tokenizer.encode(prompt).ids
        _check_length(ctx, ids)
        max_tokens = req.max_completion_tokens or req.max_tokens
        top = req.top_logprobs if req.logprobs else None
        params = _params(ctx, req, max_tokens, top, CHAT_STOPS)
        _check_queue(ctx)
        stream = _ChatStream(ctx, key, user_texts, ids, params, req.include_usage)
        if req.stream:
            return _sse(stream.events())
        return JSONResponse(await stream.collect())

    return app


# ---------------------------------------------------------------- request steps


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _admit(ctx: Ctx, request: Request) -> ApiKey:
    key: ApiKey = request.state.key
    try:
        ctx.keys.admit(key)
    except Denied as e:
        ctx.metrics.inc("superlab:rejected_requests_total", reason=e.code)
        raise ApiError(e.status, e.message, None, e.code) from None
    return key


async def _json(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ApiError(400, f"the body is not valid JSON: {e}", None, "invalid_json") from None


def _check_model(ctx: Ctx, model: str | None) -> None:
    if model is not None and model != ctx.name:
        raise ApiError(
            404,
            f"model: {model!r} is not served here ({ctx.name!r} is)",
            "model",
            "model_not_found",
        )


def _check_queue(ctx: Ctx) -> None:
    """429 before a response starts when the queue is already full."""
    if ctx.scheduler.waiting >= ctx.cfg.queue_size:
        ctx.metrics.inc("superlab:rejected_requests_total", reason="queue_full")
        raise ApiError(
            429, f"the server is busy: {ctx.scheduler.waiting} requests waiting", None, "queue_full"
        )


def _chat_prompt(messages: list[Any]) -> str:
    return render_chat([{"role": m.role, "content": m.text()} for m in messages])


def _check_length(ctx: Ctx, ids: list[int]) -> None:
    engine = ctx.scheduler.engine
    try:
        engine.check_prompt(ids)
    except ValueError as e:
        raise ApiError(400, str(e), "prompt", "context_length_exceeded") from None


def _prompts(ctx: Ctx, prompt: Any) -> list[tuple[str, list[int]]]:
    """(text, ids) for each prompt of a completions request."""
    if isinstance(prompt, str):
        items: list[Any] = [prompt]
    elif prompt and all(isinstance(p, int) for p in prompt):
        items = [prompt]
    else:
        items = list(prompt)
    if not items:
        raise ApiError(400, "prompt: empty", "prompt")
    vocab = ctx.tokenizer.get_vocab_size()
    out = []
    for item in items:
        if isinstance(item, str):
            ids = ctx.tokenizer.encode(item).ids or [ctx.scheduler.engine.eos_id or 0]
            out.append((item, ids))
        else:
            if any(not 0 <= t < vocab for t in item):
                raise ApiError(400, f"prompt: token ids must be in 0..{vocab - 1}", "prompt")
            out.append((ctx.tokenizer.decode(item), list(item)))
        _check_length(ctx, out[-1][1])
    return out


def _params(
    ctx: Ctx, req: Any, max_tokens: int | None, logprobs: int | None, extra_stops: tuple
) -> SamplingParams:
    n = ctx.cfg.default_max_tokens if max_tokens is None else max_tokens
    if n > ctx.cfg.max_tokens_limit:
        raise ApiError(
            400,
            f"max_tokens: {n} is over this server's limit of {ctx.cfg.max_tokens_limit}",
            "max_tokens",
            "max_tokens_too_large",
        )
    return SamplingParams(
        max_tokens=n,
        temperature=req.temperature,
        top_k=req.top_k,
        top_p=req.top_p,
        repetition_penalty=req.repetition_penalty,
        stop=req.stops() + extra_stops,
        seed=req.seed,
        logprobs=logprobs,
    )


def _refusal(ctx: Ctx, stage: str, verdict: Verdict, key: ApiKey, text: str) -> None:
    """Count and log a refusal; the user's text only when the policy says so."""
    cat = verdict.category or "unknown"
    ctx.metrics.inc("superlab:refusals_total", category=cat, stage=stage)
    extra = f" text={text!r}" if ctx.policy.log_user_text else ""
    log.warning(
        "refused %s: category=%s floor=%s key=%s%s", stage, cat, verdict.floor, key.name, extra
    )


def _check_input(ctx: Ctx, text: str, user_texts: list[str], key: ApiKey) -> None:
    verdict = ctx.policy.check(text, user_texts)
    if verdict.action == "log" and verdict.category:
        ctx.metrics.inc("superlab:policy_flags_total", category=verdict.category, stage="input")
    if verdict.refused:
        _refusal(ctx, "input", verdict, key, text)
        assert verdict.category is not None
        from superlab.serve.safety import CATEGORIES

        raise ApiError(
            400,
            f"the request was refused by the safety policy: {verdict.category} "
            f"({CATEGORIES.get(verdict.category, '')})",
            "prompt",
            "content_policy_violation",
        )


def _sse(events: AsyncIterator[dict[str, Any] | str]) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        async for e in events:
            yield f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n"

    return StreamingResponse(body(), media_type="text/event-stream")


# ----------------------------------------------------------------- generation


class _Run:
    """One generation: the engine's Deltas, the output check before release, the metrics."""

    def __init__(
        self, ctx: Ctx, key: ApiKey, user_texts: list[str], ids: list[int], p: SamplingParams
    ) -> None:
        self.ctx, self.key, self.user_texts, self.ids, self.p = ctx, key, user_texts, ids, p
        self.id = uuid.uuid4().hex
        self.released = ""
        self.tokens: list[int] = []
        self.logprobs: list[TokenLogprob] = []
        self.finish: str | None = None
        self.n_gen = 0
        self.start = time.perf_counter()
        self.first: float | None = None

    async def pieces(self) -> AsyncIterator[tuple[str, list[TokenLogprob]]]:
        """Released text pieces (each checked), until the sequence finishes or is cut."""
        ctx = self.ctx
        req = GenRequest(self.id, self.ids, self.p)
        try:
            async with asyncio.timeout(ctx.cfg.request_timeout_s):
                try:
                    deltas = ctx.scheduler.stream(req)
                    async for d in deltas:
                        piece = self._take(d)
                        if piece is None:  # cut by the policy
                            await deltas.aclose()
                            break
                        if piece or d.logprobs:
                            yield piece, d.logprobs
                        if d.finish_reason is not None:
                            break
                except QueueFull as e:
                    ctx.metrics.inc("superlab:rejected_requests_total", reason="queue_full")
                    raise ApiError(429, f"the server is busy: {e}", None, "queue_full") from None
        except TimeoutError:
            ctx.metrics.inc("superlab:rejected_requests_total", reason="timeout")
            raise ApiError(
                408, f"the request ran past {ctx.cfg.request_timeout_s} s", None, "timeout"
            ) from None
        self._done()

    def _take(self, d: Delta) -> str | None:
        now = time.perf_counter()
        if d.token_ids and self.first is None:
            self.first = now
            self.ctx.metrics.observe("vllm:time_to_first_token_seconds", now - self.start)
        self.n_gen = d.completion_tokens
        self.tokens += d.token_ids
        piece = d.text
        if piece:
            verdict = self.ctx.policy.check(self.released + piece, self.user_texts)
            if verdict.refused:
                _refusal(self.ctx, "output", verdict, self.key, self.released + piece)
                self.finish = "content_filter"
                return None
        self.released += piece
        self.logprobs += d.logprobs
        if d.finish_reason is not None:
            self.finish = {"eos": "stop", "abort": "abort"}.get(d.finish_reason, d.finish_reason)
        return piece

    def _done(self) -> None:
        m, end = self.ctx.metrics, time.perf_counter()
        m.observe("vllm:e2e_request_latency_seconds", end - self.start)
        if self.first is not None and self.n_gen > 1:
            m.observe("vllm:time_per_output_token_seconds", (end - self.first) / (self.n_gen - 1))
        m.inc("vllm:prompt_tokens_total", len(self.ids))
        m.inc("vllm:generation_tokens_total", self.n_gen)
        m.inc("vllm:request_success_total", finished_reason=self.finish or "length")
        self.ctx.keys.charge(self.key, len(self.ids) + self.n_gen)


def _tok_str(tokenizer: Tokenizer, token: int) -> str:
    return tokenizer.decode([token], skip_special_tokens=False)


def _completion_logprobs(
    tokenizer: Tokenizer, lps: list[TokenLogprob | None], ids: list[int], offset0: int = 0
) -> dict[str, Any]:
    """OpenAI's legacy completions ``logprobs`` object for ``ids``."""
    tokens, token_lps, tops, offsets = [], [], [], []
    pos = offset0
    for tok, lp in zip(ids, lps, strict=True):
        s = _tok_str(tokenizer, tok)
        tokens.append(s)
        offsets.append(pos)
        pos += len(s)
        token_lps.append(None if lp is None else lp.logprob)
        tops.append(None if lp is None else {_tok_str(tokenizer, t): v for t, v in lp.top})
    return {
        "tokens": tokens,
        "token_logprobs": token_lps,
        "top_logprobs": tops,
        "text_offset": offsets,
    }


async def _complete(
    ctx: Ctx, key: ApiKey, index: int, text: str, ids: list[int], p: SamplingParams, req: Any
) -> tuple[dict[str, Any], int, int]:
    """One non-streamed completions choice, with echo and logprobs as asked."""
    run = _Run(ctx, key, [text], ids, p)
    if p.max_tokens > 0:
        async for _ in run.pieces():
            pass
    else:
        run.finish = "length"
        ctx.keys.charge(key, len(ids))
    out_text = (text if req.echo else "") + run.released
    logprobs = None
    if req.logprobs is not None:
        gen_ids, gen_lps = run.tokens[: len(run.logprobs)], list(run.logprobs)
        if req.echo:
            prompt_lps = await ctx.scheduler.score(ids, req.logprobs)
            logprobs = _completion_logprobs(ctx.tokenizer, [*prompt_lps, *gen_lps], ids + gen_ids)
        else:
            logprobs = _completion_logprobs(ctx.tokenizer, list(gen_lps), gen_ids)
    choice = {
        "index": index,
        "text": out_text,
        "logprobs": logprobs,
        "finish_reason": run.finish or "length",
    }
    return choice, len(ids), run.n_gen


class _CompletionStream:
    def __init__(
        self, ctx: Ctx, key: ApiKey, text: str, ids: list[int], p: SamplingParams, usage: bool
    ) -> None:
        self.run = _Run(ctx, key, [text], ids, p)
        self.usage = usage
        self.id = f"cmpl-{self.run.id}"

    def _chunk(self, text: str, finish: str | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.run.ctx.name,
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
        }

    async def events(self) -> AsyncIterator[dict[str, Any] | str]:
        try:
            async for piece, _ in self.run.pieces():
                if piece:
                    yield self._chunk(piece, None)
        except ApiError as e:
            yield e.body()
            yield "[DONE]"
            return
        yield self._chunk("", self.run.finish or "length")
        if self.usage:
            yield {**self._chunk("", None), "choices": [], "usage": _usage(self.run)}
        yield "[DONE]"


def _usage(run: _Run) -> dict[str, int]:
    n_prompt = len(run.ids)
    return {
        "prompt_tokens": n_prompt,
        "completion_tokens": run.n_gen,
        "total_tokens": n_prompt + run.n_gen,
    }


class _ChatStream:
    def __init__(
        self,
        ctx: Ctx,
        key: ApiKey,
        user_texts: list[str],
        ids: list[int],
        p: SamplingParams,
        usage: bool,
    ) -> None:
        self.run = _Run(ctx, key, user_texts, ids, p)
        self.usage = usage
        self.id = f"chatcmpl-{self.run.id}"

    def _chunk(self, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.run.ctx.name,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    async def events(self) -> AsyncIterator[dict[str, Any] | str]:
        yield self._chunk({"role": "assistant", "content": ""}, None)
        try:
            async for piece, _ in self.run.pieces():
                if piece:
                    yield self._chunk({"content": piece}, None)
        except ApiError as e:
            yield e.body()
            yield "[DONE]"
            return
        yield self._chunk({}, self.run.finish or "length")
        if self.usage:
            yield {**self._chunk({}, None), "choices": [], "usage": _usage(self.run)}
        yield "[DONE]"

    async def collect(self) -> dict[str, Any]:
        if self.run.p.max_tokens > 0:
            async for _ in self.run.pieces():
                pass
        logprobs = None
        if self.run.p.logprobs is not None:
            tok = self.run.ctx.tokenizer
            logprobs = {
                "content": [
                    {
                        "token": _tok_str(tok, lp.token_id),
                        "logprob": lp.logprob,
                        "top_logprobs": [
                            {"token": _tok_str(tok, t), "logprob": v} for t, v in lp.top
                        ],
                    }
                    for lp in self.run.logprobs
                ]
            }
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.run.ctx.name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self.run.released},
                    "logprobs": logprobs,
                    "finish_reason": self.run.finish or "length",
                }
            ],
            "usage": _usage(self.run),
        }
