"""Admitting a request: the checks between the HTTP body and the engine, cheapest first.

Order (each refusal is an OpenAI-shaped error with a ``code``): server state (503) ->
key rate and quota left (429) -> body size (413, ``limits.BodyLimit``) -> JSON and fields
(400) -> a length bound from the character count, before tokenizing (400) -> tokens, in a
worker thread (400) -> a chat's images, decoded in a worker thread (400, ``images``) ->
the safety check, in a worker thread, over at most
``serve.max_check_chars`` (400) -> the key's worst-case token reservation (429) -> the
queue (429). Nothing here that scales with the input runs on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request
from tokenizers import Tokenizer

from superlab.config.recipe import ServeConfig
from superlab.config.vision import VisionConfig
from superlab.serve.auth import ApiKey, Denied, KeyRing
from superlab.serve.lifecycle import Lifecycle
from superlab.serve.metrics import Metrics
from superlab.serve.protocol import ApiError, loads, render_chat
from superlab.serve.safety import CATEGORIES, Policy, Verdict
from superlab.serve.sampling import SamplingParams
from superlab.serve.scheduler import Scheduler

log = logging.getLogger("superlab.serve")
T = TypeVar("T")
Conversation = list[tuple[str, str]]


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
    life: Lifecycle
    pool: ThreadPoolExecutor
    max_token_chars: int  # the longest token's text: a prompt has >= chars / this tokens
    created: int = field(default_factory=lambda: int(time.time()))
    vision: VisionConfig | None = None  # the model's ``model.vision``: None reads text only

    @property
    def vocab(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def log_user_text(self) -> bool:
        return self.cfg.log_user_text or self.policy.log_user_text


def longest_token_chars(tokenizer: Tokenizer) -> int:
    """Characters in the longest vocabulary entry (at least 1).

    A byte-level BPE entry of k characters stands for k bytes, which cover at most k
    characters of text, so a text of c characters needs at least c / k tokens.
    """
    return max((len(t) for t in tokenizer.get_vocab()), default=1) or 1


async def off_loop(ctx: Ctx, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on the check pool, not on the event loop."""
    return await asyncio.get_running_loop().run_in_executor(ctx.pool, fn, *args)


# ------------------------------------------------------------------- key and state


def bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def admit(ctx: Ctx, request: Request, tokens: bool = True) -> ApiKey:
    """The request's key, counted against its rate (and, with ``tokens``, its quota)."""
    ctx.life.check_open()
    key: ApiKey = request.state.key
    try:
        ctx.keys.admit(key, tokens=tokens)
    except Denied as e:
        ctx.metrics.inc("superlab:rejected_requests_total", reason=e.code)
        raise ApiError(e.status, e.message, None, e.code) from None
    return key


BIG_BODY = 64 * 1024  # bytes; a body this large is parsed in the pool, off the event loop


async def body(ctx: Ctx, request: Request) -> Any:
    raw = await request.body()
    return loads(raw) if len(raw) < BIG_BODY else await off_loop(ctx, loads, raw)


def check_model(ctx: Ctx, model: str | None) -> None:
    if model is not None and model != ctx.name:
        raise ApiError(
            404,
            f"model: {model!r} is not served here ({ctx.name!r} is)",
            "model",
            "model_not_found",
        )


def check_n(ctx: Ctx, n: int) -> None:
    if n > ctx.cfg.max_n:
        raise ApiError(
            400, f"n: {n} is over this server's limit of {ctx.cfg.max_n}", "n", "n_too_large"
        )


def check_queue(ctx: Ctx) -> None:
    """429 before a response starts when the queue is already full."""
    if ctx.scheduler.waiting >= ctx.cfg.queue_size:
        ctx.metrics.inc("superlab:rejected_requests_total", reason="queue_full")
        raise ApiError(
            429, f"the server is busy: {ctx.scheduler.waiting} requests waiting", None, "queue_full"
        )


# ------------------------------------------------------------------------ length


def check_chars(ctx: Ctx, chars: int, param: str) -> None:
    """Refuse a text too long to check or to fit the context, before tokenizing it."""
    if chars > ctx.cfg.max_check_chars:
        raise ApiError(
            400,
            f"{param}: {chars} characters; this server checks at most "
            f"{ctx.cfg.max_check_chars} (serve.max_check_chars)",
            param,
            "input_too_long",
        )
    if not ctx.scheduler.engine.bounded and chars // ctx.max_token_chars >= ctx.max_seq_len:
        raise ApiError(
            400,
            f"{param}: {chars} characters are at least {chars // ctx.max_token_chars} tokens; "
            f"the model's context is {ctx.max_seq_len}",
            param,
            "context_length_exceeded",
        )


def check_length(ctx: Ctx, ids: list[int], param: str = "prompt") -> None:
    if not ids:
        raise ApiError(400, f"{param}: no tokens to continue from", param, "empty_prompt")
    try:
        ctx.scheduler.engine.check_prompt(ids)
    except ValueError as e:
        raise ApiError(400, str(e), param, "context_length_exceeded") from None


async def encode(ctx: Ctx, text: str) -> list[int]:
    return (await off_loop(ctx, ctx.tokenizer.encode, text)).ids


