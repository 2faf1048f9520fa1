"""``CHAT_TEMPLATE`` (Jinja, for clients and the Hugging Face export) and the same in Python.

Hugging Face renders chat templates with ``trim_blocks`` and ``lstrip_blocks``; this template
has no whitespace next to its block tags, so plain Jinja and Hugging Face render it alike
(tests/data/chat checks both against ``render_chat``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from superlab.data.chat.tokens import END_OF_TURN, ROLES

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant', 'tool'] %}"
    "{{ raise_exception('unknown role: ' + message['role']) }}"
    "{% endif %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '" + END_OF_TURN + "' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


class ChatFormatError(ValueError):
    """A conversation that is not a list of ``{"role", "content"}`` messages we know."""


def check_messages(messages: Sequence[Mapping[str, Any]]) -> None:
    """Raise ``ChatFormatError`` naming the first bad message (unknown role, no content)."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise ChatFormatError(f"messages must be a list, not {type(messages).__name__}")
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise ChatFormatError(f"messages[{i}]: not an object ({type(m).__name__})")
        role = m.get("role")
        if role not in ROLES:
            raise ChatFormatError(f"messages[{i}].role: {role!r} is not one of {', '.join(ROLES)}")
        content = m.get("content")
        if not isinstance(content, str):
            what = "missing" if content is None else f"a {type(content).__name__}, not a string"
            raise ChatFormatError(f"messages[{i}].content: {what}")


def render_chat(messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = False) -> str:
    """``CHAT_TEMPLATE`` applied to ``messages``, in Python."""
    check_messages(messages)
    text = "".join(f"<|{m['role']}|>{m['content']}{END_OF_TURN}" for m in messages)
    return text + ("<|assistant|>" if add_generation_prompt else "")
