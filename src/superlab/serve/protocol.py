"""OpenAI-shaped requests, errors and the chat template.

Requests are pydantic models that ignore fields we do not use (clients send many) but
check the type and range of every field we read; a bad one is answered 400 naming it,
with a ``code``. Ranges are OpenAI's (API reference, "Create chat completion" and
"Create completion"): temperature 0..2, top_p in (0, 1], presence and frequency penalty
-2..2, logit_bias -100..100, at most 4 stop strings, top_logprobs 0..20, seed a signed
64-bit integer. Errors have OpenAI's shape: ``{"error": {"message", "type", "param",
"code"}}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from superlab.data.chat import CHAT_TEMPLATE as CHAT_TEMPLATE  # app serves it
from superlab.data.chat import REPLY_STOPS
from superlab.data.chat import render_chat as _render_chat


class ApiError(Exception):
    """An error answered in OpenAI's shape with HTTP ``status``."""

    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    @property
    def type(self) -> str:
        if self.status == 401:
            return "authentication_error"
        if self.status == 429:
            return "rate_limit_error"
        if self.status >= 500:
            return "server_error"
        return "invalid_request_error"

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def loads(raw: bytes) -> Any:
    """A JSON body; anything that is not strict JSON (bad bytes, NaN, nesting past Python's
    recursion limit) is a 400 ``invalid_json``, never a 500."""
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError too
        msg = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise ApiError(400, f"the body is not valid JSON: {msg}", None, "invalid_json") from None


def parse(model: type[BaseModel], body: Any) -> Any:
    """Validate a JSON body; the first problem becomes a 400 naming its field."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", None, "invalid_body")
    try:
        return model.model_validate(body)
    except ValidationError as e:
        err = _first(e.errors())
        param = _param(err["loc"])
        msg = str(err["msg"])[:300]
        raise ApiError(400, f"{param}: {msg}", param, "invalid_value") from None
    except RecursionError:
        raise ApiError(400, "the body is nested too deeply", None, "invalid_body") from None


def _is_member(part: object) -> bool:
    """A union member's tag in an error's location (``str``, ``list[ContentPart]``)."""
    return isinstance(part, str) and (part in _TYPE_TAGS or "[" in part)


_TYPE_TAGS = {"str", "int", "float", "bool", "none", "list", "dict"}


def _first(errors: list[Any]) -> Any:
    """The first error; where it is one member of a union (``content``: a string or a list
    of parts), the member's error that got furthest into the value (the list's bad part)."""
    first = errors[0]
    tag = next((i for i, p in enumerate(first["loc"]) if _is_member(p)), None)
    if tag is None:
        return first
    same = [e for e in errors if tuple(e["loc"][:tag]) == tuple(first["loc"][:tag])]
    return max(same, key=lambda e: len(e["loc"]))  # max keeps the first of equals


def _param(loc: tuple[Any, ...]) -> str | None:
    """An error's field as the server names fields: ``messages[1].content[0].type``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _is_member(part):  # a field, or a key of a map (logit_bias.50256)
            out += f".{part}" if out else str(part)
    return out or None


INT64 = 2**63
MAX_LOGIT_BIAS = 300  # entries; our bound, so that one request's bias stays cheap per step


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=False)

    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=0)
    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=1)  # vLLM's extension; -1 means off there
    # vLLM's extension (CTRL's rule). 1 is off; the bounds keep every logit finite in
    # float32 (a logit over 1e4 never occurs; 1e4 / 0.01 = 1e6).
    repetition_penalty: float = Field(default=1.0, ge=0.01, le=100)
    presence_penalty: float = Field(default=0.0, ge=-2, le=2)
    frequency_penalty: float = Field(default=0.0, ge=-2, le=2)
    logit_bias: dict[str, float] | None = Field(default=None, max_length=MAX_LOGIT_BIAS)
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=-INT64, lt=INT64)
    n: int = Field(default=1, ge=1)  # the server's own maximum (serve.max_n) is checked later
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    user: str | None = None

    @field_validator("logit_bias")
    @classmethod
    def _bias(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        for token, bias in (v or {}).items():
            if not token.isdigit():  # OpenAI's keys are token ids as strings
                raise ValueError(f"key {token[:40]!r} is not a token id")
            if not -100 <= bias <= 100:
                raise ValueError(f"{token}: {bias} is outside -100..100")
        return v

    def bias(self) -> tuple[tuple[int, float], ...]:
        return tuple((int(t), b) for t, b in (self.logit_bias or {}).items())

    @field_validator("top_k", mode="before")
    @classmethod
    def _top_k_off(cls, v: Any) -> Any:
        return None if v in (-1, 0) else v

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> str | list[str] | None:
        stops = [v] if isinstance(v, str) else (v or [])
        if len(stops) > 4:
            raise ValueError("at most 4 stop sequences")
        return v

    def stops(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())

    @property
    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))


