"""Token-choice top-k Mixture of Experts with SwiGLU experts (Shazeer et al. 2017; Mixtral).

Routing: softmax over the E experts' router logits, keep each token's top K, and
renormalise the K weights to sum to 1. Dispatch: the T*K token-slots are sorted by
expert so each expert runs once on its contiguous slice (a loop over experts, never
over tokens); no capacity limit yet, so nothing is dropped.

Auxiliary losses, weighted by ``aux_loss_coef`` and ``z_loss_coef``:

- load balancing (Switch Transformer, Fedus et al. 2021, eq. 4): ``E * sum_e f_e * P_e``
  with f_e the fraction of token-slots routed to expert e and P_e the mean router
  probability of e; 1.0 when perfectly balanced.
- router z-loss (ST-MoE, Zoph et al. 2022, eq. 5): ``mean_t logsumexp(logits_t)^2``.

After each forward ``aux_loss`` (a tensor) and ``stats`` (plain numbers for logging)
hold this call's values; the transformer collects them from its MoE layers.

Legend: T tokens (batch and sequence flattened), D model dim, E experts, F expert
hidden dim, K top-k, N = T*K token-slots.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from superlab.config.recipe import ModelConfig
from superlab.model.mlp import SwiGLU


class MoE(nn.Module):
    """E routed SwiGLU experts (top-K per token) plus optional always-on shared experts."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        assert cfg.moe is not None, "MoE needs cfg.moe"
        self.moe_cfg = cfg.moe
        E, D = cfg.moe.num_experts, cfg.d_model
        F_ = cfg.moe.expert_hidden or cfg.hidden
        self.router = nn.Linear(D, E, bias=False)
        # Experts stacked on a leading E dim, ready for a grouped GEMM later.
        self.w1_EFD = nn.Parameter(torch.empty(E, F_, D))  # gate
        self.w3_EFD = nn.Parameter(torch.empty(E, F_, D))  # up
        self.w2_EDF = nn.Parameter(torch.empty(E, D, F_))  # down (a residual projection)
        # S shared experts of hidden F act like one SwiGLU of hidden S*F (DeepSeekMoE).
        n_shared = cfg.moe.num_shared_experts
        self.shared = SwiGLU(D, n_shared * F_) if n_shared else None
        self.aux_loss: torch.Tensor = torch.zeros(())
        self.stats: dict[str, Any] = {}

    def _expert(self, e: int, x_ND: torch.Tensor) -> torch.Tensor:
        h_NF = F.silu(x_ND @ self.w1_EFD[e].t()) * (x_ND @ self.w3_EFD[e].t())
        return h_NF @ self.w2_EDF[e].t()

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        shape = x_BTD.shape
        x_TD = x_BTD.reshape(-1, shape[-1])
        E, K = self.moe_cfg.num_experts, self.moe_cfg.top_k

        logits_TE = self.router(x_TD).float()
        probs_TE = logits_TE.softmax(dim=-1)
        weights_TK, experts_TK = probs_TE.topk(K, dim=-1)
        weights_TK = weights_TK / weights_TK.sum(dim=-1, keepdim=True)

        # Sort token-slots by expert: expert e owns slots [start_e, start_e + count_e).
        experts_N = experts_TK.reshape(-1)
        order_N = torch.argsort(experts_N, stable=True)
        counts_E = torch.bincount(experts_N, minlength=E)
        token_of_slot_N = order_N // K
        x_ND = x_TD[token_of_slot_N]
        out_ND = torch.empty_like(x_ND)
        start = 0
        for e, count in enumerate(counts_E.tolist()):
            if count:
                out_ND[start : start + count] = self._expert(e, x_ND[start : start + count])
            start += count
        # Un-sort to (token, k) order and take the weighted sum over k: a deterministic
        # gather, unlike an atomic scatter-add.
        slots_ND = torch.empty_like(out_ND)
        slots_ND[order_N] = out_ND
        y_TD = (slots_ND.view(-1, K, shape[-1]) * weights_TK.unsqueeze(-1).type_as(x_TD)).sum(1)
        if self.shared is not None:
            y_TD = y_TD + self.shared(x_TD)

        f_E = counts_E.float() / experts_N.numel()
        p_E = probs_TE.mean(dim=0)
        balance = E * (f_E * p_E).sum()
        z = torch.logsumexp(logits_TE, dim=-1).pow(2).mean()
        self.aux_loss = self.moe_cfg.aux_loss_coef * balance + self.moe_cfg.z_loss_coef * z
        self.stats = _stats(counts_E, probs_TE, balance, z)
        return y_TD.view(shape)


@torch.no_grad()
def _stats(
    counts_E: torch.Tensor, probs_TE: torch.Tensor, balance: torch.Tensor, z: torch.Tensor
) -> dict[str, Any]:
    """Load per expert, its spread, and how decided the router is (entropy in nats)."""
    counts = counts_E.tolist()
    mean = sum(counts) / len(counts)
    std = math.sqrt(sum((c - mean) ** 2 for c in counts) / len(counts))
    entropy = -(probs_TE * probs_TE.clamp_min(1e-20).log()).sum(-1).mean()
    return {
        "tokens_per_expert": counts,
        "max_load": max(counts) / mean if mean else 0.0,  # 1.0 = perfectly balanced
        "mean_load": mean,
        "load_cv": std / mean if mean else 0.0,  # coefficient of variation of counts
        "router_entropy": entropy.item(),
        "balance_loss": balance.item(),
        "z_loss": z.item(),
        "dropped_fraction": 0.0,  # no capacity factor yet, so no token is dropped
    }
