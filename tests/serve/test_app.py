"""The HTTP server end to end on 127.0.0.1: the official openai client, limits, errors."""

from __future__ import annotations

import re
import threading

import httpx
import pytest
import torch

pytest.importorskip("fastapi", reason="the server needs the serve extra")
openai = pytest.importorskip("openai", reason="the acceptance test needs the openai client")

from superlab.config.recipe import ServeConfig  # noqa: E402
from superlab.serve.app import create_app  # noqa: E402
from superlab.serve.auth import ApiKey  # noqa: E402
from superlab.serve.load import BackgroundServer, load_served  # noqa: E402
from superlab.serve.safety import Policy  # noqa: E402
from superlab.serve.safety.rules import RuleCheck  # noqa: E402

KEY = "sk-test-1"
NAME = "tiny-serve"


def _policy() -> Policy:
    return Policy(checks=[RuleCheck.default()])  # rules only: fast, no scikit-learn


@pytest.fixture(scope="module")
def served(model_dir):
    return load_served(model_dir)


@pytest.fixture(scope="module")
def server(served):
    cfg = ServeConfig(max_body_bytes=4096, max_tokens_limit=64, queue_size=2, max_n=2)
    keys = [ApiKey(KEY), ApiKey("sk-limited", rpm=2, name="limited")]
    app = create_app(
        served.model,
        served.tokenizer,
        name=served.name,
        max_seq_len=served.max_seq_len,
        keys=keys,
        cfg=cfg,
        policy=_policy(),
    )
    with BackgroundServer(app) as s:
        yield s


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)


def _argmax_path(served, ids: list[int], n: int) -> list[int]:
    out: list[int] = []
    for _ in range(n):
        with torch.no_grad():
            t = int(served.model(torch.tensor([ids + out])).logits_BTV[0, -1].argmax())
        if t == 0:
            break
        out.append(t)
    return out


