"""The ``rl`` stage's prompts: the sums task and rows in TRL's prompt-only format.

A row holds ``prompt`` (text: one user turn; or a message list ending before the answer)
and any other columns (``answer``, ...), which the rewards receive as ``**row``. Its id is
the row's ``id`` column, else ``file:line``. A row without a usable prompt, or whose
prompt leaves no room for an answer in the model's context, goes to
``<run>/rl/rejects.jsonl`` with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from superlab.common import StageError
from superlab.config.rl import RLConfig
from superlab.data.chat import ChatFormatError, render_chat
from superlab.post.rows import Rejects, RowError, read_rows


@dataclass
class Prompt:
    """One prompt: its id, as given (for the rewards), rendered, its ids, its other columns."""

    id: str
    given: str | list[dict[str, Any]]
    text: str  # rendered with the chat template, ending in the generation prompt
    ids: list[int]
    row: dict[str, Any]

    @property
    def conversational(self) -> bool:
        return not isinstance(self.given, str)


def make_prompt(tok: Tokenizer, pid: str, row: dict[str, Any], max_prompt: int) -> Prompt:
    """A row as a ``Prompt``; ``RowError`` when it cannot be one."""
    given = row.get("prompt")
    if isinstance(given, str):
        if not given.strip():
            raise RowError("empty prompt")
        messages: list[dict[str, Any]] = [{"role": "user", "content": given}]
    elif isinstance(given, list) and given:
        messages = given
    else:
        raise RowError("no prompt: a 'prompt' text or message list is needed")
    text = render_chat(messages, add_generation_prompt=True)
    ids = tok.encode(text).ids
    if len(ids) > max_prompt:
        raise RowError(f"prompt of {len(ids)} tokens leaves no room for the answer")
    rest = {k: v for k, v in row.items() if k != "prompt"}
    return Prompt(pid, given, text, ids, rest)


@dataclass
class Prompts:
    """Train and held-out prompts, the rows rejected and the task items dropped."""

    train: list[Prompt] = field(default_factory=list)
    heldout: list[Prompt] = field(default_factory=list)
    rejects: Rejects = field(default_factory=Rejects)
    dropped_heldout_overlap: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "prompts": len(self.train),
            "heldout_prompts": len(self.heldout),
            "rejected": len(self.rejects.rows),
            "rejected_by_reason": self.rejects.counts(),
            "task_items_dropped_as_heldout": self.dropped_heldout_overlap,
        }


def read_prompts(cfg: RLConfig, tok: Tokenizer, max_seq_len: int) -> Prompts:
    """Every prompt of ``cfg.task`` and ``cfg.data`` (see the module docstring)."""
    from superlab.post.tasks import check_disjoint, heldout_items, split_items

    out = Prompts()
    max_prompt = max_seq_len - 1
    if cfg.task == "sums":
        items, dropped = split_items("train", cfg.task_items)
        held = heldout_items(max(cfg.eval_items, 1))
        check_disjoint(items, held)
        out.dropped_heldout_overlap = dropped
        out.train += [make_prompt(tok, it.id, it.row(), max_prompt) for it in items]
        out.heldout += [make_prompt(tok, it.id, it.row(), max_prompt) for it in held]
    valid = 0
    for name in cfg.data:
        try:
            rows = list(read_rows(Path(name)))
        except FileNotFoundError as e:
            raise StageError(str(e)) from None
        for row in rows:
            if row.data is None:
                out.rejects.add(row, row.error or "unreadable")
                continue
            pid = str(row.data.get("id", f"{row.file}:{row.line}"))
            try:
                p = make_prompt(tok, pid, row.data, max_prompt)
            except (RowError, ChatFormatError) as e:
                out.rejects.add(row, str(e))
                continue
            valid += 1
            held = bool(cfg.heldout_every) and valid % cfg.heldout_every == 0
            (out.heldout if held else out.train).append(p)
    if not out.train:
        raise StageError(f"rl: no usable prompts ({len(out.rejects.rows)} rejected)")
    return out
