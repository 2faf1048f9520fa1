"""One chat format: role tokens, one Jinja template, and chat ids with assistant turns marked.

A conversation is a list of OpenAI/TRL messages ``{"role", "content"}`` with roles
``system``, ``user``, ``assistant`` and ``tool``. Rendered, each message is its role token,
its content and the end-of-turn token, with nothing in between::

    <|system|>Be brief.<|end|><|user|>Hi<|end|><|assistant|>Hello!<|end|>

and a generation prompt is ``<|assistant|>``. The role tokens and ``<|end|>`` are special
tokens of the tokenizer (``data.tokenizer.train_tokenizer`` adds them; ``ensure_chat_tokens``
adds them to a tokenizer trained before them), so a message's text never merges with them.
``CHAT_TEMPLATE`` is the one Jinja template: SFT and preference data, ``/v1/chat/completions``
and the Hugging Face export's ``tokenizer_config.json`` all use it.
"""

from superlab.data.chat.encode import ChatIds, encode_chat
from superlab.data.chat.template import CHAT_TEMPLATE, ChatFormatError, check_messages, render_chat
from superlab.data.chat.tokens import (
    CHAT_TOKENS,
    END_OF_TURN,
    REPLY_STOPS,
    ROLE_TOKENS,
    ROLES,
    chat_token_ids,
    ensure_chat_tokens,
)

__all__ = [
    "CHAT_TEMPLATE",
    "CHAT_TOKENS",
    "END_OF_TURN",
    "REPLY_STOPS",
    "ROLES",
    "ROLE_TOKENS",
    "ChatFormatError",
    "ChatIds",
    "chat_token_ids",
    "check_messages",
    "encode_chat",
    "ensure_chat_tokens",
    "render_chat",
]
