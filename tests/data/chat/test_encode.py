from __future__ import annotations

import pytest
from tokenizers import Tokenizer

from superlab.data.chat import (
    CHAT_TOKENS,
    END_OF_TURN,
    ChatFormatError,
    encode_chat,
    render_chat,
)

from .conftest import CONVERSATIONS


@pytest.mark.parametrize("messages", CONVERSATIONS)
@pytest.mark.parametrize("gen", [False, True])
def test_ids_are_the_whole_rendered_texts_ids(chat_tokenizer: Tokenizer, messages, gen) -> None:
    chat = encode_chat(chat_tokenizer, messages, add_generation_prompt=gen)
    text = render_chat(messages, add_generation_prompt=gen)
    assert chat.ids == chat_tokenizer.encode(text, add_special_tokens=False).ids
    assert len(chat.turn) == len(chat.ids)
    assert chat_tokenizer.decode(chat.ids, skip_special_tokens=False) == text


def test_turn_marks_each_assistant_turns_content_and_end(chat_tokenizer: Tokenizer) -> None:
    tok = chat_tokenizer
    chat = encode_chat(tok, CONVERSATIONS[2], add_generation_prompt=True)
    end, asst = tok.token_to_id(END_OF_TURN), tok.token_to_id("<|assistant|>")
    for k, content in enumerate(["Let me look.", "21 \u00b0C and clear."]):
        mine = [i for i, t in zip(chat.ids, chat.turn, strict=True) if t == k]
        assert mine == [*tok.encode(content).ids, end]
    assert set(chat.turn) == {-1, 0, 1}
    # role headers, user and tool turns and the generation prompt are -1
    assert [t for i, t in zip(chat.ids, chat.turn, strict=True) if i == asst] == [-1, -1, -1]
    user_and_tool = tok.encode(CONVERSATIONS[2][0]["content"]).ids
    assert chat.turn[1 : 1 + len(user_and_tool) + 1] == [-1] * (len(user_and_tool) + 1)
    assert chat.turn[-1] == -1


def test_no_assistant_turn_marks_nothing(chat_tokenizer: Tokenizer) -> None:
    chat = encode_chat(chat_tokenizer, CONVERSATIONS[3])
    assert set(chat.turn) == {-1}


def test_the_chat_tokens_are_the_last_ids_and_special(chat_tokenizer: Tokenizer) -> None:
    tok = chat_tokenizer
    v = tok.get_vocab_size()
    assert v == 400  # vocab_size counts them: BPE learned 395 entries
    assert [tok.token_to_id(t) for t in CHAT_TOKENS] == list(range(v - 5, v))
    assert tok.decode([tok.token_to_id(END_OF_TURN)]) == ""  # special: skipped in text
    assert tok.encode("a<|user|>b").ids[1] == tok.token_to_id("<|user|>")


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        ([{"role": "human", "content": "x"}], r"messages\[0\]\.role: 'human' is not one of"),
        ([{"role": "user"}], r"messages\[0\]\.content: missing"),
        (
            [{"role": "user", "content": "x"}, {"role": "assistant", "content": ["x"]}],
            r"messages\[1\]\.content: a list, not a string",
        ),
        (["hi"], r"messages\[0\]: not an object"),
        ("hi", "messages must be a list, not str"),
    ],
)
def test_bad_messages_raise_with_the_reason(chat_tokenizer, messages, reason) -> None:
    with pytest.raises(ChatFormatError, match=reason):
        encode_chat(chat_tokenizer, messages)
    assert issubclass(ChatFormatError, ValueError)


def test_a_tokenizer_without_chat_tokens_is_refused() -> None:
    from tokenizers import models

    bare = Tokenizer(models.BPE())
    with pytest.raises(ChatFormatError, match=r"no <\|system\|> token.*ensure_chat_tokens"):
        encode_chat(bare, [{"role": "user", "content": "x"}])
