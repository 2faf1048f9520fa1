"""Continuous batching: many sequences decode together; requests join and leave between steps.

``Engine.step()`` is one unit of work: decode one token for every running sequence (one
forward over the batch, each row at its own position in the KV cache), then admit waiting
requests (prefilled together, left-padded, in a cache of their own that is appended to the
running one), then drop finished sequences from the cache. Each step returns ``Delta``s:
the text each sequence may release now, its tokens and, when asked, their log-probs.

The engine is single-threaded and synchronous; ``superlab.serve.scheduler`` drives it from
a worker thread for the HTTP server. Under ``full`` (and ``sparse``) attention a sequence
ends with ``length`` when its context reaches ``max_seq_len``; ``sliding`` and ``chunked``
keep a bounded cache and go on.

Legend: B running sequences, T positions, V vocabulary.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field

import torch
from tokenizers import Tokenizer

from superlab.serve.sampling import (
    SamplingParams,
    apply_openai_penalties,
    apply_repetition_penalty,
    sample_next,
)
from superlab.serve.text import TextStream

EOS_TOKEN = "<|endoftext|>"


@dataclass
class GenRequest:
    """A prompt (token ids) to continue under ``params``; ``id`` names it in every Delta."""

    id: str
    prompt_ids: list[int]
    params: SamplingParams


@dataclass
class TokenLogprob:
    """A chosen token's log-probability and the ``top`` alternatives (id, logprob)."""

    token_id: int
    logprob: float
    top: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class Delta:
    """What one step produced for one request; ``finish_reason`` set on its last Delta.

    Reasons: ``length`` (max tokens or context), ``eos``, ``stop`` (a stop string), ``abort``,
    ``error`` (this request failed; ``error`` says why, the others go on).
    """

    request_id: str
    text: str
    token_ids: list[int]
    logprobs: list[TokenLogprob]
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    error: str | None = None  # set with finish reason ``error``: why this request failed


class _Seq:
    """A running request: its RNG, its text stream and what it generated."""

    def __init__(self, req: GenRequest, tokenizer: Tokenizer) -> None:
        self.req = req
        seed = req.params.seed if req.params.seed is not None else secrets.randbits(63)
        # manual_seed takes 0 <= seed < 2**64; a signed 64-bit seed (OpenAI's) maps into it.
        self.rng = torch.Generator().manual_seed(seed % 2**64)
        self.stream = TextStream(tokenizer, req.params.stop)
        self.generated: list[int] = []
        self.finish: str | None = None


def token_logprobs(logits_V: torch.Tensor, token: int, top_n: int) -> TokenLogprob:
    """``token``'s log-probability under ``logits_V`` and the ``top_n`` most likely tokens."""
    return _pick_logprobs(torch.log_softmax(logits_V.float(), dim=-1), token, top_n)


def _pick_logprobs(lp_V: torch.Tensor, token: int, top_n: int) -> TokenLogprob:
    top: list[tuple[int, float]] = []
    if top_n > 0:
        values, ids = torch.topk(lp_V, min(top_n, lp_V.numel()))
        top = list(zip(ids.tolist(), values.tolist(), strict=True))
    return TokenLogprob(token, float(lp_V[token]), top)


