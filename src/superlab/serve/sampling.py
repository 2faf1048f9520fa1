"""Choosing the next token from logits: greedy, temperature, top-k, top-p (nucleus)."""

from __future__ import annotations

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
