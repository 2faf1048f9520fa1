"""A small trained tokenizer (with the chat tokens) and conversations for the chat tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer

from superlab.config.recipe import TokenizerConfig
from superlab.data.tokenizer import train_tokenizer

from ..helpers import english

# system / user / assistant / tool, multi-turn, unicode, whitespace at the edges, empty.
CONVERSATIONS = [
    [{"role": "user", "content": "Hi"}],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "  And 3+3?\n"},
        {"role": "assistant", "content": "\n6 \u2014 six.\n\n"},
    ],
    [
        {"role": "user", "content": "Weather in Z\u00fcrich? \u4e16\u754c \U0001f642"},
        {"role": "assistant", "content": "Let me look."},
        {"role": "tool", "content": '{"temp_c": 21, "sky": "clear"}'},
        {"role": "assistant", "content": "21 \u00b0C and clear."},
    ],
    [{"role": "system", "content": ""}, {"role": "user", "content": "\t"}],
]


@pytest.fixture(scope="module")
def chat_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    path: Path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    texts = [english(i) for i in range(100)] + ['Caf\u00e9 \u4e16\u754c \U0001f642 {"a": 1}']
    return train_tokenizer(iter(texts), TokenizerConfig(vocab_size=400), path)
