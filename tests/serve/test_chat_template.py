"""The server speaks the chat format the model is trained on (superlab.data.chat)."""

from __future__ import annotations

import httpx
import pytest
from tokenizers import Tokenizer

from superlab.data.chat import CHAT_TEMPLATE, END_OF_TURN, encode_chat
from superlab.serve.protocol import CHAT_STOPS, render_chat
from superlab.serve.text import TextStream

pytest.importorskip("fastapi", reason="the server needs the serve extra")

from superlab.config.recipe import ServeConfig
from superlab.serve.app import create_app
from superlab.serve.auth import ApiKey
from superlab.serve.load import BackgroundServer, load_served
from superlab.serve.safety import Policy

KEY = "sk-chat"
MESSAGES = [
    {"role": "developer", "content": "Be brief."},
    {"role": "user", "content": "The history of mathematics?"},
]


def test_render_chat_is_the_data_template_with_developer_as_system() -> None:
    text = render_chat(MESSAGES)
    assert (
        text == "<|system|>Be brief.<|end|><|user|>The history of mathematics?<|end|><|assistant|>"
    )
    assert END_OF_TURN in CHAT_STOPS


def test_text_stream_stops_at_the_end_of_turn_token(tokenizer: Tokenizer) -> None:
    end = tokenizer.token_to_id(END_OF_TURN)
    ids = tokenizer.encode("The quick brown fox").ids
    stream = TextStream(tokenizer, stop=CHAT_STOPS)
    out = "".join(stream.push(i) for i in ids)
    assert not stream.stopped
    out += stream.push(end)
    assert stream.stopped and out == "The quick brown fox"
    # a stop that is not a special token is still matched as text only
    plain = TextStream(tokenizer, stop=("fox",))
    assert plain.stop_ids == set()


@pytest.fixture(scope="module")
def server(model_dir):
    served = load_served(model_dir)
    cfg = ServeConfig(max_tokens_limit=16)
    app = create_app(
        served.model,
        served.tokenizer,
        name=served.name,
        max_seq_len=served.max_seq_len,
        keys=[ApiKey(KEY)],
        cfg=cfg,
        policy=Policy(checks=[]),
    )
    with BackgroundServer(app) as s:
        yield s, served


def test_chat_endpoint_encodes_with_the_chat_tokens_and_stops_at_end_of_turn(server) -> None:
    s, served = server
    h = {"Authorization": f"Bearer {KEY}"}
    tok = served.tokenizer
    ids = httpx.post(s.url + "/tokenize", headers=h, json={"messages": MESSAGES}).json()["tokens"]
    system = [
        {"role": "system", "content": m["content"]} if i == 0 else m for i, m in enumerate(MESSAGES)
    ]
    assert ids == encode_chat(tok, system, add_generation_prompt=True).ids
    assert ids[-1] == tok.token_to_id("<|assistant|>")
    info = httpx.get(s.url + "/tokenizer_info", headers=h).json()
    assert info["chat_template"] == CHAT_TEMPLATE
    end = tok.token_to_id(END_OF_TURN)
    first = tok.encode(" fox").ids[0]
    body = {
        "messages": MESSAGES,
        "max_tokens": 8,
        "temperature": 0,
        # forces " fox" then the end of turn: the reply stops there, without the token's text
        "logit_bias": {str(first): 100},
    }
    r = httpx.post(s.url + "/v1/chat/completions", headers=h, json=body).json()
    assert r["choices"][0]["finish_reason"] == "length"  # " fox" forever: no stop yet
    body["logit_bias"] = {str(end): 100}
    r = httpx.post(s.url + "/v1/chat/completions", headers=h, json=body).json()
    choice = r["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["content"] == ""
    assert r["usage"]["completion_tokens"] == 1
