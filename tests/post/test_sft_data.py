"""SFT rows: TRL's formats, assistant-only targets, the truncation policy and packing."""

from __future__ import annotations

import numpy as np
import pytest

from superlab.data.chat import encode_chat
from superlab.post.rows import RowError
from superlab.post.sft_data import IGNORE, encode_row, pack

from .conftest import make_pretrained


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    from superlab.data.tokenizer import load_tokenizer

    return load_tokenizer(make_pretrained(tmp_path_factory.mktemp("run")).tokenizer)


TWO_TURNS = {
    "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Sum 2 3"},
        {"role": "assistant", "content": "5"},
    ]
}


def _target_text(tok, row, loss_on="all"):
    ex = encode_row(tok, row, loss_on, 1000, "reject")
    return tok.decode(ex.ids[ex.target].tolist(), skip_special_tokens=False)


def test_targets_are_the_assistant_turns_all_or_last(tok):
    assert _target_text(tok, TWO_TURNS) == "Hello<|end|>5<|end|>"
    assert _target_text(tok, TWO_TURNS, "last") == "5<|end|>"


def test_prompt_completion_as_text_and_as_messages(tok):
    text = {"prompt": "Sum 2 3", "completion": "5"}
    assert _target_text(tok, text) == "5<|end|>"
    msgs = {
        "prompt": TWO_TURNS["messages"][:3],  # an assistant turn in the prompt: no target
        "completion": [{"role": "assistant", "content": "5"}],
    }
    assert _target_text(tok, msgs) == "5<|end|>"
    assert (
        encode_row(tok, msgs, "all", 1000, "reject").ids.tolist()
        == encode_chat(tok, TWO_TURNS["messages"]).ids
    )


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"messages": [{"role": "robot", "content": "x"}]}, "unknown role"),
        ({"messages": [{"role": "user", "content": "x"}]}, "no assistant turn"),
        (
            {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": " "}]},
            "empty content",
        ),
        ({"prompt": "x", "completion": [{"role": "assistant", "content": "y"}]}, "both be text"),
        ({"text": "x"}, "no 'messages'"),
    ],
)
def test_malformed_rows_say_why(tok, row, reason):
    with pytest.raises(RowError, match=reason):
        encode_row(tok, row, "all", 99, "reject")


def test_truncation_policy(tok):
    with pytest.raises(RowError, match="longer than allowed"):
        encode_row(tok, TWO_TURNS, "all", 8, "reject")
    ex = encode_row(tok, TWO_TURNS, "all", 8, "keep_start")
    assert ex.truncated and len(ex.ids) == 8 and ex.target.any()
    with pytest.raises(RowError, match="no assistant token in the first 3"):
        encode_row(tok, TWO_TURNS, "all", 3, "keep_start")


def test_packing_keeps_rows_whole_with_document_ids(tok):
    ex = [encode_row(tok, TWO_TURNS, "all", 1000, "reject") for _ in range(3)]
    n = len(ex[0].ids) - 1
    packed = pack(ex, 2 * n + 1, pad_id=1, packing=True)
    assert packed.x_NT.shape == (2, 2 * n + 1)
    assert packed.doc_NT[0].tolist() == [0] * n + [1] * n + [2]  # the pad is its own doc
    assert packed.x_NT[0, :n].tolist() == ex[0].ids[:-1].tolist()
    assert packed.y_NT[0, -1] == IGNORE and not packed.real_NT[0, -1]
    targets = packed.y_NT[0, :n]
    want = np.where(ex[0].target[1:], ex[0].ids[1:], IGNORE)
    assert targets.tolist() == want.tolist()
    unpacked = pack(ex, 2 * n + 1, pad_id=1, packing=False)
    assert unpacked.x_NT.shape == (3, 2 * n + 1)
