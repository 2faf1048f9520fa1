"""Continuous batching: many sequences decode together; requests join and leave between steps.

This is the one decode loop: the HTTP server (through ``superlab.serve.scheduler``),
``Generator.generate`` (a batch of one) and ``Generator.generate_many`` all run it.

``Engine.step()`` is one unit of work: decode one token for every running sequence (one
forward over the batch, each row at its own position in the KV cache), then admit waiting
requests (prefilled together, left-padded, in a cache of their own that is appended to the
running one), then drop finished sequences from the cache. Each step returns ``Delta``s:
the text each sequence may release now, its tokens and, when asked, their log-probs.

The context limit. Under ``sliding`` and ``chunked`` attention (``model.bounded_context``)
every layer keeps a bounded cache and decoding simply goes on. Under ``full`` (and
``sparse``) attention the model has seen at most ``max_seq_len`` positions, and the engine
does one of two things:

- by default (the server) a sequence ends with ``length`` when its context passes
  ``max_seq_len``, and a prompt must leave room for one new token: under load nobody's
  request turns into a re-encode of ``max_seq_len`` tokens per step;
- with ``crop_context=True`` (``Generator.generate``) it goes on: from then on that row
  leaves the KV cache and each step re-runs its last ``max_seq_len`` tokens (no cache),
  in one forward with the other rows that do; a longer prompt starts that way.

A model without a KV cache (a ``forward`` without ``cache``, or no ``new_cache``: a
wrapped or foreign model) decodes every row that way, its context cropped to the last
``max_seq_len`` tokens, so it needs ``crop_context=True`` to run past the limit too.

Sampling happens on the CPU, with one ``torch.Generator`` per request seeded from
``params.seed``: the same request gives the same tokens whatever else is in the batch and
whichever device runs the model (a CPU generator cannot sample a CUDA tensor anyway).

The engine is single-threaded and synchronous; ``superlab.serve.scheduler`` drives it from
a worker thread for the HTTP server.

Legend: B running sequences, T positions, V vocabulary.
"""

from __future__ import annotations