class CompletionRequest(_Request):
    """POST /v1/completions."""

    prompt: str | list[str] | list[int] | list[list[int]]
    echo: bool = False
    logprobs: int | None = Field(default=None, ge=0, le=20)  # OpenAI: 0..5; vLLM: 0..20


class ContentPart(BaseModel):
    """One part of a message's content: ``text``, ``image_url`` (``{"url", "detail"}``,
    checked and decoded by ``superlab.serve.images``, which names the bad field), or, in an
    assistant message, ``refusal`` (a replayed refusal, read as its text); a part of
    another type is refused by ``content_parts``."""

    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None
    image_url: Any = None
    refusal: str | None = None

    def piece(self, image: str) -> str:
        """This part's text: ``image`` for an image, "" for a type we do not take."""
        if self.type == "image_url":
            return image
        return {"text": self.text, "refusal": self.refusal}.get(self.type) or ""


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[ContentPart]

    def text(self, image: str = "") -> str:
        """The text parts joined, each ``image_url`` part replaced by ``image`` (the marker
        where its placeholder tokens go; "" gives the text alone)."""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.piece(image) for p in self.content)


CONTENT_TYPES = ("text", "image_url")
# OpenAI's assistant messages may also hold a refusal part: a client replays the
# conversation as it got it, so the part is read as the refusal's text.
ASSISTANT_TYPES = (*CONTENT_TYPES, "refusal")


def content_parts(messages: Sequence[Message]) -> list[tuple[str, str, ContentPart]]:
    """Every content part in order, with its field (``messages[i].content[j]``) and role.

    A part of a type not in ``CONTENT_TYPES`` is a 400 ``content_part_not_supported`` on its
    ``.type``, before any part is looked into: OpenAI's ``input_audio`` or ``file``, answered
    as if absent, would leave the client believing the model heard or read it.
    """
    out = []
    for i, m in enumerate(messages):
        if isinstance(m.content, str):
            continue
        for j, p in enumerate(m.content):
            param = f"messages[{i}].content[{j}]"
            types = ASSISTANT_TYPES if m.role == "assistant" else CONTENT_TYPES
            if p.type not in types:
                shown = p.type[:40] + ("..." if len(p.type) > 40 else "")
                supported = ", ".join(repr(t) for t in CONTENT_TYPES)
                raise ApiError(
                    400,
                    f"{param}.type: {shown!r} content parts are not supported in a "
                    f"{m.role!r} message; this server takes {supported} parts (and "
                    "'refusal' in assistant messages)",
                    f"{param}.type",
                    "content_part_not_supported",
                )
            out.append((param, m.role, p))
    return out


class ChatRequest(_Request):
    """POST /v1/chat/completions."""

    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)  # chat has no prompt-only request
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)

    @field_validator("top_logprobs")
    @classmethod
    def _top_needs_logprobs(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v is not None and not info.data.get("logprobs"):
            raise ValueError("top_logprobs needs logprobs: true")  # as OpenAI answers
        return v


class TokenizeRequest(BaseModel):
    """POST /tokenize (vLLM's shape): a prompt, or chat messages."""

    model_config = ConfigDict(extra="ignore")
    prompt: str | None = None
    messages: list[Message] | None = None
    add_special_tokens: bool = False


class DetokenizeRequest(BaseModel):
    """POST /detokenize."""

    model_config = ConfigDict(extra="ignore")
    tokens: list[int]


# The chat template is the one of ``superlab.data.chat`` (the model is trained on it): Jinja
# for clients (``/tokenizer_info``; lm-eval renders it), Python for the server. A reply
# ends at the end-of-turn token, or where the model starts another turn.
CHAT_STOPS = REPLY_STOPS


def render_chat(messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
    """``CHAT_TEMPLATE`` applied to ``messages`` (role, content); OpenAI's ``developer``
    role is the template's ``system``."""
    renamed = [
        {"role": "system" if m["role"] == "developer" else m["role"], "content": m["content"]}
        for m in messages
    ]
    return _render_chat(renamed, add_generation_prompt)
