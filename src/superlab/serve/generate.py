"""Text in, text out: ``Generator`` encodes prompts, runs them through the ``Engine`` and
returns ``Completion``s.

There is no decode loop here: ``generate`` is a batch of one through
``superlab.serve.engine.Engine`` and ``generate_many`` a continuously batched run of many,
so everything the engine does (KV cache, sampling, penalties, stop strings) is the same
for one prompt, many prompts and the HTTP server.

The two differ at the context limit under ``full`` (and ``sparse``) attention, where the
model has seen at most ``max_seq_len`` positions. ``generate`` goes on
(``Engine(crop_context=True)``): past ``max_seq_len`` it re-runs the last ``max_seq_len``
tokens at every step (no cache), and a longer prompt is cropped the same way.
``generate_many`` stops there with finish reason ``length``, as the server does. Under
``sliding`` and ``chunked`` attention the cache is bounded and both simply go on; a
long prompt is prefilled whole. A model without a KV cache (its ``forward`` takes no
``cache``) is decoded by re-running its cropped context at every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tokenizers import Tokenizer

from superlab.serve.engine import EOS_TOKEN, Engine, GenRequest
from superlab.serve.sampling import SamplingParams

__all__ = ["EOS_TOKEN", "Completion", "Generator"]


@dataclass
class Completion:
    """A generated continuation and why it stopped ("length", "eos" or "stop")."""

    text: str
    token_ids: list[int]
    finish_reason: str


class Generator:
    """Prompts in, completions out, through the engine.

    Under full attention the model sees at most ``max_seq_len`` tokens (longer contexts
    keep the last ones); sliding and chunked attention see their window or chunk.
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Tokenizer, max_seq_len: int) -> None:
        self.model, self.tokenizer, self.max_seq_len = model.eval(), tokenizer, max_seq_len
        self.eos_id = tokenizer.token_to_id(EOS_TOKEN)
        probe = Engine(model, tokenizer, max_seq_len)
        self.cached, self.bounded = probe.cached, probe.bounded

    def generate(self, prompt: str, params: SamplingParams | None = None) -> Completion:
        """Continue ``prompt``; the same ``params`` (with a seed) give the same text.

        ``params`` defaults to greedy decoding of up to 32 tokens with seed 0.
        """
        p = SamplingParams(max_tokens=32, seed=0) if params is None else params
        ids = self._encode(prompt)
        # One forward for the whole prompt, however long (a bounded cache takes it).
        engine = Engine(
            self.model,
            self.tokenizer,
            self.max_seq_len,
            max_batch=1,
            prefill_tokens=max(1024, len(ids)),
            crop_context=True,
        )
        c = _run(engine, [ids], [p])[0]
        # The whole text decoded at once, as one piece: invalid UTF-8 from a weak model
        # decodes the same as a call to ``tokenizer.decode`` (the stream's pieces may not).
        text = self.tokenizer.decode(c.token_ids)
        if c.finish_reason == "stop":
            cuts = [i for i in (text.find(s) for s in p.stop if s) if i >= 0]
            text = text[: min(cuts, default=len(text))]
        return Completion(text, c.token_ids, c.finish_reason)

    def generate_many(
        self, prompts: list[str], params: SamplingParams | list[SamplingParams], max_batch: int = 32
    ) -> list[Completion]:
        """Continue every prompt, decoded together with continuous batching (``Engine``).

        Under full attention a sequence stops at ``max_seq_len`` (finish reason ``length``)
        instead of re-running a cropped context.
        """
        per = params if isinstance(params, list) else [params] * len(prompts)
        if len(per) != len(prompts):
            raise ValueError(f"params: {len(per)} settings for {len(prompts)} prompts")
        engine = Engine(self.model, self.tokenizer, self.max_seq_len, max_batch)
        return _run(engine, [self._encode(prompt) for prompt in prompts], per)

    def _encode(self, prompt: str) -> list[int]:
        """The prompt's ids; an empty prompt starts a new document (EOS)."""
        ids = self.tokenizer.encode(prompt).ids
        if not ids and self.eos_id is not None:
            ids = [self.eos_id]
        return ids


def _run(
    engine: Engine, prompts: list[list[int]], params: list[SamplingParams]
) -> list[Completion]:
    """Submit every prompt, step the engine until idle, join each request's Deltas."""
    for i, (ids, p) in enumerate(zip(prompts, params, strict=True)):
        engine.submit(GenRequest(str(i), ids, p))
    texts = [""] * len(prompts)
    tokens: list[list[int]] = [[] for _ in prompts]
    reasons = [""] * len(prompts)
    while not engine.idle:
        for d in engine.step():
            i = int(d.request_id)
            if d.finish_reason == "error":
                raise RuntimeError(f"prompt {i}: {d.error}")
            texts[i] += d.text
            tokens[i] += d.token_ids
            reasons[i] = d.finish_reason or reasons[i]
    return [Completion(*c) for c in zip(texts, tokens, reasons, strict=True)]