def chat_prompt(messages: Sequence[Any], image: str = "") -> str:
    """The chat template over ``messages``; each image part becomes ``image``
    (``superlab.serve.images`` puts its placeholder tokens there)."""
    return render_chat([{"role": m.role, "content": m.text(image)} for m in messages])


def check_image_tokens(ctx: Ctx, ids: list[int], param: str, n_images: int = 0) -> None:
    """Refuse a prompt whose text tokenizes to the model's image placeholder (the
    ``n_images`` images' own placeholders aside): the model has no pixels for it."""
    v = ctx.vision
    if v is None or v.image_token_id is None:
        return
    if ids.count(v.image_token_id) != n_images * v.tokens_per_image:
        raise ApiError(
            400,
            f"{param}: the text holds the model's image placeholder token "
            f"(id {v.image_token_id}); images go in image_url content parts",
            param,
            "image_token_in_text",
        )


async def prompts(ctx: Ctx, prompt: Any) -> list[tuple[str, list[int]]]:
    """(text, ids) for each prompt of a completions request, each checked for length."""
    if isinstance(prompt, str):
        items: list[Any] = [prompt]
    elif prompt and all(isinstance(p, int) for p in prompt):
        items = [prompt]
    else:
        items = list(prompt)
    if not items:
        raise ApiError(400, "prompt: empty", "prompt", "empty_prompt")
    check_chars(ctx, sum(len(i) for i in items if isinstance(i, str)), "prompt")
    out = []
    for item in items:
        if isinstance(item, str):
            ids = await encode(ctx, item)
            if not ids and ctx.scheduler.engine.eos_id is not None:
                ids = [ctx.scheduler.engine.eos_id]  # "" starts a new document
            out.append((item, ids))
        else:
            if any(not 0 <= t < ctx.vocab for t in item):
                raise ApiError(
                    400,
                    f"prompt: token ids must be in 0..{ctx.vocab - 1}",
                    "prompt",
                    "invalid_token",
                )
            check_length(ctx, item)  # before decoding it
            out.append((await off_loop(ctx, ctx.tokenizer.decode, item), list(item)))
        check_length(ctx, out[-1][1])
        check_image_tokens(ctx, out[-1][1], "prompt")
    return out


# ------------------------------------------------------------------------ sampling


def params(
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
    bias = req.bias()
    bad = [t for t, _ in bias if t >= ctx.vocab]
    if bad:
        raise ApiError(
            400,
            f"logit_bias: token id {bad[0]} is outside 0..{ctx.vocab - 1}",
            "logit_bias",
            "invalid_value",
        )
    image_id = ctx.vision.image_token_id if ctx.vision is not None else None
    if any(t == image_id and b > 0 for t, b in bias):  # a placeholder has no pixels to read
        raise ApiError(
            400,
            f"logit_bias: token id {image_id} is the model's image placeholder; "
            "the model reads images, it does not write them",
            "logit_bias",
            "invalid_value",
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
        presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty,
        logit_bias=bias,
    )


# -------------------------------------------------------------------------- quota


class Reservation:
    """A request's worst-case tokens held against its key until ``settle``."""

    def __init__(self, ctx: Ctx, key: ApiKey, tokens: int) -> None:
        try:
            ctx.keys.reserve(key, tokens)
        except Denied as e:
            ctx.metrics.inc("superlab:rejected_requests_total", reason=e.code)
            raise ApiError(e.status, e.message, None, e.code) from None
        self.ctx, self.key, self.tokens = ctx, key, tokens
        self.used = 0
        self.settled = False
        self._publish()

    def settle(self) -> None:
        """Release the hold and charge what was used (once)."""
        if not self.settled:
            self.settled = True
            self.ctx.keys.settle(self.key, self.tokens, self.used)
            self._publish()

    def _publish(self) -> None:
        m, k = self.ctx.metrics, self.key
        m.set("superlab:key_tokens_used", k.used_tokens, key=k.name)
        m.set("superlab:key_tokens_reserved", k.reserved_tokens, key=k.name)


# ------------------------------------------------------------------------- safety


def refusal(ctx: Ctx, stage: str, verdict: Verdict, key: ApiKey, text: str) -> None:
    """Count and log a refusal; the user's text only when the policy says so."""
    cat = verdict.category or "unknown"
    ctx.metrics.inc("superlab:refusals_total", category=cat, stage=stage)
    extra = f" text={text!r}" if ctx.log_user_text else ""
    log.warning(
        "refused %s: category=%s floor=%s key=%s%s", stage, cat, verdict.floor, key.name, extra
    )


async def check_input(ctx: Ctx, text: str, conversation: Conversation, key: ApiKey) -> None:
    """The policy's verdict on the input, in a worker thread; 400 when refused."""
    verdict = await off_loop(ctx, ctx.policy.check, text, conversation)
    if verdict.action == "log" and verdict.category:
        ctx.metrics.inc("superlab:policy_flags_total", category=verdict.category, stage="input")
    if verdict.refused:
        refusal(ctx, "input", verdict, key, text)
        raise ApiError(
            400,
            f"the request was refused by the safety policy: {verdict.category} "
            f"({CATEGORIES.get(verdict.category or '', '')})",
            "prompt",
            "content_policy_violation",
        )
