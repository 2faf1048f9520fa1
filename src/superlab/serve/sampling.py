"""Choosing the next token from logits: greedy, temperature, top-k, top-p (nucleus),
repetition penalty; ``SamplingParams`` holds one request's settings."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def filter_logits(
    logits_V: torch.Tensor, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Set to -inf every logit outside the top-k and outside the top-p nucleus."""
    out = logits_V.clone()
    if top_k is not None and top_k < out.numel():
        kth = torch.topk(out, top_k).values[-1]
        out[out < kth] = float("-inf")
    if top_p is not None and top_p < 1.0:
        sorted_V, order = torch.sort(out, descending=True)
        cum = torch.softmax(sorted_V, dim=-1).cumsum(-1)
        # Keep the smallest prefix whose mass reaches top_p (Holtzman et al. 2020):
        # a token is dropped when the mass before it already reaches top_p.
        drop = (cum - torch.softmax(sorted_V, dim=-1)) >= top_p
        out[order[drop]] = float("-inf")
    return out


def sample_next(
    logits_V: torch.Tensor,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator | None,
) -> int:
    """One token id; temperature 0 means greedy (argmax)."""
    if temperature == 0:
        return int(torch.argmax(logits_V))
    probs_V = torch.softmax(filter_logits(logits_V.float() / temperature, top_k, top_p), dim=-1)
    return int(torch.multinomial(probs_V, 1, generator=generator))


@dataclass(frozen=True)
class SamplingParams:
    """How one request is decoded; ``seed`` None draws a fresh one per request."""

    max_tokens: int = 16
    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: int | None = None  # also return this many top log-probabilities per token

    def __post_init__(self) -> None:
        checks = {
            "max_tokens": self.max_tokens >= 0,
            "temperature": self.temperature >= 0,
            "top_k": self.top_k is None or self.top_k >= 1,
            "top_p": self.top_p is None or 0 < self.top_p <= 1,
            "repetition_penalty": self.repetition_penalty > 0,
            "logprobs": self.logprobs is None or self.logprobs >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{name}: {getattr(self, name)!r} is out of range")


def apply_repetition_penalty(
    logits_V: torch.Tensor, seen: list[int], penalty: float
) -> torch.Tensor:
    """Make tokens already in the context less likely (CTRL, Keskar et al. 2019).

    A seen token's logit is divided by ``penalty`` when positive and multiplied when
    negative, as transformers' ``RepetitionPenaltyLogitsProcessor``; 1.0 changes nothing.
    """
    if penalty == 1.0 or not seen:
        return logits_V
    out = logits_V.clone()
    ids = torch.tensor(sorted(set(seen)), dtype=torch.long, device=out.device)
    picked = out[ids]
    out[ids] = torch.where(picked > 0, picked / penalty, picked * penalty)
    return out