class Engine:
    """Decodes many requests at once with one KV cache whose rows come and go."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Tokenizer,
        max_seq_len: int,
        max_batch: int = 32,
        prefill_tokens: int = 1024,
    ) -> None:
        if not hasattr(model, "new_cache"):
            raise TypeError(f"{type(model).__name__} has no KV cache (new_cache); use Generator")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_seq_len, self.max_batch = max_seq_len, max_batch
        self.prefill_tokens = prefill_tokens
        self.eos_id = tokenizer.token_to_id(EOS_TOKEN)
        self.device = next(model.parameters()).device
        self.bounded = bool(getattr(model, "bounded_context", False))
        self.pending: deque[GenRequest] = deque()
        self.running: list[_Seq] = []  # row r of the cache is running[r]
        self.cache = None
        self._aborted: set[str] = set()

    def check_prompt(self, prompt_ids: list[int]) -> None:
        """A ValueError naming ``prompt`` when it cannot be decoded by this model."""
        if not prompt_ids:
            raise ValueError("prompt: empty after tokenization")
        if not self.bounded and len(prompt_ids) >= self.max_seq_len:
            raise ValueError(
                f"prompt: {len(prompt_ids)} tokens; the model's context is {self.max_seq_len} "
                "(prompt plus at least one new token)"
            )

    def submit(self, req: GenRequest) -> None:
        """Queue a request; it joins the running batch at the next step with room."""
        self.check_prompt(req.prompt_ids)
        self.pending.append(req)

    def abort(self, request_id: str) -> None:
        """Stop a request at the next step (its last Delta says ``abort``)."""
        self._aborted.add(request_id)

    @property
    def idle(self) -> bool:
        """Nothing running and nothing waiting."""
        return not self.running and not self.pending

    @torch.no_grad()
    def step(self) -> list[Delta]:
        """Decode one token for each running sequence, admit waiting ones, drop finished."""
        out: list[Delta] = []
        self._take_aborts(out)
        if self.running:
            last_B1 = torch.tensor([[s.generated[-1]] for s in self.running], device=self.device)
            logits_BV = self.model(last_B1, cache=self.cache).logits_BTV[:, -1].float()
            out += self._advance(self.running, logits_BV)
        room = self.max_batch - len(self.running)
        if room > 0 and self.pending:
            out += self._admit(room)
        self._drop_finished()
        return out

    def _take_aborts(self, out: list[Delta]) -> None:
        if not self._aborted:
            return
        for req in [r for r in self.pending if r.id in self._aborted]:
            self.pending.remove(req)
            out.append(Delta(req.id, "", [], [], "abort", len(req.prompt_ids), 0))
        for seq in self.running:
            if seq.req.id in self._aborted and seq.finish is None:
                seq.finish = "abort"
                out.append(self._delta(seq, "", [], []))
        self._aborted.clear()
        self._drop_finished()

    def _admit(self, room: int) -> list[Delta]:
        """Prefill waiting prompts (left-padded, in chunks) and append them to the batch."""
        batch: list[GenRequest] = []
        longest = 0
        while self.pending and len(batch) < room:
            n = len(self.pending[0].prompt_ids)
            if batch and max(longest, n) * (len(batch) + 1) > self.prefill_tokens:
                break
            longest = max(longest, n)
            batch.append(self.pending.popleft())
        try:
            return self._prefill(batch, longest)
        except Exception as e:  # a failed prefill fails its own requests only
            reason = f"generation failed in prefill: {type(e).__name__}: {e}"
            return [Delta(r.id, "", [], [], "error", len(r.prompt_ids), 0, reason) for r in batch]

    def _prefill(self, batch: list[GenRequest], T: int) -> list[Delta]:
        """Prefill ``batch`` (prompts up to ``T`` tokens) and append it to the running rows."""
        idx_BT = torch.zeros((len(batch), T), dtype=torch.long)
        valid_BT = torch.zeros((len(batch), T), dtype=torch.bool)
        for b, req in enumerate(batch):
            idx_BT[b, T - len(req.prompt_ids) :] = torch.tensor(req.prompt_ids)
            valid_BT[b, T - len(req.prompt_ids) :] = True
        idx_BT, valid_BT = idx_BT.to(self.device), valid_BT.to(self.device)
        cache = self.model.new_cache()
        chunk = max(1, self.prefill_tokens // len(batch))
        for start in range(0, T, chunk):  # a long prompt is prefilled in pieces
            logits_BTV = self.model(
                idx_BT[:, start : start + chunk],
                cache=cache,
                valid_BT=valid_BT[:, start : start + chunk],
            ).logits_BTV
        seqs = [_Seq(req, self.tokenizer) for req in batch]
        if self.cache is None:
            self.cache = cache
        else:
            self.cache.extend(cache)
        self.running += seqs
        return self._advance(seqs, logits_BTV[:, -1].float())

    def _advance(self, seqs: list[_Seq], logits_BV: torch.Tensor) -> list[Delta]:
        """Pick each sequence's next token from its row of logits; finish those that end.

        A row that raises (sampling, decoding, a stop check) fails its own request with
        finish reason ``error``; the other rows go on.
        """
        greedy_B = torch.argmax(logits_BV, dim=-1).tolist()
        out = []
        for seq, logits_V, greedy in zip(seqs, logits_BV, greedy_B, strict=True):
            try:
                out.append(self._advance_one(seq, logits_V, greedy))
            except Exception as e:  # any failure of one row is that row's
                out.append(self._fail(seq, e))
        return out

    def _advance_one(self, seq: _Seq, logits_V: torch.Tensor, greedy: int) -> Delta:
        p = seq.req.params
        if p.max_tokens == 0:
            seq.finish = "length"
            return self._delta(seq, seq.stream.finish(), [], [])
        token = self._next_token(seq, logits_V, greedy)
        lps = [token_logprobs(logits_V, token, p.logprobs)] if p.logprobs is not None else []
        if token == self.eos_id:
            seq.finish = "eos"
            return self._delta(seq, seq.stream.finish(), [], [])
        seq.generated.append(token)
        text = seq.stream.push(token)
        if seq.stream.stopped:
            seq.finish = "stop"
        elif len(seq.generated) >= p.max_tokens or (
            not self.bounded and len(seq.req.prompt_ids) + len(seq.generated) > self.max_seq_len
        ):
            seq.finish = "length"
            text += seq.stream.finish()
        return self._delta(seq, text, [token], lps)

    def _next_token(self, seq: _Seq, logits_V: torch.Tensor, greedy: int) -> int:
        """The sampled token for one row (``greedy`` is its argmax, computed for the batch)."""
        p = seq.req.params
        if p.greedy:
            return greedy
        scored_V = apply_repetition_penalty(
            logits_V, seq.req.prompt_ids + seq.generated, p.repetition_penalty
        )
        scored_V = apply_openai_penalties(
            scored_V, seq.generated, p.presence_penalty, p.frequency_penalty, p.logit_bias
        )
        return sample_next(scored_V, p.temperature, p.top_k, p.top_p, seq.rng)

    def _fail(self, seq: _Seq, e: Exception) -> Delta:
        seq.finish = "error"
        d = self._delta(seq, "", [], [])
        d.error = f"generation failed: {type(e).__name__}: {e}"
        return d

    def _delta(self, seq: _Seq, text: str, tokens: list[int], lps: list[TokenLogprob]) -> Delta:
        n_prompt, n_gen = len(seq.req.prompt_ids), len(seq.generated)
        return Delta(seq.req.id, text, tokens, lps, seq.finish, n_prompt, n_gen)

    def _drop_finished(self) -> None:
        keep = [r for r, s in enumerate(self.running) if s.finish is None]
        if len(keep) == len(self.running):
            return
        self.running = [self.running[r] for r in keep]
        if not keep:
            self.cache = None
        elif self.cache is not None:
            self.cache.select(keep)

    @torch.no_grad()
    def score(self, ids: list[int], top_n: int = 0) -> list[TokenLogprob | None]:
        """Log-probability of each token given those before it (None for the first).

        Runs in chunks of ``prefill_tokens`` through a KV cache, so memory stays bounded;
        under full attention the ids must fit in ``max_seq_len``.
        """
        if not ids:
            return []
        if not self.bounded and len(ids) > self.max_seq_len:
            raise ValueError(f"prompt: {len(ids)} tokens; the context is {self.max_seq_len}")
        idx_1T = torch.tensor([ids], device=self.device)
        cache = self.model.new_cache()
        out: list[TokenLogprob | None] = [None]
        for start in range(0, len(ids), self.prefill_tokens):
            logits_TV = self.model(
                idx_1T[:, start : start + self.prefill_tokens], cache=cache
            ).logits_BTV[0]
            lp_TV = torch.log_softmax(logits_TV.float(), dim=-1)
            for t in range(lp_TV.shape[0]):
                nxt = start + t + 1
                if nxt < len(ids):
                    out.append(_pick_logprobs(lp_TV[t], ids[nxt], top_n))
        return out
