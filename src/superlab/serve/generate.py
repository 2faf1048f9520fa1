"""Text in, text out: prompt encoding, the decode loop and stopping."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tokenizers import Tokenizer

from superlab.serve.sampling import sample_next

EOS_TOKEN = "<|endoftext|>"


@dataclass
class Completion:
    """A generated continuation and why it stopped ("length", "eos" or "stop")."""

    text: str
    token_ids: list[int]
    finish_reason: str


class Generator:
    """Decodes one prompt at a time by re-running the model over the visible context.

    The model sees at most ``max_seq_len`` tokens; longer contexts keep the last ones.
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Tokenizer, max_seq_len: int) -> None:
        self.model, self.tokenizer, self.max_seq_len = model.eval(), tokenizer, max_seq_len
        self.eos_id = tokenizer.token_to_id(EOS_TOKEN)
        self.device = next(model.parameters()).device

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
    ) -> Completion:
        """Continue ``prompt``; same seed and settings give the same text."""
        ids = self.tokenizer.encode(prompt).ids
        if not ids and self.eos_id is not None:
            ids = [self.eos_id]  # an empty prompt starts a new document
        rng = torch.Generator().manual_seed(seed)
        new: list[int] = []
        reason = "length"
        for _ in range(max_new_tokens):
            ctx_T = torch.tensor([(ids + new)[-self.max_seq_len :]], device=self.device)
            logits_V = self.model(ctx_T).logits_BTV[0, -1].float().cpu()
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
