"""Continuous batching: many sequences decode together; requests join and leave between steps.

This is the one decode loop: the HTTP server (through ``superlab.serve.scheduler``),
``Generator.generate`` (a batch of one) and ``Generator.generate_many`` all run it.

``Engine.step()`` is one unit of work: admit waiting requests while the batch has room
and the paged KV cache (``superlab.model.paged_cache``) has free blocks for their prompts;
then one forward decodes one token for every running sequence (each row at its own
position) and one forward prefills prompt chunks, at most ``prefill_tokens`` prompt tokens
a step (chunked prefill: a long prompt takes several steps, and the running sequences get a
token at each of them); a sequence whose context is all in the cache samples its next
token; finished sequences give their blocks back. Joining or leaving copies no other
sequence's cache. Rows of one forward are padded to its longest (keys for decode rows,
tokens for prefill chunks), so rows of very different lengths go in separate forwards
(``_groups``). Each step returns ``Delta``s: the text each sequence may release now, its
tokens and, when asked, their log-probs.

Blocks. When a decode step finds no free block, the newest running sequence is preempted:
its blocks are freed and it waits, first in line, keeping its tokens, RNG and text stream;
readmitted, it prefills prompt and generated tokens and goes on, its output unchanged.
Prefix caching (on unless ``prefix_caching=False``): full blocks are found by a hash
chained over every token up to them (plus the pixels of the images they hold), seeded with
``cache_namespace`` (the model and its weights; default: random per engine), and a prompt
whose first blocks are cached skips their prefill; the last prompt token is always
computed. Models with token shift or smeared keys carry the previous token's vectors,
which cached blocks do not store, so they are not prefix-cached. A request's images
(``GenRequest.pixels_NCHW``) go to the model with the prefill chunk that holds their
placeholders; a chunk never ends inside an image.

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

Legend: B running sequences, T positions, V vocabulary, N images.
"""

from __future__ import annotations

import hashlib
import inspect
import secrets
import time
from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import torch
from tokenizers import Tokenizer

from superlab.model.paged_cache import PagedKVCache
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
    """A prompt (token ids) to continue under ``params``; ``id`` names it in every Delta.

    ``pixels_NCHW``: the prompt's images in placeholder order (``superlab.model.vision``),
    passed to the model with the prefill chunk that holds their placeholders; None: text.
    """

    id: str
    prompt_ids: list[int]
    params: SamplingParams
    pixels_NCHW: torch.Tensor | None = None


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
    """A running request: its RNG, its text stream, what it generated and its place in the
    KV cache (``computed``: tokens whose keys are stored)."""

    def __init__(self, req: GenRequest, tokenizer: Tokenizer, order: int = 0) -> None:
        self.req = req
        seed = req.params.seed if req.params.seed is not None else secrets.randbits(63)
        # manual_seed takes 0 <= seed < 2**64; a signed 64-bit seed (OpenAI's) maps into it.
        self.rng = torch.Generator().manual_seed(seed % 2**64)
        self.stream = TextStream(tokenizer, req.params.stop)
        self.generated: list[int] = []
        self.finish: str | None = None
        self.order = order  # admission order: the newest is preempted first
        self.tokens = list(req.prompt_ids)  # the context: prompt, then generated
        self.computed = 0
        self.hashes: list[bytes] = []  # chained hashes of the context's full blocks
        self.images: list[tuple[int, int]] = []  # each image's placeholder span [start, end)
        self.image_keys: list[bytes] = []  # each image's pixel digest


