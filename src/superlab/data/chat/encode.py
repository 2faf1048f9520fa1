"""Chat messages to token ids, each token marked with the assistant turn it belongs to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tokenizers import Tokenizer

from superlab.data.chat.template import ChatFormatError, check_messages
from superlab.data.chat.tokens import END_OF_TURN, chat_token_ids


@dataclass
class ChatIds:
    """``ids`` of a rendered conversation; ``turn[i]`` is the index (0, 1, ...) of the
    assistant turn token ``i`` belongs to (its content and its end of turn), else -1."""

    ids: list[int] = field(default_factory=list)
    turn: list[int] = field(default_factory=list)

    def add(self, ids: Sequence[int], turn: int) -> None:
        self.ids += ids
        self.turn += [turn] * len(ids)


def encode_chat(
    tokenizer: Tokenizer,
    messages: Sequence[Mapping[str, Any]],
    *,
    add_generation_prompt: bool = False,
) -> ChatIds:
    """Token ids of ``render_chat(messages, add_generation_prompt)`` and their turns.

    Each message's content is encoded on its own: the tokenizer splits text at special
    tokens before anything else, so the pieces' ids are exactly the ids of the whole
    rendered text (what ``transformers``' ``apply_chat_template`` gives).
    """
    check_messages(messages)
    try:
        special = chat_token_ids(tokenizer)
    except ValueError as e:
        raise ChatFormatError(str(e)) from None
    out, assistant_turns = ChatIds(), 0
    for m in messages:
        is_assistant = m["role"] == "assistant"
        turn = assistant_turns if is_assistant else -1
        out.add([special[f"<|{m['role']}|>"]], -1)
        out.add(tokenizer.encode(m["content"], add_special_tokens=False).ids, turn)
        out.add([special[END_OF_TURN]], turn)
        assistant_turns += is_assistant
    if add_generation_prompt:
        out.add([special["<|assistant|>"]], -1)
    return out
