"""One way to score text with a model: log-likelihoods of continuations, and greedy answers.

Every evaluator (probes, HLE items, Min-K%, the lm-eval adapter) goes through
``Scorer``, so "our own scoring of a string" means one thing. A request is a context
and a continuation, both token ids; the log-likelihood is the sum over the
continuation's tokens of ``log p(token | everything before it)``. Requests are
batched with right padding, which a causal model never attends to. A request longer
than ``max_seq_len`` keeps its last ``max_seq_len`` tokens (the context is cut from
the left, as lm-evaluation-harness does).

Legend: B batch, T sequence, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tokenizers import Tokenizer

EOS = "<|endoftext|>"


@dataclass(frozen=True)
class Scored:
    """A continuation's log-likelihood, whether greedy decoding would produce it, its tokens."""

    logprob: float
    greedy: bool
    token_logprobs: tuple[float, ...]


class Scorer:
    """Wraps a causal LM (``forward(idx_BT).logits_BTV``) and its tokenizer."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Tokenizer,
        max_seq_len: int,
        batch_size: int = 16,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_seq_len = max_seq_len
        self.batch_size = batch_size
        self.device = next(model.parameters()).device
        eos = tokenizer.token_to_id(EOS)
        if eos is None:
            raise ValueError(f"tokenizer has no {EOS} token")
        self.eos_id: int = eos

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added)."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        """Text of ``ids``."""
        return self.tokenizer.decode(ids)

    @torch.no_grad()
    def loglikelihood(self, requests: list[tuple[list[int], list[int]]]) -> list[Scored]:
        """Score each ``(context_ids, continuation_ids)``; an empty context starts with EOS."""
        rows: list[tuple[list[int], int]] = []  # (input+target ids, number of targets)
        for context, continuation in requests:
            if not continuation:
                raise ValueError("an empty continuation has no likelihood to score")
            if len(continuation) > self.max_seq_len:
                raise ValueError(
                    f"a continuation of {len(continuation)} tokens is longer than "
                    f"max_seq_len {self.max_seq_len}; score it with token_logprobs"
                )
            whole = ([self.eos_id] if not context else list(context)) + list(continuation)
            whole = whole[-(self.max_seq_len + 1) :]
            rows.append((whole, len(continuation)))
        out: list[Scored] = []
        for start in range(0, len(rows), self.batch_size):
            out += self._score_batch(rows[start : start + self.batch_size])
        return out

    def _score_batch(self, rows: list[tuple[list[int], int]]) -> list[Scored]:
        width = max(len(ids) for ids, _ in rows) - 1
        x_BT = torch.full((len(rows), width), self.eos_id, dtype=torch.long)
        for b, (ids, _) in enumerate(rows):
            x_BT[b, : len(ids) - 1] = torch.tensor(ids[:-1])
        logits_BTV = self.model(x_BT.to(self.device)).logits_BTV.float()
        logp_BTV = torch.log_softmax(logits_BTV, dim=-1).cpu()
        scored = []
        for b, (ids, n) in enumerate(rows):
            last = len(ids) - 1  # targets are ids[1:], predicted at positions 0..last-1
            targets = torch.tensor(ids[last - n + 1 :])
            logp_NV = logp_BTV[b, last - n : last]
            tok = logp_NV.gather(1, targets[:, None])[:, 0]
            greedy = bool((logp_NV.argmax(-1) == targets).all())
            scored.append(Scored(float(tok.sum()), greedy, tuple(float(v) for v in tok)))
        return scored

    @torch.no_grad()
    def token_logprobs(self, ids: list[int]) -> np.ndarray:
        """``log p(ids[i] | ids[:i])`` for i >= 1, in rolling windows of ``max_seq_len``.

        lm-evaluation-harness's windows (``get_rolling_token_windows``, context_len 1):
        each window predicts up to ``max_seq_len`` new tokens; the last, shorter one
        is given as much earlier text as fits.
        """
        logps: list[float] = []
        done, n, L = 1, len(ids), self.max_seq_len
        while done < n:
            end = min(n, done + L)
            context = ids[max(0, end - L - 1) : done]
            logps += self.loglikelihood([(context, ids[done:end])])[0].token_logprobs
            done = end
        return np.asarray(logps, dtype=np.float64)

    @torch.no_grad()
    def greedy(
        self,
        prompt: list[int],
        max_new_tokens: int,
        stop_ids: set[int] | frozenset[int] = frozenset(),
        stop_strings: tuple[str, ...] = (),
    ) -> list[int]:
        """Greedy continuation of ``prompt``, at most ``max_new_tokens``.

        It ends at EOS or a ``stop_ids`` token (not returned), or once its text holds
        one of ``stop_strings`` (the caller cuts the text there).
        """
        ids = list(prompt) or [self.eos_id]
        new: list[int] = []
        for _ in range(max_new_tokens):
            ctx = (ids + new)[-self.max_seq_len :]
            logits_V = self.model(torch.tensor([ctx], device=self.device)).logits_BTV[0, -1]
            token = int(torch.argmax(logits_V.float()))
            if token == self.eos_id or token in stop_ids:
                break
            new.append(token)
            if stop_strings and any(s in self.decode(new) for s in stop_strings):
                break
        return new
