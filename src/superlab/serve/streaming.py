"""Generation for the routes: one ``Run`` per choice, and OpenAI's response and SSE shapes.

A ``Run`` reads its request's Deltas from the scheduler and checks each piece of output
with the policy (in a worker thread, with the whole conversation) before releasing it: a
refused piece ends the choice with ``finish_reason: content_filter``. A request with
``n`` > 1 runs its choices together; a stream interleaves their chunks by ``index``.
Every failure after the response started (a failed row, a dead engine, a drain past its
deadline, a timeout) ends a stream with one final ``{"error": ...}`` event and
``[DONE]``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeVar

from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from tokenizers import Tokenizer

from superlab.serve.admission import Conversation, Ctx, Reservation, off_loop, refusal
from superlab.serve.auth import ApiKey
from superlab.serve.engine import Delta, GenRequest, TokenLogprob
from superlab.serve.protocol import ApiError
from superlab.serve.sampling import SamplingParams
from superlab.serve.scheduler import QueueFull, Unavailable

T = TypeVar("T")
Event = dict[str, Any] | str


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
    ) -> None:
        self.ctx, self.key, self.conversation, self.ids, self.p = ctx, key, conversation, ids, p
        self.res = res
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
                deltas = ctx.scheduler.stream(GenRequest(self.id, self.ids, self.p))
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


async def merge(gens: list[AsyncIterator[T]]) -> AsyncIterator[T]:
    """Items of every generator as they come; the first error stops them all."""
    if len(gens) == 1:
        async with aclosing(gens[0]) as g:
            async for x in g:
                yield x
        return
    q: asyncio.Queue[Any] = asyncio.Queue()
    done = object()

    async def pump(g: AsyncIterator[T]) -> None:
        try:
            async with aclosing(g) as it:
                async for x in it:
                    await q.put(x)
            await q.put(done)
        except Exception as e:  # handed to the consumer, which raises it
            await q.put(e)

    tasks = [asyncio.create_task(pump(g)) for g in gens]
    try:
        left = len(gens)
        while left:
            x = await q.get()
            if x is done:
                left -= 1
            elif isinstance(x, Exception):
                raise x
            else:
                yield x
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def sse(events: AsyncIterator[Event], res: Reservation) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        async for e in events:
            yield f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n"

    # The reservation is settled when the stream ends; the background task settles it
    # too (once) if the client left before the stream began.
    return StreamingResponse(
        body(), media_type="text/event-stream", background=BackgroundTask(res.settle)
    )


def usage(runs: list[Run], prompts: list[list[int]]) -> dict[str, int]:
    n_prompt = sum(len(ids) for ids in prompts)
    n_gen = sum(r.n_gen for r in runs)
    return {"prompt_tokens": n_prompt, "completion_tokens": n_gen, "total_tokens": n_prompt + n_gen}


# ------------------------------------------------------------------------ logprobs


def tok_str(tokenizer: Tokenizer, token: int) -> str:
    return tokenizer.decode([token], skip_special_tokens=False)


def completion_logprobs(
    tokenizer: Tokenizer, lps: list[TokenLogprob | None], ids: list[int], offset0: int = 0
) -> dict[str, Any]:
    """OpenAI's legacy completions ``logprobs`` object for ``ids``."""
    tokens, token_lps, tops, offsets = [], [], [], []
    pos = offset0
    for tok, lp in zip(ids, lps, strict=True):
        s = tok_str(tokenizer, tok)
        tokens.append(s)
        offsets.append(pos)
        pos += len(s)
        token_lps.append(None if lp is None else lp.logprob)
        tops.append(None if lp is None else {tok_str(tokenizer, t): v for t, v in lp.top})
    return {
        "tokens": tokens,
        "token_logprobs": token_lps,
        "top_logprobs": tops,
        "text_offset": offsets,
    }


