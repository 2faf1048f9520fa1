"""GRPO's math: group advantages, the clipped token loss with k3 KL, and the objective.

Shao et al. 2024 (DeepSeekMath, GRPO), as TRL's ``GRPOTrainer`` computes it:

- advantage ``A_i = (r_i - mean(r_group)) / (std(r_group) + 1e-4)`` (``std`` unbiased, as
  ``torch.std``); Dr. GRPO (Liu et al. 2025) drops the division (``scale_rewards: false``);
- per completion token, ``ratio = exp(logp - logp_old)`` and
  ``loss_t = -min(ratio A, clip(ratio, 1 - eps, 1 + eps_high) A) + beta kl_t`` with the k3
  estimator ``kl_t = exp(ref - logp) - (ref - logp) - 1`` (Schulman 2020), which is >= 0;
- ``seq_mean`` averages each completion's tokens, then the completions; ``token_mean``
  averages every completion token of the batch at once (DAPO), so long answers weigh more.

With ``num_iterations`` 1 the old policy is the current one (``logp_old = logp.detach()``,
ratio 1, as TRL); with more, ``logp_old`` is computed at sampling time.

Legend: B completions (prompts x G), G group size, T positions, V vocabulary.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from superlab.config.rl import RLConfig
from superlab.train.objective import StepOut

IGNORE = -100


def group_advantages(rewards_B: torch.Tensor, group: int, scale: bool) -> torch.Tensor:
    """Rewards of consecutive groups of ``group`` completions, normalised within each group."""
    r_PG = rewards_B.view(-1, group)
    centred_PG = r_PG - r_PG.mean(dim=1, keepdim=True)
    if scale:
        centred_PG = centred_PG / (r_PG.std(dim=1, keepdim=True) + 1e-4)
    return centred_PG.reshape(-1)


def k3_kl(logp_BT: torch.Tensor, ref_BT: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimator of KL(policy || reference) per token."""
    delta_BT = ref_BT - logp_BT
    return torch.exp(delta_BT) - delta_BT - 1


def clipped_token_loss(
    logp_BT: torch.Tensor,
    old_BT: torch.Tensor,
    adv_B: torch.Tensor,
    eps_low: float,
    eps_high: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``-min(ratio A, clip(ratio) A)`` per token, and where the clip was active (TRL's
    region: ratio below 1 - eps with A < 0, or above 1 + eps_high with A > 0)."""
    ratio_BT = torch.exp(logp_BT - old_BT)
    a_B1 = adv_B.unsqueeze(1)
    unclipped = ratio_BT * a_B1
    clipped = torch.clamp(ratio_BT, 1 - eps_low, 1 + eps_high) * a_B1
    active_BT = ((ratio_BT < 1 - eps_low) & (a_B1 < 0)) | ((ratio_BT > 1 + eps_high) & (a_B1 > 0))
    return -torch.min(unclipped, clipped), active_BT


def reduce_loss(loss_BT: torch.Tensor, mask_BT: torch.Tensor, loss_type: str) -> torch.Tensor:
    """The batch loss from per-token losses over the completion tokens (``mask_BT``)."""
    m = mask_BT.to(loss_BT.dtype)
    if loss_type == "token_mean":
        return (loss_BT * m).sum() / m.sum().clamp(min=1)
    return ((loss_BT * m).sum(1) / m.sum(1).clamp(min=1)).mean()


def masked_mean(x_BT: torch.Tensor, mask_BT: torch.Tensor) -> torch.Tensor:
    m = mask_BT.to(x_BT.dtype)
    return (x_BT * m).sum() / m.sum().clamp(min=1)


def token_logps(logits_BTV: torch.Tensor, y_BT: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each target (fp32; 0 where the target is ``IGNORE``) and the mean
    entropy of the policy over the targets' positions (no gradient).

    The softmax runs on the completion positions only (N of them), not on the prompts'."""
    mask_BT = y_BT != IGNORE
    lp_NV = torch.log_softmax(logits_BTV[mask_BT].float(), dim=-1)
    picked_N = lp_NV.gather(-1, y_BT[mask_BT].unsqueeze(-1)).squeeze(-1)
    logp_BT = torch.zeros(y_BT.shape, dtype=picked_N.dtype, device=picked_N.device)
    logp_BT = logp_BT.masked_scatter(mask_BT, picked_N)
    with torch.no_grad():
        entropy = -(lp_NV.exp() * lp_NV).sum(-1).mean() if len(lp_NV) else lp_NV.sum()
    return logp_BT, entropy


class RolloutBatch(NamedTuple):
    """One rollout, ready for an update (every field a tensor, moved by the trainer)."""

    x_BT: torch.Tensor  # prompt + completion inputs, right-padded
    y_BT: torch.Tensor  # next tokens; IGNORE except on completion tokens
    adv_B: torch.Tensor
    old_BT: torch.Tensor  # log-probs at sampling (used when num_iterations > 1)
    ref_BT: torch.Tensor  # reference log-probs (used when beta > 0)
    stats_S: torch.Tensor  # the rollout's metrics, named by the loader's ``stat_names``


class GRPOLoss:
    """The ``rl`` section's loss over one rollout, with the rollout's metrics."""

    def __init__(self, cfg: RLConfig, stat_names: list[str]) -> None:
        self.cfg, self.stat_names = cfg, stat_names

    def loss(self, model: nn.Module, batch: RolloutBatch) -> StepOut:
        cfg = self.cfg
        out = model(batch.x_BT)
        mask_BT = batch.y_BT != IGNORE
        logp_BT, entropy = token_logps(out.logits_BTV, batch.y_BT)
        old_BT = batch.old_BT if cfg.num_iterations > 1 else logp_BT.detach()
        eps_high = cfg.epsilon if cfg.epsilon_high is None else cfg.epsilon_high
        loss_BT, active_BT = clipped_token_loss(
            logp_BT, old_BT, batch.adv_B.float(), cfg.epsilon, eps_high
        )
        metrics = {name: batch.stats_S[i] for i, name in enumerate(self.stat_names)}
        if cfg.beta > 0:
            kl_BT = k3_kl(logp_BT, batch.ref_BT)
            loss_BT = loss_BT + cfg.beta * kl_BT
            metrics["kl"] = masked_mean(kl_BT.detach(), mask_BT)
        metrics["entropy"] = entropy
        metrics["clip_ratio/region_mean"] = masked_mean(active_BT.float(), mask_BT)
        loss = reduce_loss(loss_BT, mask_BT, cfg.loss_type)
        return StepOut(loss, out.aux_loss, batch.x_BT.numel(), out.moe_stats, metrics)
