"""Conversations through the document pipeline, and out as chat rows for SFT.

A conversation becomes one ``Document``: ``text`` is its messages' contents joined by
``SEP`` (U+001E, the ASCII record separator), and ``metadata["roles"]`` their roles. So the
pipeline's steps see a conversation whole: language id and the quality filters read all
of it, exact and near dedup compare whole conversations, and PII masking rewrites the
contents in place. ``SEP`` is whitespace to ``str.split`` (word counts do not change) and
no PII pattern spans or matches it, so masking keeps message boundaries. A step that drops
lines (C4's line filter) could remove a boundary: ``conversation_messages`` then refuses
the document (``chat:boundaries_lost``) rather than mislabel turns.

``write_chat_rows`` turns the data stage's ``clean.jsonl`` into ``chat.jsonl``: one row
``{"id", "messages", "split", "source", "offset"}`` per kept conversation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from superlab.config.data import DataConfig
from superlab.data.chat.template import ChatFormatError, check_messages
from superlab.data.chat.tokens import CHAT_TOKENS
from superlab.data.document import Document
from superlab.data.writers.jsonl import JsonlWriter

SEP = "\x1e"
ROLES_KEY = "roles"
CHAT_SOURCE_KINDS = ("sharegpt",)  # source kinds whose documents are conversations


def has_chat_source(cfg: DataConfig) -> bool:
    """True when ``data.source`` or one of ``data.sources`` reads conversations."""
    return any(s.kind in CHAT_SOURCE_KINDS for s in [cfg.source, *cfg.sources])


def conversation_problem(messages: Sequence[dict[str, Any]]) -> tuple[str, str] | None:
    """Why ``messages`` cannot be a training conversation, as (kind, detail), or None."""
    try:
        check_messages(messages)
    except ChatFormatError as e:
        return "bad_message", str(e)
    if not messages:
        return "empty", "no messages"
    if not any(m["role"] == "assistant" for m in messages):
        return "no_assistant_turn", f"{len(messages)} messages, none from the assistant"
    for i, m in enumerate(messages):
        if SEP in m["content"]:
            return "separator_in_text", f"messages[{i}] holds U+001E"
        if found := [t for t in CHAT_TOKENS if t in m["content"]]:
            # it would encode as a turn marker, not as text
            return "chat_token_in_text", f"messages[{i}] holds {found[0]}"
    return None


def conversation_document(
    doc_id: str, messages: Sequence[dict[str, Any]], source: str, offset: int, **meta: Any
) -> Document:
    """``messages`` as one document (check them first with ``conversation_problem``)."""
    text = SEP.join(m["content"] for m in messages)
    roles = [m["role"] for m in messages]
    return Document(doc_id, text, {ROLES_KEY: roles, **meta}, source, offset)


def is_conversation(doc: Document) -> bool:
    """True for a document made by ``conversation_document``."""
    return isinstance(doc.metadata.get(ROLES_KEY), list)


def conversation_messages(doc: Document) -> list[dict[str, str]] | str:
    """The messages of a conversation document, or why they cannot be recovered."""
    roles = doc.metadata[ROLES_KEY]
    contents = doc.text.split(SEP)
    if len(contents) != len(roles):
        return "chat:boundaries_lost"
    return [{"role": r, "content": c} for r, c in zip(roles, contents, strict=True)]


def write_chat_rows(
    docs: Iterable[Document], path: str | Path, split_of: Callable[[str], str]
) -> dict[str, Any]:
    """Write the conversations among ``docs`` to ``path`` (JSONL, atomically); the counts."""
    removed: Counter[str] = Counter()
    turns = 0
    with JsonlWriter(path) as out:
        for doc in docs:
            if not is_conversation(doc):
                continue
            messages = conversation_messages(doc)
            if isinstance(messages, str):
                removed[messages] += 1
                continue
            turns += sum(m["role"] == "assistant" for m in messages)
            out.write(
                {
                    "id": doc.id,
                    "messages": messages,
                    "split": split_of(doc.id),
                    "source": doc.source,
                    "offset": doc.offset,
                }
            )
    return {"conversations": out.count, "assistant_turns": turns, "removed": dict(removed)}
