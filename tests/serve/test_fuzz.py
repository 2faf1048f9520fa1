"""Thousands of random, oversized, wrongly typed and deeply nested requests to every route
(a seeded generator, so a failure replays): never a 5xx, never a hang, and a normal
request still succeeds afterwards."""

from __future__ import annotations

import json
import random
import time

import httpx
import pytest

pytest.importorskip("fastapi", reason="the server needs the serve extra")

from superlab.config.recipe import ServeConfig
from superlab.serve.auth import ApiKey
from superlab.serve.load import BackgroundServer, load_served
from superlab.serve.safety import Policy
from superlab.serve.safety.rules import RuleCheck

from .conftest import serve_app

KEY = "sk-test-1"
ROUTES = [
    ("POST", "/v1/completions"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/tokenize"),
    ("POST", "/detokenize"),
    ("GET", "/v1/models"),
    ("GET", "/tokenizer_info"),
    ("GET", "/metrics"),
    ("GET", "/health"),
    ("GET", "/v1/completions"),
    ("POST", "/v1/nothing"),
]
FIELDS = [
    "prompt", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
    "top_k", "repetition_penalty", "presence_penalty", "frequency_penalty", "logit_bias",
    "stop", "seed", "n", "stream", "stream_options", "echo", "logprobs", "top_logprobs",
    "model", "user", "tokens", "add_special_tokens",
]  # fmt: skip


def weird(rng: random.Random, depth: int = 0) -> object:
    """A value of a random type: edge numbers, odd strings, nested containers."""
    pick = rng.randrange(14 if depth < 3 else 10)
    return [
        lambda: None,
        lambda: rng.choice([True, False]),
        lambda: rng.choice([0, 1, -1, 2, 3, 7, 64, 2**31, 2**63, 2**64, -(2**64), 10**30]),
        lambda: rng.choice([0.0, -0.0, 1e-300, -1e-300, 0.5, 2.0000001, 1e308, -1e308]),
        lambda: rng.choice(["", "a", "hi", "\x00", "\ud7ff\ue000", "<|user|>", "é" * 50]),
        lambda: "x" * rng.choice([1000, 70_000, 300_000]),
        lambda: [rng.randrange(-5, 400) for _ in range(rng.randrange(0, 80))],
        lambda: [[rng.randrange(0, 300)] * rng.randrange(0, 3) for _ in range(rng.randrange(3))],
        lambda: {str(rng.randrange(-2, 400)): rng.uniform(-150, 150) for _ in range(3)},
        lambda: [{"role": rng.choice(["user", "system", "assistant", "tool", "x", 5]),
                  "content": rng.choice(["hi", None, 5, [{"type": "text", "text": 5}],
                                         [{"type": "text", "text": "yo"}], [[]]])}],
        lambda: [weird(rng, depth + 1) for _ in range(rng.randrange(4))],
        lambda: {rng.choice(FIELDS): weird(rng, depth + 1) for _ in range(rng.randrange(4))},
        lambda: [weird(rng, depth + 1)],
        lambda: {"type": "text", "text": weird(rng, depth + 1)},
    ][pick]()  # fmt: skip


def body(rng: random.Random) -> bytes:
    kind = rng.randrange(10)
    if kind == 0:  # not JSON, not UTF-8, JSON extensions, nesting past the recursion limit
        return rng.choice([
            b"", b"{", b"\xff\xfe", b"NaN", b'{"prompt": Infinity}', b"null", b"[]", b"1e999",
            b"[" * 5000 + b"]" * 5000, b'{"prompt":' + b"[" * 3000 + b"]" * 3000 + b"}",
            b'{"messages":[{"role":"user","content":' + b"[" * 900 + b"]" * 900 + b"}]}",
        ])  # fmt: skip
    if kind == 1:  # over the body limit
        return b'{"prompt": "' + b"y" * 300_000 + b'"}'
    if kind == 2:  # deep but valid for json.loads
        v: object = "hi"
        for _ in range(rng.randrange(50, 900)):
            v = [v] if rng.random() < 0.5 else {"content": v}
        return json.dumps({"prompt": v, "messages": v}).encode()
    fields: dict[str, object] = {}
    if rng.random() < 0.7:
        fields["prompt"] = rng.choice(["The history of", "hi", [5, 6, 7], weird(rng)])
        fields["messages"] = rng.choice([[{"role": "user", "content": "hi"}], weird(rng)])
        fields["max_tokens"] = rng.choice([1, 2, 3, weird(rng)])
    for _ in range(rng.randrange(1, 6)):
        fields[rng.choice(FIELDS)] = weird(rng)
    return json.dumps(fields).encode()


@pytest.fixture(scope="module")
def server(model_dir):
    served = load_served(model_dir)
    cfg = ServeConfig(max_body_bytes=200_000, max_tokens_limit=8, max_n=2, queue_size=64)
    policy = Policy(checks=[RuleCheck.default()])  # the real rules and floor, no classifier
    with BackgroundServer(serve_app(served, cfg, [ApiKey(KEY)], policy)) as s:
        yield s


def test_random_bodies_never_get_a_5xx_or_hang(server):
    rng = random.Random(20261206)
    deadline = time.monotonic() + 40  # a hang fails the test instead of stalling the suite
    seen: dict[int, int] = {}
    with httpx.Client(base_url=server.url, timeout=10) as c:
        for i in range(2500):
            method, path = rng.choice(ROUTES)
            headers = {"Authorization": f"Bearer {KEY}"} if rng.random() < 0.95 else {}
            raw = body(rng)
            r = c.request(method, path, headers=headers, content=raw)
            seen[r.status_code] = seen.get(r.status_code, 0) + 1
            assert r.status_code < 500, (i, path, raw[:300], r.text[:300])
            if r.status_code >= 400:
                err = r.json()["error"]
                assert err["code"] and err["message"], (path, raw[:300], err)
            assert time.monotonic() < deadline, f"stalled at request {i}"
        ok = c.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {KEY}"},
            json={"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4},
        )
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] is not None
    assert seen.get(200, 0) > 100 and seen.get(400, 0) > 500  # it reached both sides
