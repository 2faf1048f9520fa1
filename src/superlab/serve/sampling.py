"""Choosing the next token from logits: greedy, temperature, top-k, top-p (nucleus),
repetition, presence and frequency penalties, logit bias; ``SamplingParams`` holds one
request's settings."""

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
    # Shift so the largest logit is 0 and keep it 0: a tiny temperature (1e-300 is inside
    # OpenAI's 0..2, and 0 in float32) then sends the others to -inf, never to nan.
    shifted_V = logits_V.float() - logits_V.float().max()
    scaled_V = torch.where(shifted_V == 0, 0.0, shifted_V / temperature)
    probs_V = torch.softmax(filter_logits(scaled_V, top_k, top_p), dim=-1)
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
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias added to its logit)

    @property
    def greedy(self) -> bool:
        """Argmax of the raw logits: nothing reshapes them."""
        return (
            self.temperature == 0
            and self.repetition_penalty == 1.0
            and not self.presence_penalty
            and not self.frequency_penalty
            and not self.logit_bias
        )

    def __post_init__(self) -> None:
        checks = {
            "max_tokens": self.max_tokens >= 0,
            "temperature": self.temperature >= 0,
            "top_k": self.top_k is None or self.top_k >= 1,
            "top_p": self.top_p is None or 0 < self.top_p <= 1,
            "repetition_penalty": self.repetition_penalty > 0,
            "presence_penalty": -2 <= self.presence_penalty <= 2,
            "frequency_penalty": -2 <= self.frequency_penalty <= 2,
            "logit_bias": all(-100 <= b <= 100 for _, b in self.logit_bias),
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


def apply_openai_penalties(
    logits_V: torch.Tensor,
    generated: list[int],
    presence: float,
    frequency: float,
    bias: tuple[tuple[int, float], ...],
) -> torch.Tensor:
    """OpenAI's presence and frequency penalties over the generated tokens, then logit bias.

    ``logit -= count * frequency + (count > 0) * presence`` (OpenAI's "Parameter details"
    in the text generation guide); ``logit_bias`` adds its value to a token's logit.
    """
    penalised = bool((presence or frequency) and generated)
    if not penalised and not bias:
        return logits_V
    out = logits_V.clone()
    if penalised:
        counts_V = torch.bincount(torch.tensor(generated, dtype=torch.long), minlength=out.numel())[
            : out.numel()
        ].to(out.device, out.dtype)
        out -= counts_V * frequency + (counts_V > 0).to(out.dtype) * presence
    for token, b in bias:
        out[token] += b
    return out