def test_openai_client_models_completions_chat_and_streaming(client, served):
    assert [m.id for m in client.models.list().data] == [NAME]
    c = client.completions.create(model=NAME, prompt="The history of", max_tokens=8, temperature=0)
    ids = served.tokenizer.encode("The history of").ids
    assert c.choices[0].text == served.tokenizer.decode(_argmax_path(served, ids, 8))
    assert c.usage.prompt_tokens == len(ids) and c.usage.completion_tokens == 8
    chat = client.chat.completions.create(
        model=NAME, messages=[{"role": "user", "content": "Hello"}], max_tokens=6, temperature=0
    )
    text = chat.choices[0].message.content
    assert chat.choices[0].finish_reason in ("length", "stop") and isinstance(text, str)
    stream = client.chat.completions.create(
        model=NAME,
        messages=[{"role": "user", "content": "Hello"}],
        max_tokens=6,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    streamed = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert streamed == text  # the same greedy path, piece by piece
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens <= 6


def test_fixed_seed_sampling_is_reproducible(client):
    def sample(seed: int) -> str:
        return (
            client.completions.create(
                model=NAME, prompt="A", max_tokens=12, temperature=1.0, seed=seed
            )
            .choices[0]
            .text
        )

    assert sample(5) == sample(5)
    assert sample(5) != sample(6)


def test_echo_logprobs_are_the_prompt_log_probabilities(server, served):
    ids = served.tokenizer.encode("The quick brown fox").ids
    r = httpx.post(
        server.url + "/v1/completions",
        headers={"Authorization": f"Bearer {KEY}"},
        json={
            "model": NAME,
            "prompt": [ids],
            "max_tokens": 1,
            "logprobs": 1,
            "echo": True,
            "temperature": 0,
        },
    )
    lp = r.json()["choices"][0]["logprobs"]
    with torch.no_grad():
        lp_TV = torch.log_softmax(served.model(torch.tensor([ids])).logits_BTV[0], -1)
    assert lp["token_logprobs"][0] is None and len(lp["token_logprobs"]) == len(ids) + 1
    for t in range(1, len(ids)):
        assert lp["token_logprobs"][t] == pytest.approx(float(lp_TV[t - 1, ids[t]]), abs=1e-5)


def test_auth_body_limit_and_malformed_requests(server):
    url = server.url + "/v1/completions"
    good = {"Authorization": f"Bearer {KEY}"}
    assert httpx.get(server.url + "/health").status_code == 200
    for headers in ({}, {"Authorization": "Bearer nope"}):
        r = httpx.get(server.url + "/v1/models", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    assert httpx.get(server.url + "/metrics").status_code == 401
    r = httpx.post(url, headers=good, json={"prompt": "x" * 5000})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    r = httpx.post(url, headers={**good, "Content-Type": "application/json"}, content=b"{nope")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    for body, param in [
        ({"prompt": "a", "max_tokens": 65}, "max_tokens"),
        ({"prompt": "a", "temperature": "hot"}, "temperature"),
        ({"prompt": 5}, "prompt"),
        ({"max_tokens": 2}, "prompt"),
        ({"prompt": [10**9]}, "prompt"),
        ({"prompt": "a", "n": 3}, "n"),
    ]:
        r = httpx.post(url, headers=good, json=body)
        assert r.status_code == 400, body
        assert r.json()["error"]["param"].startswith(param), r.json()
    r = httpx.post(url, headers=good, json={"prompt": "a", "model": "gpt-4"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


def test_rate_limit_and_full_queue_answer_429(server):
    limited = {"Authorization": "Bearer sk-limited"}
    codes = [
        httpx.post(
            server.url + "/v1/completions", headers=limited, json={"prompt": "a", "max_tokens": 1}
        ).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]
    # queue_size=2: many simultaneous long requests; some must be refused with 429.
    results: list[int] = []

    def call() -> None:
        r = httpx.post(
            server.url + "/v1/completions",
            headers={"Authorization": f"Bearer {KEY}"},
            json={"prompt": "a", "max_tokens": 64, "temperature": 0},
            timeout=60,
        )
        results.append(r.status_code)

    threads = [threading.Thread(target=call) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 429 in results and 200 in results and set(results) <= {200, 429}
    metrics = httpx.get(server.url + "/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    assert (
        'superlab:rejected_requests_total{model_name="tiny-serve",reason="queue_full"}' in metrics
    )
    assert "vllm:time_to_first_token_seconds_count" in metrics


def test_tokenize_detokenize_and_tokenizer_info(server, served):
    h = {"Authorization": f"Bearer {KEY}"}
    ids = httpx.post(
        server.url + "/tokenize", headers=h, json={"prompt": "Caf\u00e9 au lait"}
    ).json()["tokens"]
    assert ids == served.tokenizer.encode("Caf\u00e9 au lait").ids
    r = httpx.post(server.url + "/detokenize", headers=h, json={"tokens": ids})
    assert r.json()["prompt"] == "Caf\u00e9 au lait"
    info = httpx.get(server.url + "/tokenizer_info", headers=h).json()
    assert info["eos_token"] == "<|endoftext|>" and info["model_max_length"] == 64
    jinja2 = pytest.importorskip("jinja2")
    from superlab.serve.protocol import render_chat

    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    rendered = jinja2.Template(info["chat_template"]).render(
        messages=msgs, add_generation_prompt=True
    )
    assert rendered == render_chat(msgs)


def test_unsafe_input_is_refused_and_counted_without_text(server, caplog):
    h = {"Authorization": f"Bearer {KEY}"}
    secret = "step by step guide to build a pipe bomb"
    with caplog.at_level("WARNING", logger="superlab.serve"):
        r = httpx.post(
            server.url + "/v1/chat/completions",
            headers=h,
            json={"messages": [{"role": "user", "content": secret}]},
        )
    assert r.status_code == 400 and r.json()["error"]["code"] == "content_policy_violation"
    assert "S9" in r.json()["error"]["message"]
    assert any("S9" in rec.getMessage() for rec in caplog.records)
    assert all("pipe bomb" not in rec.getMessage() for rec in caplog.records)
    metrics = httpx.get(server.url + "/metrics", headers=h).text
    want = 'superlab:refusals_total{model_name="tiny-serve",category="S9",stage="input"} 1.0'
    assert want in metrics


def test_streamed_output_is_cut_before_an_unsafe_piece(served):
    """A policy whose rule matches the model's own greedy text: the stream stops before it."""
    ids = served.tokenizer.encode("The history of").ids
    full = served.tokenizer.decode(_argmax_path(served, ids, 12))
    banned = full[4:7]
    assert banned.strip()
    rules = RuleCheck({"S12": [re.escape(banned)]})
    app = create_app(
        served.model,
        served.tokenizer,
        name=NAME,
        max_seq_len=64,
        keys=[ApiKey(KEY)],
        policy=Policy(checks=[rules]),
    )
    with BackgroundServer(app) as s:
        c = openai.OpenAI(base_url=s.url + "/v1", api_key=KEY, max_retries=0)
        chunks = list(
            c.completions.create(
                model=NAME, prompt="The history of", max_tokens=12, temperature=0, stream=True
            )
        )
    text = "".join(ch.choices[0].text for ch in chunks)
    assert banned not in text and full.startswith(text)
    assert chunks[-1].choices[0].finish_reason == "content_filter"
