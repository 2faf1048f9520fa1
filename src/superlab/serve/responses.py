"""OpenAI's response shapes: JSON bodies, SSE chunks, usage and log-probabilities.

One stream driver (``_stream``) turns the choices of a request into chunks of one object
kind; ``completion_events`` and ``chat_events`` only say what one choice's chunks look
like (completions: text; chat: a role chunk, then content deltas). A request with ``n`` >
1 streams its choices together, interleaved by ``index``. Every failure after the response
started (a failed row, a dead engine, a drain past its deadline, a timeout) ends a stream
with one final ``{"error": ...}`` event and ``[DONE]``.

The runs themselves (engine Deltas, the output check) are ``superlab.serve.handling``'s.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from tokenizers import Tokenizer

from superlab.serve.admission import Reservation
from superlab.serve.engine import TokenLogprob
from superlab.serve.protocol import ApiError

if TYPE_CHECKING:
    from superlab.serve.handling import Run

T = TypeVar("T")
Event = dict[str, Any] | str


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


def completion_choice(
    run: Run, index: int, text: str, echo: bool, logprobs: dict[str, Any] | None
) -> dict[str, Any]:
    """One non-streamed completions choice (``text`` is the prompt, shown with ``echo``)."""
    return {
        "index": index,
        "text": (text if echo else "") + run.released,
        "logprobs": logprobs,
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