def chat_logprobs(tokenizer: Tokenizer, lps: list[TokenLogprob]) -> dict[str, Any]:
    """OpenAI's chat ``logprobs``: ``content``, one entry per token with its top list."""
    return {
        "content": [
            {
                "token": tok_str(tokenizer, lp.token_id),
                "logprob": lp.logprob,
                "bytes": list(tok_str(tokenizer, lp.token_id).encode()),
                "top_logprobs": [
                    {
                        "token": tok_str(tokenizer, t),
                        "logprob": v,
                        "bytes": list(tok_str(tokenizer, t).encode()),
                    }
                    for t, v in lp.top
                ],
            }
            for lp in lps
        ]
    }


# --------------------------------------------------------------------- completions


async def complete_choice(
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
    return {
        "index": index,
        "text": (text if echo else "") + run.released,
        "logprobs": logprobs_obj,
        "finish_reason": run.finish or "length",
    }


async def completion_events(
    runs: list[Run], include_usage: bool, res: Reservation
) -> AsyncIterator[Event]:
    """A completions stream: text chunks of every choice, a finish chunk each, usage."""
    obj = "text_completion"

    async def one(i: int, run: Run) -> AsyncIterator[dict[str, Any]]:
        async with aclosing(run.pieces()) as pieces:
            async for piece, _ in pieces:
                if piece:
                    yield {"index": i, "text": piece, "logprobs": None, "finish_reason": None}
        yield {"index": i, "text": "", "logprobs": None, "finish_reason": run.finish or "length"}

    async for event in _stream(runs, one, obj, include_usage, res):
        yield event


# ---------------------------------------------------------------------------- chat


def chat_response(runs: list[Run]) -> dict[str, Any]:
    ctx = runs[0].ctx
    return {
        "id": f"chatcmpl-{runs[0].id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": ctx.name,
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": r.released},
                "logprobs": None
                if r.p.logprobs is None
                else chat_logprobs(ctx.tokenizer, r.logprobs),
                "finish_reason": r.finish or "length",
            }
            for i, r in enumerate(runs)
        ],
        "usage": usage(runs, [runs[0].ids]),
    }


async def chat_events(
    runs: list[Run], include_usage: bool, res: Reservation
) -> AsyncIterator[Event]:
    """A chat stream: a role chunk, content chunks, a finish chunk per choice, usage."""
    ctx = runs[0].ctx
    obj = "chat.completion.chunk"

    async def one(i: int, run: Run) -> AsyncIterator[dict[str, Any]]:
        yield {
            "index": i,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }
        async with aclosing(run.pieces()) as pieces:
            async for piece, lps in pieces:
                lp = None if run.p.logprobs is None else chat_logprobs(ctx.tokenizer, lps)
                if piece or lp:
                    delta = {"content": piece}
                    yield {"index": i, "delta": delta, "logprobs": lp, "finish_reason": None}
        yield {"index": i, "delta": {}, "logprobs": None, "finish_reason": run.finish or "length"}

    async for event in _stream(runs, one, obj, include_usage, res):
        yield event


async def _stream(
    runs: list[Run],
    one: Callable[[int, Run], AsyncIterator[dict[str, Any]]],
    obj: str,
    include_usage: bool,
    res: Reservation,
) -> AsyncIterator[Event]:
    """Every choice's pieces (``one``) merged into chunks of ``obj``, then usage and
    ``[DONE]``; an error ends the stream as a final error event; the reservation is
    settled however it ends."""
    prefix = "chatcmpl" if obj.startswith("chat") else "cmpl"

    def chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": f"{prefix}-{runs[0].id}",
            "object": obj,
            "created": int(time.time()),
            "model": runs[0].ctx.name,
            "choices": choices,
        }

    try:
        async with aclosing(merge([one(i, r) for i, r in enumerate(runs)])) as choices:
            async for choice in choices:
                yield chunk([choice])
        if include_usage:
            yield {**chunk([]), "usage": usage(runs, [runs[0].ids])}
    except ApiError as e:
        yield e.body()
    finally:
        res.settle()
    yield "[DONE]"
