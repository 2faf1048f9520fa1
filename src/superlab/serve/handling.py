"""Request handling: an admitted completions or chat request becomes engine runs and a response.

A handler takes a parsed request and its key from a route, runs the remaining admission
checks (``admission``: model, ``n``, settings, tokens, a chat's images (``images``), the
input safety check, the queue, the key's token reservation), starts one ``Run`` per
choice and answers with the JSON body or the SSE stream that ``responses`` shapes.

A ``Run`` reads its request's Deltas from the scheduler and checks each piece of output
with the policy (in a worker thread, with the whole conversation) before releasing it: a
refused piece ends the choice with ``finish_reason: content_filter``. The choices of a
request with ``n`` > 1 run together; with a seed, choice j samples with seed + j.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeVar

import torch
from fastapi.responses import JSONResponse, Response

from superlab.serve import admission as adm
from superlab.serve import images
from superlab.serve.admission import Conversation, Ctx, Reservation, off_loop, refusal
from superlab.serve.auth import ApiKey
from superlab.serve.engine import Delta, GenRequest, TokenLogprob
from superlab.serve.protocol import CHAT_STOPS, ApiError, ChatRequest, CompletionRequest
from superlab.serve.responses import (
    chat_events,
    chat_response,
    completion_choice,
    completion_events,
    completion_logprobs,
    sse,
    usage,
)
from superlab.serve.sampling import SamplingParams
from superlab.serve.scheduler import QueueFull, Unavailable

T = TypeVar("T")


async def complete(ctx: Ctx, key: ApiKey, req: CompletionRequest) -> Response:
    """``/v1/completions``: every prompt times ``n`` choices, streamed or in one body."""
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


async def chat(ctx: Ctx, key: ApiKey, req: ChatRequest) -> Response:
    """``/v1/chat/completions``: ``n`` choices of one conversation, streamed or in one body."""
    adm.check_model(ctx, req.model)
    adm.check_n(ctx, req.n)
    image_parts = images.parts(req.messages)
    images.check(ctx, image_parts)
    # Every message's text parts, every role: what the policy checks, with or without images.
    conversation = [(m.role, m.text()) for m in req.messages]
    adm.check_chars(ctx, sum(len(c) for _, c in conversation), "messages")
    max_tokens = req.max_completion_tokens or req.max_tokens
    top = (req.top_logprobs or 0) if req.logprobs else None
    p = adm.params(ctx, req, max_tokens, top, CHAT_STOPS)
    ids = await images.chat_ids(ctx, req.messages, len(image_parts))  # with placeholders
    adm.check_length(ctx, ids, "messages")
    adm.check_image_tokens(ctx, ids, "messages", len(image_parts))
    pixels_NCHW = await images.pixels(ctx, image_parts)
    text = "\n".join(c for _, c in conversation)
    await adm.check_input(ctx, text, conversation, key)
    adm.check_queue(ctx)
    res = Reservation(ctx, key, len(ids) + req.n * p.max_tokens)
    try:
        runs = [
            Run(ctx, key, conversation, ids, _nth(p, j), res, pixels_NCHW) for j in range(req.n)
        ]
        if req.stream:
            return sse(chat_events(runs, req.include_usage, res), res)
        await all_of([r.drain for r in runs])
    except BaseException:
        res.settle()
        raise
    res.settle()
    return JSONResponse(chat_response(runs))


def _nth(p: SamplingParams, j: int) -> SamplingParams:
    """The j-th choice's settings: with a seed, choice j samples with seed + j."""
    return p if j == 0 or p.seed is None else dataclasses.replace(p, seed=p.seed + j)


def _choice_job(
    run: Run, index: int, text: str, echo: bool, logprobs: int | None
) -> Callable[[], Awaitable[dict[str, Any]]]:
    return lambda: _complete_choice(run, index, text, echo, logprobs)


async def _complete_choice(
    run: Run, index: int, text: str, echo: bool, logprobs: int | None
) -> dict[str, Any]:
    """One non-streamed completions choice, with echo and logprobs as asked."""
    ctx = run.ctx
    await run.drain()
    logprobs_obj = None
    if logprobs is not None:
        gen_ids, gen_lps = run.tokens[: len(run.logprobs)], list(run.logprobs)
        if echo:
            try:
                prompt_lps = await ctx.scheduler.score(run.ids, logprobs)
            except Unavailable as e:
                raise ApiError(503, e.message, None, e.code) from None
            logprobs_obj = completion_logprobs(
                ctx.tokenizer, [*prompt_lps, *gen_lps], run.ids + gen_ids
            )
        else:
            logprobs_obj = completion_logprobs(ctx.tokenizer, list(gen_lps), gen_ids)
    return completion_choice(run, index, text, echo, logprobs_obj)


class Run:
    """One choice: the engine's Deltas, the output check before release, the metrics."""

    def __init__(
        self,
        ctx: Ctx,
        key: ApiKey,
        conversation: Conversation,
        ids: list[int],
        p: SamplingParams,
        res: Reservation,
        pixels_NCHW: torch.Tensor | None = None,
    ) -> None:
        self.ctx, self.key, self.conversation, self.ids, self.p = ctx, key, conversation, ids, p
        self.res, self.pixels_NCHW = res, pixels_NCHW
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
        try:
            async with asyncio.timeout(ctx.cfg.request_timeout_s):
                deltas = ctx.scheduler.stream(
                    GenRequest(self.id, self.ids, self.p, self.pixels_NCHW)
                )
                try:
                    async for d in deltas:
                        piece = await self._take(d)
                        if piece is None:  # cut by the policy
                            break
                        if piece or d.logprobs:
                            yield piece, d.logprobs
                        if d.finish_reason is not None:
                            break
                finally:
                    await deltas.aclose()
        except QueueFull as e:
            ctx.metrics.inc("superlab:rejected_requests_total", reason="queue_full")
            raise ApiError(429, f"the server is busy: {e}", None, "queue_full") from None
        except Unavailable as e:
            raise ApiError(503, e.message, None, e.code) from None
        except TimeoutError:
            ctx.metrics.inc("superlab:rejected_requests_total", reason="timeout")
            raise ApiError(
                408, f"the request ran past {ctx.cfg.request_timeout_s} s", None, "timeout"
            ) from None
        finally:
            self.res.used += len(self.ids) + self.n_gen
        self._done()

    async def _take(self, d: Delta) -> str | None:
        now = time.perf_counter()
        if d.token_ids and self.first is None:
            self.first = now
            self.ctx.metrics.observe("vllm:time_to_first_token_seconds", now - self.start)
        self.n_gen = d.completion_tokens
        if d.finish_reason == "error":
            self.ctx.metrics.inc("vllm:request_success_total", finished_reason="error")
            raise ApiError(500, d.error or "generation failed", None, "generation_failed")
        self.tokens += d.token_ids
        piece = d.text
        if piece:
            text = self.released + piece
            verdict = await off_loop(self.ctx, self.ctx.policy.check, text, self.conversation)
            if verdict.refused:
                refusal(self.ctx, "output", verdict, self.key, text)
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

    async def drain(self) -> None:
        """Run to the end without a consumer (non-streamed responses)."""
        if self.p.max_tokens > 0:
            async with aclosing(self.pieces()) as pieces:
                async for _ in pieces:
                    pass
        else:
            self.finish = "length"
            self.res.used += len(self.ids)


async def all_of(jobs: list[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run ``jobs`` together; the first ApiError cancels the rest and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(job()) for job in jobs]
    except BaseExceptionGroup as eg:
        raise eg.exceptions[0] from None
    return [t.result() for t in tasks]
