"""SFT rows (TRL's formats) to packed training rows with assistant-only targets.

Accepted rows, as TRL's ``SFTTrainer`` reads them:

- conversational: ``{"messages": [{"role", "content"}, ...]}``;
- prompt/completion as text: ``{"prompt": "...", "completion": "..."}``, rendered as a user
  turn and an assistant turn;
- prompt/completion as messages: ``{"prompt": [...], "completion": [...]}``.

Targets are assistant tokens only (each assistant turn's content and its ``<|end|>``):
every assistant turn (``loss_on: all``) or the last one (``last``). For prompt/completion
rows only the completion's turns are targets, as TRL's completion-only loss. A row is
malformed (a ``RowError``, written to rejects.jsonl) for an unknown role, no assistant
turn, empty content, or more than ``max_tokens`` tokens under ``truncation: reject``;
under ``keep_start`` its first ``max_tokens`` tokens are kept.

Packing (``pack``) places whole rows into windows of ``seq_len`` inputs, first fit among
the newest open windows, each row its own document (``doc_ids_BT``: attention never
crosses a row boundary; the rest of a window is padding, never a target).

Legend: N packed rows, T ``seq_len``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from superlab.data.chat import ROLES, encode_chat
from superlab.post.rows import RowError

IGNORE = -100  # a position that is not a target (PyTorch's cross_entropy ignore_index)
OPEN_WINDOWS = 64  # packing looks for room among this many of the newest windows


@dataclass
class Example:
    """One tokenized row: ``ids`` and which of them are targets."""

    ids: np.ndarray  # (n,) int64
    target: np.ndarray  # (n,) bool: ids[i] is predicted (i >= 1) and counted in the loss
    truncated: bool = False


def check_messages(messages: Any, what: str) -> list[dict[str, str]]:
    """``messages`` as a list of ``{"role", "content"}``; a ``RowError`` says what is wrong."""
    if not isinstance(messages, list) or not messages:
        raise RowError(f"{what} is not a non-empty list of messages")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
            raise RowError(f"{what}[{i}] has no role or no content")
        role, content = m["role"], m["content"]
        if role not in ROLES:
            raise RowError(f"unknown role: {what}[{i}] is {role!r} (roles: {', '.join(ROLES)})")
        if not isinstance(content, str) or not content.strip():
            raise RowError(f"empty content: {what}[{i}] ({role})")
        out.append({"role": role, "content": content})
    return out


def conversation(row: Mapping[str, Any]) -> tuple[list[dict[str, str]], int]:
    """The row's messages and the index of its first assistant turn that may be a target."""
    if "messages" in row:
        messages = check_messages(row["messages"], "messages")
        first = 0
    elif "prompt" in row and "completion" in row:
        prompt, completion = row["prompt"], row["completion"]
        if isinstance(prompt, str) and isinstance(completion, str):
            prompt_msgs = check_messages([{"role": "user", "content": prompt}], "prompt")
            messages = prompt_msgs + check_messages(
                [{"role": "assistant", "content": completion}], "completion"
            )
        elif isinstance(prompt, list) and isinstance(completion, list):
            prompt_msgs = check_messages(prompt, "prompt")
            messages = prompt_msgs + check_messages(completion, "completion")
        else:
            raise RowError("prompt and completion must both be text or both be message lists")
        first = sum(m["role"] == "assistant" for m in prompt_msgs)
    else:
        raise RowError("no 'messages' and no 'prompt'/'completion' fields")
    if sum(m["role"] == "assistant" for m in messages) <= first:
        raise RowError("no assistant turn")
    return messages, first


def targets_of(turn: Sequence[int], first: int, loss_on: str) -> np.ndarray:
    """Which tokens are targets: assistant turns ``>= first`` (all) or only the last turn."""
    turn_n = np.asarray(turn, dtype=np.int64)
    target = turn_n == turn_n.max() if loss_on == "last" else turn_n >= first
    target &= turn_n >= 0
    target[0] = False  # the first token has nothing before it to predict it from
    return target


def encode_row(
    tok: Tokenizer, row: Mapping[str, Any], loss_on: str, max_tokens: int, truncation: str
) -> Example:
    """One SFT row tokenized, with its targets; a ``RowError`` when it is malformed."""
    messages, first = conversation(row)
    chat = encode_chat(tok, messages)
    ids = np.asarray(chat.ids, dtype=np.int64)
    target = targets_of(chat.turn, first, loss_on)
    return fit(ids, target, max_tokens, truncation)


def fit(ids: np.ndarray, target: np.ndarray, max_tokens: int, truncation: str) -> Example:
    """Apply the truncation policy to a row of ``len(ids)`` tokens."""
    if len(ids) <= max_tokens:
        return Example(ids, target)
    if truncation == "reject":
        raise RowError(f"longer than allowed: {len(ids)} tokens > {max_tokens}")
    ids, target = ids[:max_tokens], target[:max_tokens]
    if not target.any():
        raise RowError(f"longer than allowed: no assistant token in the first {max_tokens}")
    return Example(ids, target, truncated=True)


@dataclass
class Packed:
    """Training rows: inputs, targets (``IGNORE`` off-target), document ids, real tokens."""

    x_NT: np.ndarray
    y_NT: np.ndarray
    doc_NT: np.ndarray
    real_NT: np.ndarray


def pack(examples: list[Example], seq_len: int, pad_id: int, packing: bool) -> Packed:
    """Examples into rows of ``seq_len`` inputs (several per row when ``packing``)."""
    windows: list[list[Example]] = []
    used: list[int] = []
    for ex in examples:
        need = len(ex.ids) - 1  # inputs: every token but the last
        placed = False
        if packing:
            for w in range(max(0, len(windows) - OPEN_WINDOWS), len(windows)):
                if used[w] + need <= seq_len:
                    windows[w].append(ex)
                    used[w] += need
                    placed = True
                    break
        if not placed:
            windows.append([ex])
            used.append(need)
    n = len(windows)
    x = np.full((n, seq_len), pad_id, dtype=np.int64)
    y = np.full((n, seq_len), IGNORE, dtype=np.int64)
    doc = np.zeros((n, seq_len), dtype=np.int64)
    real = np.zeros((n, seq_len), dtype=bool)
    for r, window in enumerate(windows):
        at = 0
        for d, ex in enumerate(window):
            k = len(ex.ids) - 1
            x[r, at : at + k] = ex.ids[:-1]
            y[r, at : at + k] = np.where(ex.target[1:], ex.ids[1:], IGNORE)
            doc[r, at : at + k] = d
            real[r, at : at + k] = True
            at += k
        doc[r, at:] = len(window)  # padding is a document of its own
    return Packed(x, y, doc, real)
