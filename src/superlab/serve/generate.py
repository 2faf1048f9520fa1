"""Text in, text out: prompt encoding, the decode loop and stopping.

``generate`` decodes one prompt; ``generate_many`` decodes many together through the
continuously batched ``Engine`` (``superlab.serve.engine``).

With a model whose ``forward`` takes a ``cache`` (our ``Transformer``) the prompt is
prefilled once and each step runs one token against the KV cache. When the context
would pass ``max_seq_len``: under ``sliding`` and ``chunked`` attention the cache is
bounded and decoding simply goes on; under ``full`` (and ``sparse``) the model re-encodes
the last ``max_seq_len`` tokens at every further step (no cache), as a model without a
cache does at every step. A local-attention prompt longer than ``max_seq_len`` is
prefilled whole.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from tokenizers import Tokenizer

from superlab.serve.engine import EOS_TOKEN, Engine, GenRequest
from superlab.serve.sampling import SamplingParams, apply_repetition_penalty, sample_next

if TYPE_CHECKING:
    from superlab.model.cache import KVCache

__all__ = ["EOS_TOKEN", "Completion", "Generator"]


@dataclass
class Completion:
    """A generated continuation and why it stopped ("length", "eos" or "stop")."""

    text: str
    token_ids: list[int]
    finish_reason: str


class Generator:
    """Decodes one prompt at a time: KV-cached when the model supports it, else re-running.

    Under full attention the model sees at most ``max_seq_len`` tokens (longer contexts
    keep the last ones); sliding and chunked attention see their window or chunk.
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Tokenizer, max_seq_len: int) -> None:
        self.model, self.tokenizer, self.max_seq_len = model.eval(), tokenizer, max_seq_len
        self.eos_id = tokenizer.token_to_id(EOS_TOKEN)
        self.device = next(model.parameters()).device
        self.cached = "cache" in inspect.signature(model.forward).parameters and hasattr(
            model, "new_cache"
        )
        # Local attention keeps a bounded cache, so it never has to crop the context.
        self.bounded = bool(getattr(model, "bounded_context", False))

    @torch.no_grad()
    def generate(
        self,
        prompt: str,
        max_new_tokens: int = 32,
        temperature: float = 0.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int = 0,
        stop: list[str] | None = None,
        repetition_penalty: float = 1.0,
    ) -> Completion:
        """Continue ``prompt``; same seed and settings give the same text."""
        ids = self.tokenizer.encode(prompt).ids
        if not ids and self.eos_id is not None:
            ids = [self.eos_id]  # an empty prompt starts a new document
        rng = torch.Generator().manual_seed(seed)
        new: list[int] = []
        reason = "length"
        cache = self.model.new_cache() if self.cached else None
        for _ in range(max_new_tokens):
            logits_V = self._next_logits(ids + new, cache)
            logits_V = apply_repetition_penalty(logits_V, ids + new, repetition_penalty)
            token = sample_next(logits_V, temperature, top_k, top_p, rng)
            if token == self.eos_id:
                reason = "eos"
                break
            new.append(token)
            if stop:
                text = self.tokenizer.decode(new)
                cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
                if cut >= 0:
                    return Completion(text[:cut], new, "stop")
        return Completion(self.tokenizer.decode(new), new, reason)

    def generate_many(
        self, prompts: list[str], params: SamplingParams | list[SamplingParams], max_batch: int = 32
    ) -> list[Completion]:
        """Continue every prompt, decoded together with continuous batching (``Engine``).

        Needs a model with a KV cache; under full attention a sequence stops at
        ``max_seq_len`` (finish reason ``length``) instead of re-running a cropped context.
        """
        per = params if isinstance(params, list) else [params] * len(prompts)
        if len(per) != len(prompts):
            raise ValueError(f"params: {len(per)} settings for {len(prompts)} prompts")
        engine = Engine(self.model, self.tokenizer, self.max_seq_len, max_batch)
        for i, (prompt, p) in enumerate(zip(prompts, per, strict=True)):
            ids = self.tokenizer.encode(prompt).ids or [self.eos_id]
            engine.submit(GenRequest(str(i), ids, p))
        texts = [""] * len(prompts)
        tokens: list[list[int]] = [[] for _ in prompts]
        reasons = [""] * len(prompts)
        while not engine.idle:
            for d in engine.step():
                i = int(d.request_id)
                texts[i] += d.text
                tokens[i] += d.token_ids
                reasons[i] = d.finish_reason or reasons[i]
        return [Completion(*c) for c in zip(texts, tokens, reasons, strict=True)]

    def _next_logits(self, ctx: list[int], cache: KVCache | None) -> torch.Tensor:
        """Next-token logits ``(V,)``: feed the cache what it has not seen, or re-run."""
        if cache is None or (not self.bounded and len(ctx) > self.max_seq_len):
            # No cache, or full attention past max_seq_len: re-run the last max_seq_len
            # tokens (the context only grows, so the stale cache is never used again).
            out = self.model(torch.tensor([ctx[-self.max_seq_len :]], device=self.device))
        else:
            out = self.model(torch.tensor([ctx[cache.pos :]], device=self.device), cache=cache)
        return out.logits_BTV[0, -1].float().cpu()