import inspect
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
        crop_context: bool = False,
    ) -> None:
        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_seq_len, self.max_batch = max_seq_len, max_batch
        self.prefill_tokens, self.crop_context = prefill_tokens, crop_context
        self.eos_id = tokenizer.token_to_id(EOS_TOKEN)
        self.device = next(model.parameters()).device
        self.cached = "cache" in inspect.signature(model.forward).parameters and hasattr(
            model, "new_cache"
        )
        # Local attention keeps a bounded cache, so it never has to crop the context.
        self.bounded = self.cached and bool(getattr(model, "bounded_context", False))
        self.pending: deque[GenRequest] = deque()
        self.running: list[_Seq] = []  # row r of the cache is running[r]
        self.rerun: list[_Seq] = []  # rows outside the cache: their context re-run each step
        self.cache = None
        self._aborted: set[str] = set()

    def check_prompt(self, prompt_ids: list[int]) -> None:
        """A ValueError naming ``prompt`` when it cannot be decoded by this model."""
        if not prompt_ids:
            raise ValueError("prompt: empty after tokenization")
        if not self.bounded and not self.crop_context and len(prompt_ids) >= self.max_seq_len:
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
        return not self.running and not self.rerun and not self.pending

    @property
    def n_running(self) -> int:
        """Sequences decoding now, in the cache or re-run."""
        return len(self.running) + len(self.rerun)

    @torch.no_grad()
    def step(self) -> list[Delta]:
        """Decode one token for each running sequence, admit waiting ones, drop finished."""
        out: list[Delta] = []
        self._take_aborts(out)
        if self.running:
            last_B1 = torch.tensor([[s.generated[-1]] for s in self.running], device=self.device)
            logits_BV = self.model(last_B1, cache=self.cache).logits_BTV[:, -1].float()
            out += self._advance(self.running, logits_BV)
        if self.rerun:
            out += self._advance(self.rerun, self._rerun_logits(self.rerun))
        room = self.max_batch - self.n_running
        if room > 0 and self.pending:
            out += self._admit(room)
        self._drop_finished()
        return out

    def _past_context(self, n: int) -> bool:
        """A context of ``n`` tokens is more than the model sees (unbounded attention)."""
        return not self.bounded and n > self.max_seq_len

    def _take_aborts(self, out: list[Delta]) -> None:
        if not self._aborted:
            return
        for req in [r for r in self.pending if r.id in self._aborted]:
            self.pending.remove(req)
            out.append(Delta(req.id, "", [], [], "abort", len(req.prompt_ids), 0))
        for seq in self.running + self.rerun:
            if seq.req.id in self._aborted and seq.finish is None:
                seq.finish = "abort"
                out.append(self._delta(seq, "", [], []))
        self._aborted.clear()
        self._drop_finished()

    def _admit(self, room: int) -> list[Delta]:
        """Prefill waiting prompts (left-padded, in chunks) and append them to the batch;
        a prompt that the cache cannot hold (no cache, or past the context) is re-run."""
        batch: list[GenRequest] = []
        rerun: list[GenRequest] = []
        longest = 0
        while self.pending and len(batch) + len(rerun) < room:
            n = len(self.pending[0].prompt_ids)
            if not self.cached or self._past_context(n):
                rerun.append(self.pending.popleft())
                continue
            if batch and max(longest, n) * (len(batch) + 1) > self.prefill_tokens:
                break
            longest = max(longest, n)
            batch.append(self.pending.popleft())
        out: list[Delta] = []
        for reqs, start in ((batch, self._prefill), (rerun, self._start_rerun)):
            if not reqs:
                continue
            try:
                out += start(reqs, longest)
            except Exception as e:  # a failed prefill fails its own requests only
                reason = f"generation failed in prefill: {type(e).__name__}: {e}"
                out += [
                    Delta(r.id, "", [], [], "error", len(r.prompt_ids), 0, reason) for r in reqs
                ]
        return out

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

    def _start_rerun(self, reqs: list[GenRequest], _: int) -> list[Delta]:
        """Start requests outside the cache: their first token from their cropped prompt."""
        seqs = [_Seq(req, self.tokenizer) for req in reqs]
        self.rerun += seqs
        return self._advance(seqs, self._rerun_logits(seqs))

    def _rerun_logits(self, seqs: list[_Seq]) -> torch.Tensor:
        """Next-token logits ``(B, V)`` from each row's last ``max_seq_len`` tokens, no cache;
        rows of the same length share a forward."""
        ctxs = [(s.req.prompt_ids + s.generated)[-self.max_seq_len :] for s in seqs]
        logits: list[torch.Tensor | None] = [None] * len(seqs)
        by_len: dict[int, list[int]] = {}
        for r, ctx in enumerate(ctxs):
            by_len.setdefault(len(ctx), []).append(r)
        for rows in by_len.values():
            idx_BT = torch.tensor([ctxs[r] for r in rows], device=self.device)
            logits_BV = self.model(idx_BT).logits_BTV[:, -1].float()
            for b, r in enumerate(rows):
                logits[r] = logits_BV[b]
        return torch.stack([x for x in logits if x is not None])

    def _advance(self, seqs: list[_Seq], logits_BV: torch.Tensor) -> list[Delta]:
        """Pick each sequence's next token from its row of logits; finish those that end.

        A row that raises (sampling, decoding, a stop check) fails its own request with
        finish reason ``error``; the other rows go on.
        """
        greedy_B = torch.argmax(logits_BV, dim=-1).tolist()
        # Sampled rows are sampled on the CPU (their RNG is a CPU generator): one copy.
        sampled = any(not s.req.params.greedy for s in seqs)
        cpu_BV = logits_BV.cpu() if sampled else logits_BV
        out = []
        for seq, logits_V, greedy in zip(seqs, cpu_BV, greedy_B, strict=True):
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
            not self.crop_context
            and self._past_context(len(seq.req.prompt_ids) + len(seq.generated))
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
        """Drop finished rows; a cached row whose context passed ``max_seq_len`` (only
        with ``crop_context``: the others ended) leaves the cache to be re-run."""
        self.rerun = [s for s in self.rerun if s.finish is None]
        keep = []
        for r, s in enumerate(self.running):
            if s.finish is not None:
                continue
            if self._past_context(len(s.req.prompt_ids) + len(s.generated)):
                self.rerun.append(s)
            else:
                keep.append(r)
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

        Runs in chunks of ``prefill_tokens`` through a KV cache, so memory stays bounded
        (a model without a cache: one forward); under full attention the ids must fit in
        ``max_seq_len``.
        """
        if not ids:
            return []
        if self._past_context(len(ids)):
            raise ValueError(f"prompt: {len(ids)} tokens; the context is {self.max_seq_len}")
        idx_1T = torch.tensor([ids], device=self.device)
        cache = self.model.new_cache() if self.cached else None
        chunk = self.prefill_tokens if self.cached else len(ids)
        out: list[TokenLogprob | None] = [None]
        for start in range(0, len(ids), chunk):
            piece_1T = idx_1T[:, start : start + chunk]
            logits_TV = (
                self.model(piece_1T, cache=cache) if self.cached else self.model(piece_1T)
            ).logits_BTV[0]
            lp_TV = torch.log_softmax(logits_TV.float(), dim=-1)
            for t in range(lp_TV.shape[0]):
                nxt = start + t + 1
                if nxt < len(ids):
                    out.append(_pick_logprobs(lp_TV[t], ids[nxt], top_n))
        return out
