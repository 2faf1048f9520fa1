"""MoE routers: router logits in, kept token-slots sorted by expert out (see docs/moe.md).

- ``TokenChoiceRouter``: each token picks its top-K experts (Switch, Fedus et al. 2021;
  Mixtral); weights renormalised over the K or raw (``norm_topk``); optional capacity
  with token dropping (training only); Switch balance loss and z-loss.
- ``AuxFreeRouter``: token choice with DeepSeek-V3's selection bias (DeepSeek-V3 2024,
  sec. 2.1.2), nudged toward uniform load by ``update_bias()`` after each step.
- ``ExpertChoiceRouter``: each expert picks its top-C tokens (Zhou et al. 2022); its
  default ``causal`` mode picks by a per-expert threshold learned from past batches,
  ``batch`` mode (``moe.expert_choice_mode``) by Zhou et al.'s top-C over the batch
  (training only).

Inference is ``module.training`` False (``model.eval()``): then every router decides each
token from that token's scores and the router's saved state alone (the aux-free bias, the
expert-choice thresholds), so a row's output never depends on the other rows or
documents of its batch. Capacity and top-C over the batch are limits shared by the
batch's tokens, so they are training-time only: at inference token choice drops nothing
and expert choice uses its per-token rule in both modes (docs/moe.md, "Inference").

Legend: B batch, L positions, T = B*L tokens (flattened b-major: token b*L + l),
E experts, K top-k, N kept token-slots, S combine slots per token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from superlab.config.recipe import MoEConfig

# Expert choice, causal mode: EMA momentum of the per-expert threshold, ~10 micro-batches
# of memory, short enough to follow the router while it trains (our choice).
THRESHOLD_MOMENTUM = 0.9


@dataclass
class Routing:
    """Kept token-slots sorted by expert (expert e owns a contiguous run of counts_E[e])."""

    token_N: torch.Tensor  # flat token index of each slot
    slot_N: torch.Tensor  # its column in the (T, S) combine buffer; (token, slot) unique
    weight_N: torch.Tensor  # gating weight, differentiable (the router's gradient path)
    counts_E: torch.Tensor  # kept slots per expert
    num_slots: int  # S
    aux_loss: torch.Tensor
    stats: dict[str, Any] = field(default_factory=dict)


def scores(logits_TE: torch.Tensor, score_func: str) -> torch.Tensor:
    """Softmax over experts, or DeepSeek-V3's independent per-expert sigmoid."""
    return logits_TE.softmax(-1) if score_func == "softmax" else logits_TE.sigmoid()


def capacity(factor: float, num_tokens: int, top_k: int, num_experts: int) -> int:
    """C = ceil(factor * T * K / E), at most T (an expert takes a token at most once)."""
    return min(math.ceil(factor * num_tokens * top_k / num_experts), num_tokens)


class TokenChoiceRouter(nn.Module):
    """Top-K experts per token, first-come capacity by position, Switch balance + z-loss.

    Capacity applies in training only; in eval mode every slot is kept (docs/moe.md).
    """

    def __init__(self, cfg: MoEConfig) -> None:
        super().__init__()
        self.cfg = cfg

    def select(self, scores_TE: torch.Tensor) -> torch.Tensor:
        """Each token's K experts (the aux-free router adds its bias here)."""
        return scores_TE.topk(self.cfg.top_k, dim=-1).indices

    def forward(self, logits_BLE: torch.Tensor) -> Routing:
        B, L, E = logits_BLE.shape
        K, T = self.cfg.top_k, B * L
        logits_TE = logits_BLE.reshape(T, E)
        scores_TE = scores(logits_TE, self.cfg.score_func)
        experts_TK = self.select(scores_TE.detach())
        weights_TK = scores_TE.gather(1, experts_TK)  # unbiased scores gate
        if self.cfg.norm_topk:
            weights_TK = weights_TK / weights_TK.sum(-1, keepdim=True)

        # Priority order for capacity: position-major (l, then b, then k). A slot's fate
        # depends only on tokens at positions <= l, so dropping never leaks the future
        # (a score-priority order, Riquelme et al. 2021, would).
        token_LBK = torch.arange(T, device=logits_BLE.device).view(B, L).t()
        token_N = token_LBK[..., None].expand(L, B, K).reshape(-1)
        slot_N = torch.arange(K, device=logits_BLE.device).repeat(T)
        experts_N = experts_TK[token_N, slot_N]
        order_N = torch.argsort(experts_N, stable=True)  # sorted by expert, priority kept
        routed_E = torch.bincount(experts_N, minlength=E)
        counts_E = routed_E
        if self.cfg.capacity_factor is not None and self.training:  # never at inference
            C = capacity(self.cfg.capacity_factor, T, K, E)
            start_E = routed_E.cumsum(0) - routed_E
            rank_N = torch.arange(order_N.numel(), device=order_N.device)
            rank_N = rank_N - start_E[experts_N[order_N]]
            order_N = order_N[rank_N < C]  # dropped slots add nothing; the residual carries on
            counts_E = routed_E.clamp(max=C)
        token_N, slot_N = token_N[order_N], slot_N[order_N]

        probs_TE = scores_TE / scores_TE.sum(-1, keepdim=True)  # = scores_TE for softmax
        balance = switch_balance(routed_E, probs_TE)
        z = torch.logsumexp(logits_TE, dim=-1).pow(2).mean()
        aux = self.cfg.z_loss_coef * z  # router z-loss (Zoph et al. 2022), plus the balance term
        balance_loss = self.balance_term(balance, experts_TK.view(B, L, K), probs_TE.view(B, L, E))
        if balance_loss is not None:
            aux = balance_loss + aux
        dropped = (T * K - counts_E.sum().item()) / (T * K)
        return Routing(
            token_N,
            slot_N,
            weights_TK[token_N, slot_N],
            counts_E,
            K,
            aux,
            load_stats(routed_E, probs_TE, balance, z, dropped),
        )

    def balance_term(
        self, balance: torch.Tensor, experts_BLK: torch.Tensor, probs_BLE: torch.Tensor
    ) -> torch.Tensor | None:
        """The weighted Switch balance loss (Fedus et al. 2021); None: no balance loss."""
        return self.cfg.aux_loss_coef * balance


