"""Preference losses over sequence log-probabilities: DPO, IPO and SimPO.

With policy log-probabilities ``pc``, ``pr`` of the chosen and rejected answers and the
reference's ``rc``, ``rr`` (summed for DPO; averaged over the answer's tokens for IPO and
SimPO, as TRL computes them):

- DPO, sigmoid (Rafailov et al. 2023), with label smoothing (conservative DPO,
  Mitchell 2023): ``h = (pc - pr) - (rc - rr)``,
  ``loss = -(1 - ε) log σ(β h) - ε log σ(-β h)``;
- IPO (Azar et al. 2023): ``loss = (h - 1 / (2β))²``;
- SimPO (Meng et al. 2024), reference-free: ``h = (pc - pr) - γ / β``, loss as DPO's.

Rewards, as TRL logs them: ``β (pc - rc)`` and ``β (pr - rr)`` (SimPO: ``β pc``, ``β pr``).
Every loss is the batch mean. Legend: P pairs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("dpo", "ipo", "simpo")
LENGTH_NORMALISED = frozenset({"ipo", "simpo"})


def preference_loss(
    kind: str,
    pc_P: torch.Tensor,
    pr_P: torch.Tensor,
    rc_P: torch.Tensor,
    rr_P: torch.Tensor,
    beta: float,
    label_smoothing: float = 0.0,
    gamma: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair losses and the chosen and rejected rewards (detached)."""
    if kind == "simpo":
        h_P = (pc_P - pr_P) - gamma / beta
        chosen, rejected = beta * pc_P, beta * pr_P
    else:
        h_P = (pc_P - pr_P) - (rc_P - rr_P)
        chosen, rejected = beta * (pc_P - rc_P), beta * (pr_P - rr_P)
    if kind == "ipo":
        losses_P = (h_P - 1 / (2 * beta)) ** 2
    elif kind in ("dpo", "simpo"):
        losses_P = (
            -F.logsigmoid(beta * h_P) * (1 - label_smoothing)
            - F.logsigmoid(-beta * h_P) * label_smoothing
        )
    else:
        raise ValueError(f"unknown preference loss {kind!r}; one of {', '.join(LOSSES)}")
    return losses_P, chosen.detach(), rejected.detach()
