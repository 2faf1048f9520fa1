"""Preference rows (TRL's ``prompt``/``chosen``/``rejected``) to token ids with targets.

As TRL's ``DPOTrainer`` reads them: all three as text (the prompt rendered as a user
turn, each answer as an assistant turn), or as message lists (``prompt`` the conversation
so far, ``chosen`` and ``rejected`` the assistant messages that follow). The targets of a
sequence are its answer's assistant tokens (content and ``<|end|>``), whose summed (or,
for IPO and SimPO, averaged) log-probability is the sequence's log-probability.

Legend: P pairs, T sequence (the batch's longest sequence minus one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from superlab.data.chat import encode_chat
from superlab.post.rows import RowError
from superlab.post.sft_data import IGNORE, Example, check_messages, fit, targets_of


@dataclass
class Pair:
    """A prompt with its chosen and rejected answers, each tokenized with its targets."""

    chosen: Example
    rejected: Example

    @property
    def truncated(self) -> bool:
        return self.chosen.truncated or self.rejected.truncated


def conversations(
    row: Mapping[str, Any],
) -> tuple[list[dict[str, str]], list[dict[str, str]], list[dict[str, str]]]:
    """The row's prompt, chosen and rejected messages; a ``RowError`` says what is wrong."""
    missing = [k for k in ("prompt", "chosen", "rejected") if k not in row]
    if missing:
        raise RowError(f"no {', '.join(map(repr, missing))} field")
    prompt, chosen, rejected = row["prompt"], row["chosen"], row["rejected"]
    if all(isinstance(v, str) for v in (prompt, chosen, rejected)):
        prompt = [{"role": "user", "content": prompt}]
        chosen = [{"role": "assistant", "content": chosen}]
        rejected = [{"role": "assistant", "content": rejected}]
    elif not all(isinstance(v, list) for v in (prompt, chosen, rejected)):
        raise RowError("prompt, chosen and rejected must all be text or all be message lists")
    checked = (
        check_messages(prompt, "prompt"),
        check_messages(chosen, "chosen"),
        check_messages(rejected, "rejected"),
    )
    for name, msgs in zip(("chosen", "rejected"), checked[1:], strict=True):
        if not any(m["role"] == "assistant" for m in msgs):
            raise RowError(f"no assistant turn in {name}")
    return checked


def encode_pair(tok: Tokenizer, row: Mapping[str, Any], max_tokens: int, truncation: str) -> Pair:
    """One preference row tokenized; a ``RowError`` when it is malformed."""
    prompt, chosen, rejected = conversations(row)
    first = sum(m["role"] == "assistant" for m in prompt)
    out = []
    for answer in (chosen, rejected):
        chat = encode_chat(tok, prompt + answer)
        ids = np.asarray(chat.ids, dtype=np.int64)
        out.append(fit(ids, targets_of(chat.turn, first, "all"), max_tokens, truncation))
    return Pair(*out)


def pair_batch(pairs: list[Pair], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets of ``pairs``: the chosen sequences first, then the rejected ones,
    right-padded to the longest; shape (2P, T)."""
    seqs = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    t = max(len(s.ids) for s in seqs) - 1
    x = np.full((len(seqs), t), pad_id, dtype=np.int64)
    y = np.full((len(seqs), t), IGNORE, dtype=np.int64)
    for r, s in enumerate(seqs):
        k = len(s.ids) - 1
        x[r, :k] = s.ids[:-1]
        y[r, :k] = np.where(s.target[1:], s.ids[1:], IGNORE)
    return torch.from_numpy(x), torch.from_numpy(y)


def sequence_logps(
    logits_BTV: torch.Tensor, y_BT: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probability of each row's targets (fp32) and how many targets it has."""
    mask_BT = y_BT != IGNORE
    logp_BTV = torch.log_softmax(logits_BTV.float(), dim=-1)
    picked_BT = logp_BTV.gather(-1, y_BT.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked_BT * mask_BT).sum(-1), mask_BT.sum(-1)