class AuxFreeRouter(TokenChoiceRouter):
    """Token choice whose top-K selection adds a per-expert bias b_e (DeepSeek-V3 2024)."""

    def __init__(self, cfg: MoEConfig) -> None:
        super().__init__(cfg)
        # A buffer, not a parameter: moved by update_bias(), saved for exact resume.
        self.register_buffer("bias_E", torch.zeros(cfg.num_experts))
        # Slots routed to each expert since the last update (summed over micro-batches).
        self.register_buffer("load_E", torch.zeros(cfg.num_experts), persistent=False)

    def select(self, scores_TE: torch.Tensor) -> torch.Tensor:
        experts_TK = (scores_TE + self.bias_E).topk(self.cfg.top_k, dim=-1).indices
        if self.training:
            self.load_E += torch.bincount(experts_TK.view(-1), minlength=self.cfg.num_experts)
        return experts_TK

    @torch.no_grad()
    def update_bias(self) -> None:
        """b_e += gamma * sign(mean load - load_e) over the loads seen since the last call."""
        # One device: with data parallelism all-reduce load_E across ranks first (under
        # expert parallelism every rank routes the global batch: load_E is global).
        if self.load_E.sum() > 0:
            self.bias_E += self.cfg.bias_update_rate * (self.load_E.mean() - self.load_E).sign()
        self.load_E.zero_()

    def balance_term(
        self, balance: torch.Tensor, experts_BLK: torch.Tensor, probs_BLE: torch.Tensor
    ) -> torch.Tensor | None:
        """Sequence-wise balance loss (DeepSeek-V3 eqs. 17-20), if any; no Switch loss."""
        if not self.cfg.seq_aux_loss_coef:
            return None
        B, L, K = experts_BLK.shape
        E = self.cfg.num_experts
        # f_i = E / (K L) * #slots of sequence b on expert i (the experts actually selected);
        # P_i = mean over the sequence of the normalised scores s'_i.
        ones = probs_BLE.new_ones(B, L * K)
        counts_BE = probs_BLE.new_zeros(B, E).scatter_add_(1, experts_BLK.reshape(B, -1), ones)
        f_BE = counts_BE * E / (K * L)
        seq_balance = (f_BE * probs_BLE.mean(1)).sum(-1).mean()
        return self.cfg.seq_aux_loss_coef * seq_balance

    def forward(self, logits_BLE: torch.Tensor) -> Routing:
        routing = super().forward(logits_BLE)
        routing.stats["bias_max_abs"] = self.bias_E.abs().max().item()
        return routing