def _pixel_digests(pixels_NCHW: torch.Tensor) -> list[bytes]:
    """Each image's digest, for the prefix hashes of the blocks that hold it."""
    out = []
    for img in pixels_NCHW.detach().to("cpu", torch.float32):
        out.append(hashlib.blake2b(img.contiguous().numpy().tobytes(), digest_size=16).digest())
    return out


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
    """Decodes many requests at once over a paged KV cache; requests join and leave freely.

    ``prefill_tokens``: prompt tokens prefilled per step. ``kv_block_size``: positions per
    KV block; ``kv_cache_blocks``: blocks per layer group (None: ``max_batch`` sequences of
    ``max_seq_len``, plus a block each). ``prefix_caching``: reuse cached prompt-prefix
    blocks, under ``cache_namespace`` (the model and its weights; None: random, shared with
    nothing). ``crop_context``: see the module docstring.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Tokenizer,
        max_seq_len: int,
        max_batch: int = 32,
        prefill_tokens: int = 1024,
        crop_context: bool = False,
        kv_block_size: int = 16,
        kv_cache_blocks: int | None = None,
        prefix_caching: bool = True,
        cache_namespace: str | bytes | None = None,
        prefill_share: float | None = 0.5,
    ) -> None:
        if prefill_tokens < 1:
            raise ValueError(f"prefill_tokens: {prefill_tokens}; must be at least 1")
        if prefill_share is not None and not prefill_share > 0:
            raise ValueError(f"prefill_share: {prefill_share}; must be > 0 (or None: off)")
        if kv_block_size < 1:
            raise ValueError(f"kv_block_size: {kv_block_size}; must be at least 1")
        if kv_cache_blocks is not None and kv_cache_blocks < 1:
            raise ValueError(f"kv_cache_blocks: {kv_cache_blocks}; must be at least 1")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_seq_len, self.max_batch = max_seq_len, max_batch
        self.prefill_tokens, self.crop_context = prefill_tokens, crop_context
        self.prefill_share = prefill_share
        # Measured, for the time share: seconds of the last step's decode forwards, and
        # seconds per prompt token of the last prefill forward (None: not measured yet).
        self._decode_s: float | None = None
        self._prefill_s_per_token: float | None = None
        self.eos_id = tokenizer.token_to_id(EOS_TOKEN)
        self.device = next(model.parameters()).device
        self.cached = "cache" in inspect.signature(model.forward).parameters and hasattr(
            model, "new_paged_cache"
        )
        # A prefill asks for its last position's logits only, when the model can say so.
        self.last_only = "last_only" in inspect.signature(model.forward).parameters
        # Local attention keeps a bounded cache, so it never has to crop the context.
        self.bounded = self.cached and bool(getattr(model, "bounded_context", False))
        self.block_size = kv_block_size
        # Default: max_batch sequences of max_seq_len, plus one block each for the block a
        # sliding window or chunk straddles.
        per_seq = -(-max_seq_len // kv_block_size) + 1
        self.num_blocks = kv_cache_blocks or max_batch * per_seq
        cfg = getattr(model, "cfg", None)
        # Token shift and smeared keys carry the previous token's vectors, which a cached
        # block does not store: such models compute every prompt.
        carries = bool(getattr(cfg, "token_shift", False) or getattr(cfg, "smear_keys", False))
        self.prefix_caching = prefix_caching and self.cached and not carries
        if cache_namespace is None:  # nothing is ever shared across engines (weights)
            cache_namespace = secrets.token_bytes(16)
        if isinstance(cache_namespace, str):
            cache_namespace = cache_namespace.encode()
        self.cache_namespace: bytes = hashlib.blake2b(cache_namespace, digest_size=16).digest()
        vision = getattr(cfg, "vision", None)
        self.image_id: int | None = None if vision is None else vision.image_token_id
        self.image_len = 0 if vision is None else vision.tokens_per_image
        self.pending: deque[GenRequest] = deque()
        self.running: list[_Seq] = []  # in the paged cache, oldest first
        self.preempted: list[_Seq] = []  # out of the cache, to recompute (oldest first)
        self.rerun: list[_Seq] = []  # rows outside the cache: their context re-run each step
        self.kv: PagedKVCache | None = None  # built at the first admission
        self._caps: list[int | None] = []  # per layer group: most blocks a prompt needs
        self._aborted: set[str] = set()
        self._admitted = 0
        self._counts = {
            "prefix_cache_queries": 0,
            "prefix_cache_hits": 0,
            "preemptions": 0,
            "prefill_tokens_last_step": 0,
            "decode_tokens_last_step": 0,
        }

    def check_prompt(self, prompt_ids: list[int]) -> None:
        """A ValueError naming ``prompt`` when it cannot be decoded by this model."""
        if not prompt_ids:
            raise ValueError("prompt: empty after tokenization")
        if not self.bounded and not self.crop_context and len(prompt_ids) >= self.max_seq_len:
            raise ValueError(
                f"prompt: {len(prompt_ids)} tokens; the model's context is {self.max_seq_len} "
                "(prompt plus at least one new token)"
            )
        blocks = len(prompt_ids) // self.block_size + 1
        rerun = self.crop_context and self._past_context(len(prompt_ids))
        if self.cached and not self.bounded and not rerun and blocks > self.num_blocks:
            raise ValueError(
                f"prompt: {len(prompt_ids)} tokens need {blocks} KV blocks of "
                f"{self.block_size}; the cache has {self.num_blocks} (kv_cache_blocks)"
            )

    def submit(self, req: GenRequest) -> None:
        """Queue a request; it joins the running batch at the next step with room."""
        self.check_prompt(req.prompt_ids)
        self._image_spans(req)  # a ValueError naming pixels_NCHW when they do not match
        self.pending.append(req)

    def abort(self, request_id: str) -> None:
        """Stop a request at the next step (its last Delta says ``abort``)."""
        self._aborted.add(request_id)

    @property
    def idle(self) -> bool:
        """Nothing running and nothing waiting."""
        return not self.running and not self.rerun and not self.pending and not self.preempted

    @property
    def n_running(self) -> int:
        """Sequences decoding now, in the cache or re-run."""
        return len(self.running) + len(self.rerun)

    def stats(self) -> dict[str, float]:
        """Cache and scheduling counters: prefix-cache query and hit tokens (and their
        ratio), KV blocks used and free (summed over layer groups), preemptions, and the
        prefill and decode tokens of the last step."""
        out: dict[str, float] = dict(self._counts)
        q = self._counts["prefix_cache_queries"]
        out["prefix_cache_hit_rate"] = self._counts["prefix_cache_hits"] / q if q else 0.0
        if self.kv is None:
            groups = len({a.model_dump_json() for a in self._attention_configs()})
            out["kv_blocks_used"], out["kv_blocks_free"] = 0, groups * self.num_blocks
        else:
            out["kv_blocks_used"], out["kv_blocks_free"] = self.kv.blocks_used, self.kv.blocks_free
        return out

    def _attention_configs(self) -> list[Any]:
        cfg = getattr(self.model, "cfg", None)
        if not self.cached or cfg is None:
            return []
        return [cfg.attention_for(i) for i in range(cfg.n_layers)]

    @torch.no_grad()
    def step(self) -> list[Delta]:
        """Re-run rows past the cache, admit waiting requests, then one forward decoding a
        token for every running sequence and one prefilling prompt chunks; drop finished."""
        out: list[Delta] = []
        self._counts["prefill_tokens_last_step"] = self._counts["decode_tokens_last_step"] = 0
        self._take_aborts(out)
        if self.rerun:
            out += self._advance(self.rerun, self._rerun_logits(self.rerun))
        if (self.pending or self.preempted) and self.n_running < self.max_batch:
            out += self._admit()
        if self.running:
            out += self._step_cached()
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
        for seq in self.running + self.rerun + self.preempted:
            if seq.req.id in self._aborted and seq.finish is None:
                seq.finish = "abort"
                out.append(self._delta(seq, "", [], []))
        self._aborted.clear()
        self._drop_finished()

    # -- admission ------------------------------------------------------------------------

    def _cache(self) -> PagedKVCache:
        if self.kv is None:
            self.kv = self.model.new_paged_cache(self.num_blocks, self.block_size)  # type: ignore[operator]
            P = self.block_size
            # Blocks a bounded group may need at once: its bound plus a prefill chunk.
            self._caps = [
                (g.kind.bound(g.cfg) + self.prefill_tokens) // P + 2 if g.bounded else None
                for g in self.kv.groups
            ]
        return self.kv

    def _admit(self) -> list[Delta]:
        """Start waiting sequences (preempted ones first) while the batch has room and the
        cache has blocks for their prompts; a prompt the cache cannot hold (no cache, or
        past the context) is re-run."""
        rerun: list[GenRequest] = []
        out: list[Delta] = []
        while self.n_running + len(rerun) < self.max_batch:
            resumed = bool(self.preempted)
            if resumed:
                seq = self.preempted[0]
            elif self.pending:
                req = self.pending[0]
                if not self.cached or self._past_context(len(req.prompt_ids)):
                    rerun.append(self.pending.popleft())
                    continue
                seq = _Seq(req, self.tokenizer, self._admitted)
            else:
                break
            try:
                if not self._start_cached(seq):
                    break
            except Exception as e:  # a request that cannot start fails alone
                reason = f"generation failed in prefill: {type(e).__name__}: {e}"
                seq.finish = "error"
                out.append(self._delta(seq, "", [], []))
                out[-1].error = reason
                if self.kv is not None and seq in self.kv.seqs:
                    self.kv.remove(seq)
            if resumed:
                self.preempted.pop(0)
            else:
                self.pending.popleft()
                self._admitted += 1
            if seq.finish is None:
                self.running.append(seq)
        if rerun:
            try:
                out += self._start_rerun(rerun)
            except Exception as e:  # a failed start fails its own requests only
                reason = f"generation failed in prefill: {type(e).__name__}: {e}"
                out += [
                    Delta(r.id, "", [], [], "error", len(r.prompt_ids), 0, reason) for r in rerun
                ]
        return out

    def _start_cached(self, seq: _Seq) -> bool:
        """Give ``seq`` a place in the cache, on its cached prefix blocks when there are;
        False (nothing changed) when the free blocks cannot hold its prompt now."""
        kv = self._cache()
        if not seq.images and seq.req.pixels_NCHW is not None:
            seq.images = self._image_spans(seq.req)
            if self.prefix_caching:
                seq.image_keys = _pixel_digests(seq.req.pixels_NCHW)
        kv.add(seq)
        hit = 0
        if self.prefix_caching:
            seq.hashes = []
            self._extend_hashes(seq, len(seq.tokens))
            kv.set_hashes(seq, seq.hashes)
            limit = self._image_safe(seq, (len(seq.tokens) - 1) // self.block_size)
            hit = kv.lookup(seq.hashes[:limit])
            if hit:
                kv.attach(seq, seq.hashes[:hit])
        need = self._need(seq)
        for other in self.running:  # what admitted prompts still need is spoken for
            need = [a + b for a, b in zip(need, self._need(other), strict=True)]
        if self.running and not kv.fits(need):
            kv.remove(seq)
            return False
        seq.computed = hit * self.block_size
        if self.prefix_caching:
            self._counts["prefix_cache_queries"] += len(seq.tokens)
            self._counts["prefix_cache_hits"] += seq.computed
        return True

    def _need(self, seq: _Seq) -> list[int]:
        """Blocks per group ``seq`` still needs for its context (bounded groups: capped)."""
        assert self.kv is not None
        need = self.kv.blocks_for(seq, len(seq.tokens))
        return [n if cap is None else min(n, cap) for n, cap in zip(need, self._caps, strict=True)]

    def _preempt(self, seq: _Seq) -> None:
        """Take ``seq`` out of the cache (its blocks freed); it is recomputed later."""
        assert self.kv is not None
        self.kv.remove(seq)
        self.running.remove(seq)
        seq.computed, seq.hashes = 0, []
        self.preempted.append(seq)
        self.preempted.sort(key=lambda s: s.order)
        self._counts["preemptions"] += 1

    # -- prefix hashes and images ---------------------------------------------------------

    def _extend_hashes(self, seq: _Seq, n: int) -> None:
        """Chained hashes of the full blocks among the first ``n`` tokens: block j's hash
        covers the namespace, every token up to the end of block j and the pixels of the
        images whose placeholders it holds."""
        P = self.block_size
        for j in range(len(seq.hashes), min(n, len(seq.tokens)) // P):
            h = hashlib.blake2b(seq.hashes[-1] if seq.hashes else self.cache_namespace,
                                digest_size=16)  # fmt: skip
            h.update(array("q", seq.tokens[j * P : (j + 1) * P]).tobytes())
            for (a, e), key in zip(seq.images, seq.image_keys, strict=True):
                if a < (j + 1) * P and e > j * P:
                    h.update(key)
            seq.hashes.append(h.digest())

    def _image_spans(self, req: GenRequest) -> list[tuple[int, int]]:
        """Each image's placeholder span in the prompt; a ValueError naming ``pixels_NCHW``
        when they do not match the images."""
        pixels = req.pixels_NCHW
        if pixels is None:
            return []
        if self.image_id is None:
            raise ValueError("pixels_NCHW: images given to a text-only model")
        if pixels.dim() != 4:
            raise ValueError(f"pixels_NCHW: expected (N, C, H, W), got {tuple(pixels.shape)}")
        spans: list[tuple[int, int]] = []
        ids = req.prompt_ids
        t = 0
        while t < len(ids):
            if ids[t] != self.image_id:
                t += 1
                continue
            end = t
            while end < len(ids) and ids[end] == self.image_id:
                end += 1
            if (end - t) % self.image_len:
                raise ValueError(
                    f"pixels_NCHW: a run of {end - t} image placeholders is not a whole number "
                    f"of images of {self.image_len}"
                )
            spans += [(a, a + self.image_len) for a in range(t, end, self.image_len)]
            t = end
        if len(spans) != pixels.shape[0]:
            raise ValueError(
                f"pixels_NCHW: {pixels.shape[0]} images for {len(spans)} in the prompt"
            )
        return spans

    def _image_safe(self, seq: _Seq, blocks: int) -> int:
        """At most ``blocks`` leading blocks, ending outside every image's placeholders."""
        P = self.block_size
        for a, e in reversed(seq.images):
            if a < blocks * P < e:
                blocks = a // P
        return blocks

    def _chunk(self, seq: _Seq, n: int) -> int:
        """Up to ``n`` tokens from ``seq.computed`` on, never ending inside an image; when
        an image starts right there, at least that whole image."""
        start, end = seq.computed, seq.computed + n
        for a, e in seq.images:
            if a < end < e:
                end = a if a > start else e
        return end - start

    def _pixels(self, seq: _Seq, start: int, end: int) -> list[torch.Tensor]:
        pixels = seq.req.pixels_NCHW
        if pixels is None:
            return []
        return [pixels[i : i + 1] for i, (a, _) in enumerate(seq.images) if start <= a < end]

    # -- a cached step ----------------------------------------------------------------------

    def _step_cached(self) -> list[Delta]:
        """One decode forward (one token per decoding row) and one prefill forward (prompt
        chunks within ``prefill_tokens``); a row that finishes its context samples."""
        kv = self._cache()
        out: list[Delta] = []
        decode, prefill = [], []
        for s in self.running:
            last_image = s.images[-1][1] if s.images else 0
            if len(s.tokens) - s.computed == 1 and s.computed >= last_image:
                decode.append(s)
            else:
                prefill.append(s)
        rows: list[_Seq] = []
        for s in decode:
            if s not in self.running:
                continue  # preempted for an older row
            while not kv.reserve(s, s.computed + 1):
                victim = max(self.running, key=lambda r: r.order)
                if victim is s and len(self.running) == 1:
                    s.finish = "length"  # alone, and the cache holds no more
                    out.append(self._delta(s, s.stream.finish(), [], []))
                    break
                self._preempt(victim)
                if victim is s:
                    break
            else:
                rows.append(s)
        prefilling = [s for s in prefill if s in self.running]
        waiting = len(prefilling) + len(self.pending) + len(self.preempted)
        chunks = self._plan_prefill(prefilling, self._prefill_budget(len(rows), waiting))
        if not rows and not chunks and self.running:  # stuck: the cache is full
            if len(self.running) > 1:
                self._preempt(max(self.running, key=lambda r: r.order))
            else:
                s = self.running[0]
                s.finish = "error"
                out.append(self._delta(s, "", [], []))
                out[-1].error = (
                    f"the KV cache ({self.num_blocks} blocks of {self.block_size}) cannot hold "
                    "this request's context (kv_cache_blocks)"
                )
        self._counts["decode_tokens_last_step"] = len(rows)
        started = time.perf_counter()
        # Rows attend to their keys padded to the longest row's: rows of very different
        # context lengths decode in separate forwards.
        for group in self._groups([(s, s.computed + 1) for s in rows]):
            batch = [s for s, _ in group]
            if self.prefix_caching:
                for s in batch:
                    self._extend_hashes(s, s.computed + 1)
            kv.bind(batch)
            last_B1 = torch.tensor([[s.tokens[s.computed]] for s in batch], device=self.device)
            logits_BV = self.model(last_B1, cache=kv).logits_BTV[:, -1].float()
            for s in batch:
                s.computed += 1
            out += self._advance(batch, logits_BV)
        if rows:
            self._decode_s = time.perf_counter() - started
        # A padded prompt slot costs a whole token's compute (every layer), a padded key only
        # its attention: prefill forwards allow no waste beyond the 1.5x rule.
        for group in self._groups(chunks, waste=0):
            try:
                out += self._prefill(group)
            except Exception as e:  # a failed prefill fails its own requests only
                reason = f"generation failed in prefill: {type(e).__name__}: {e}"
                for s, _ in group:
                    s.finish = "error"
                    out.append(self._delta(s, "", [], []))
                    out[-1].error = reason
        return out

    def _plan_prefill(self, seqs: list[_Seq], budget: int) -> list[tuple[_Seq, int]]:
        """Prompt chunks for this step, oldest sequence first, within ``budget`` tokens (an
        image may take a first chunk past it); each with its blocks reserved."""
        assert self.kv is not None
        chunks: list[tuple[_Seq, int]] = []
        for s in seqs:
            if budget <= 0:
                break
            n = self._chunk(s, min(len(s.tokens) - s.computed, budget))
            while n > 0 and not self.kv.reserve(s, s.computed + n):
                n = self._chunk(s, n // 2) if n > 1 else 0
                if n > 0 and self._chunk(s, n) != n:
                    n = 0
            if n <= 0 or (chunks and n > budget):
                continue
            chunks.append((s, n))
            budget -= n
        return chunks

    def _prefill_budget(self, decoding: int, waiting: int = 1) -> int:
        """Prompt tokens this step may prefill: ``prefill_tokens``; while ``decoding``
        sequences decode and ``prefill_share`` is set, only as many as take about ``share``
        times the decode forwards' time (each measured at the last step that had it), at
        least one block's worth.

        ``share`` is ``prefill_share``, or ``waiting / decoding`` when more requests wait for
        their first token (prefilling, queued or preempted) than that: each request, waiting
        or decoding, gets about the same time. So a long prompt arriving costs running
        streams at most about ``1 + prefill_share`` times their time per token, and a burst
        of arrivals is not admitted a block a step behind a few decoding streams."""
        budget = self.prefill_tokens
        if self.prefill_share is None or not decoding or self._decode_s is None:
            return budget
        if self._prefill_s_per_token is None:  # not measured yet: a small first chunk
            return min(budget, self.block_size)
        share = max(self.prefill_share, waiting / decoding)
        fits = int(share * self._decode_s / self._prefill_s_per_token)
        return min(budget, max(self.block_size, fits))

    @staticmethod
    def _groups(rows: list[tuple[_Seq, int]], waste: int = 8192) -> list[list[tuple[_Seq, int]]]:
        """Rows in forwards of similar lengths (prefill chunks: tokens; decode rows: keys),
        each padded to its longest: longest first, a row joins a forward while the padded
        total stays within 1.5x the real one or wastes at most ``waste`` slots (decode rows:
        8192 padded keys cost less than another forward; prefill passes 0)."""
        groups: list[list[tuple[_Seq, int]]] = []
        real = 0
        for s, n in sorted(rows, key=lambda c: -c[1]):
            padded = (len(groups[-1]) + 1) * groups[-1][0][1] if groups else 0
            if groups and (2 * padded <= 3 * (real + n) or padded - real - n <= waste):
                groups[-1].append((s, n))
                real += n
            else:
                groups.append([(s, n)])
                real = n
        return groups

    def _prefill(self, chunks: list[tuple[_Seq, int]]) -> list[Delta]:
        """One forward over the chunks (right-padded rows, lengths alike: ``_groups``); rows
        that reach the end of their context sample their next token."""
        assert self.kv is not None
        T = max(n for _, n in chunks)
        pad = 1 if self.image_id == 0 else 0
        idx_BT = torch.full((len(chunks), T), pad, dtype=torch.long)
        valid_BT = torch.zeros((len(chunks), T), dtype=torch.bool)
        pixels: list[torch.Tensor] = []
        for b, (s, n) in enumerate(chunks):
            idx_BT[b, :n] = torch.tensor(s.tokens[s.computed : s.computed + n])
            valid_BT[b, :n] = True
            pixels += self._pixels(s, s.computed, s.computed + n)
            if self.prefix_caching:
                self._extend_hashes(s, s.computed + n)
        self.kv.bind([s for s, _ in chunks])
        kw: dict[str, Any] = {"pixels_NCHW": torch.cat(pixels).to(self.device)} if pixels else {}
        if self.last_only:
            kw["last_only"] = True
        started = time.perf_counter()
        logits_BTV = self.model(
            idx_BT.to(self.device), cache=self.kv, valid_BT=valid_BT.to(self.device), **kw
        ).logits_BTV
        tokens = int(valid_BT.sum())
        self._prefill_s_per_token = (time.perf_counter() - started) / tokens
        self._counts["prefill_tokens_last_step"] += tokens
        done: list[_Seq] = []
        last: list[torch.Tensor] = []
        for b, (s, n) in enumerate(chunks):
            s.computed += n
            if s.computed == len(s.tokens):
                done.append(s)
                last.append(logits_BTV[b, 0 if self.last_only else n - 1])
        return self._advance(done, torch.stack(last).float()) if done else []

    def _start_rerun(self, reqs: list[GenRequest]) -> list[Delta]:
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
        finish reason ``error``; the other rows go on. A vision model never samples its
        image placeholder: a generated placeholder would have no pixels to read.
        """
        if self.image_id is not None:
            logits_BV = logits_BV.clone()
            logits_BV[:, self.image_id] = float("-inf")
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
        seq.tokens.append(token)
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
        """Drop finished rows (their blocks freed); a cached row whose context passed
        ``max_seq_len`` (only with ``crop_context``: the others ended) leaves the cache to
        be re-run."""
        self.rerun = [s for s in self.rerun if s.finish is None]
        self.preempted = [s for s in self.preempted if s.finish is None]
        keep = []
        for s in self.running:
            if s.finish is None and not self._past_context(len(s.tokens)):
                keep.append(s)
                continue
            if self.kv is not None and s in self.kv.seqs:
                self.kv.remove(s)
            if s.finish is None:
                self.rerun.append(s)
        self.running = keep

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