class ExpertChoiceRouter(nn.Module):
    """Each expert takes C tokens (Zhou et al. 2022); causal mode thresholds each token.

    Batch mode's top-C over the batch is training only; in eval mode both modes use the
    per-token rule (the learned threshold, or before any, the token's own top-K).
    """

    def __init__(self, cfg: MoEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.causal = cfg.expert_choice_mode == "causal"  # batch: top-C over the batch
        # EMA of each expert's C-th largest score per batch (training only); saved.
        self.register_buffer("threshold_E", torch.zeros(cfg.num_experts))
        self.register_buffer("threshold_updates", torch.zeros((), dtype=torch.long))

    def forward(self, logits_BLE: torch.Tensor) -> Routing:
        B, L, E = logits_BLE.shape
        T = B * L
        logits_TE = logits_BLE.reshape(T, E)
        scores_TE = scores(logits_TE, self.cfg.score_func)
        # Default factor 1: E*C = T*K slots, the compute of token-choice top-K.
        C = capacity(self.cfg.capacity_factor or 1.0, T, self.cfg.top_k, E)
        s_TE = scores_TE.detach()
        if not self.causal and self.training:  # Zhou et al.: top-C over the batch; token
            # t's fate reads t+1.. and the other rows. Never at inference: per token below.
            top_CE = s_TE.topk(C, dim=0).indices
            chosen_TE = torch.zeros_like(s_TE, dtype=torch.bool).scatter_(0, top_CE, True)
        elif self.threshold_updates > 0:  # per token: s_te >= tau_e, tau_e from past batches
            chosen_TE = s_TE >= self.threshold_E
        else:  # no past yet: each token's own top-K (causal, same compute)
            chosen_TE = s_TE >= s_TE.topk(self.cfg.top_k, dim=-1).values[:, -1:]
        if self.training:
            self._update_threshold(s_TE.topk(C, dim=0).values[-1])

        experts_N, token_N = chosen_TE.t().nonzero(as_tuple=True)  # expert-major
        slot_N = (chosen_TE.cumsum(1) - 1)[token_N, experts_N]  # rank among the token's
        per_token_T = chosen_TE.sum(1)
        counts_E = chosen_TE.sum(0)
        probs_TE = scores_TE / scores_TE.sum(-1, keepdim=True)
        balance = switch_balance(counts_E, probs_TE)
        z = torch.logsumexp(logits_TE, dim=-1).pow(2).mean()
        dropped = (per_token_T == 0).float().mean().item()  # tokens no expert took
        stats = load_stats(counts_E, probs_TE, balance, z, dropped)
        stats["threshold_mean"] = self.threshold_E.mean().item()
        return Routing(
            token_N,
            slot_N,
            scores_TE[token_N, experts_N],  # Zhou et al.: the score itself, not renormalised
            counts_E,
            max(int(per_token_T.max().item()) if T else 0, 1),
            self.cfg.z_loss_coef * z,  # balanced by construction: no balance loss
            stats,
        )

    @torch.no_grad()
    def _update_threshold(self, kth_E: torch.Tensor) -> None:
        if self.threshold_updates == 0:
            self.threshold_E.copy_(kth_E)
        else:
            self.threshold_E.lerp_(kth_E, 1 - THRESHOLD_MOMENTUM)
        self.threshold_updates += 1


def build_router(cfg: MoEConfig) -> nn.Module:
    """The router ``cfg.router`` names."""
    routers = {
        "token_choice": TokenChoiceRouter,
        "aux_free": AuxFreeRouter,
        "expert_choice": ExpertChoiceRouter,
    }
    return routers[cfg.router](cfg)


def switch_balance(routed_E: torch.Tensor, probs_TE: torch.Tensor) -> torch.Tensor:
    """E * sum_e f_e * P_e (Fedus et al. 2021, eq. 4); 1.0 when perfectly balanced."""
    f_E = routed_E.float() / routed_E.sum().clamp_min(1)
    return routed_E.numel() * (f_E * probs_TE.mean(0)).sum()


@torch.no_grad()
def load_stats(
    counts_E: torch.Tensor,
    probs_TE: torch.Tensor,
    balance: torch.Tensor,
    z: torch.Tensor,
    dropped: float,
) -> dict[str, Any]:
    """Load per expert, its spread, and how decided the router is (entropy in nats)."""
    counts = counts_E.tolist()
    mean = sum(counts) / len(counts)
    std = math.sqrt(sum((c - mean) ** 2 for c in counts) / len(counts))
    entropy = -(probs_TE * probs_TE.clamp_min(1e-20).log()).sum(-1).mean()
    return {
        "tokens_per_expert": counts,  # slots routed (token choice: before capacity drops)
        "max_load": max(counts) / mean if mean else 0.0,  # 1.0 = perfectly balanced
        "mean_load": mean,
        "load_cv": std / mean if mean else 0.0,  # coefficient of variation of counts
        "router_entropy": entropy.item(),
        "balance_loss": balance.item(),
        "z_loss": z.item(),
        "dropped_fraction": dropped,  # slots (token choice) or tokens (expert choice) dropped
    }
