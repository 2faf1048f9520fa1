"""Mixture of Experts with SwiGLU experts (Shazeer et al. 2017; Mixtral; DeepSeekMoE).

The router (``superlab.model.routers``, chosen by ``cfg.moe.router``) turns the logits
into kept token-slots sorted by expert. Dispatch: gather those tokens, run each expert
once on its contiguous slice (a loop over experts, never over tokens), scale its
output by the gating weight (or, with ``moe.gate_on: input``, its input, as Llama 4
does) and write each slot into its own cell of a (T, S) buffer; the sum over S
is the output. A unique cell per slot makes the combine a deterministic index_put,
unlike an atomic scatter-add. A dropped slot writes nothing: the residual carries it.

``torch._grouped_mm`` (private in torch 2.13) runs on CPU and gives the same outputs and
gradients, but measured slower than this loop on an idle 2-core CPU (824 vs 557 ms for
the Mixtral-sized layer of ``bench/moe_vs_transformers.py``; it only won when the cores
were oversubscribed), and on CUDA it is bf16-only on Hopper; so the loop over experts
stays until a public grouped GEMM lands.

After each forward ``aux_loss`` (a tensor) and ``stats`` (plain numbers for logging)
hold this call's values; the transformer collects them from its MoE layers.
``update_bias()`` is the trainer's hook after each optimizer step (the aux-free router
moves its bias; the others do nothing).

Legend: B batch, L positions, T = B*L tokens, D model dim, E experts, F expert hidden
dim, N kept token-slots, S combine slots per token.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from superlab.config.recipe import ModelConfig
from superlab.model.mlp import SwiGLU
from superlab.model.routers import build_router


class MoE(nn.Module):
    """E routed SwiGLU experts plus optional always-on shared experts."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        assert cfg.moe is not None, "MoE needs cfg.moe"
        self.moe_cfg = cfg.moe
        E, D = cfg.moe.num_experts, cfg.d_model
        F_ = cfg.moe.expert_hidden or cfg.hidden
        self.router = nn.Linear(D, E, bias=False)  # logits; the routing rule is below
        self.routing = build_router(cfg.moe)
        # Experts stacked on a leading E dim, ready for a grouped GEMM later.
        self.w1_EFD = nn.Parameter(torch.empty(E, F_, D))  # gate
        self.w3_EFD = nn.Parameter(torch.empty(E, F_, D))  # up
        self.w2_EDF = nn.Parameter(torch.empty(E, D, F_))  # down (a residual projection)
        # S shared experts of hidden F act like one SwiGLU of hidden S*F (DeepSeekMoE).
        n_shared = cfg.moe.num_shared_experts
        self.shared = SwiGLU(D, n_shared * F_) if n_shared else None
        self.aux_loss: torch.Tensor = torch.zeros(())
        self.stats: dict[str, Any] = {}

    @staticmethod
    def _expert(
        w1_FD: torch.Tensor, w3_FD: torch.Tensor, w2_DF: torch.Tensor, x_ND: torch.Tensor
    ) -> torch.Tensor:
        h_NF = F.silu(x_ND @ w1_FD.t()) * (x_ND @ w3_FD.t())
        return h_NF @ w2_DF.t()

    def _looped(self, x_ND: torch.Tensor, counts: list[int]) -> torch.Tensor:
        """One SwiGLU per expert on its slice of the sorted tokens."""
        # Unbind once: indexing w[e] per expert makes autograd build a full-size zero
        # gradient of the stacked weight for every expert (80% of the step on CPU).
        w1s, w3s, w2s = self.w1_EFD.unbind(0), self.w3_EFD.unbind(0), self.w2_EDF.unbind(0)
        outs = [
            self._expert(w1s[e], w3s[e], w2s[e], x_nD)
            for e, x_nD in enumerate(x_ND.split(counts))
            if counts[e]
        ]
        return torch.cat(outs) if outs else x_ND.new_zeros(x_ND.shape)

    def forward(self, x_BLD: torch.Tensor) -> torch.Tensor:
        shape = x_BLD.shape
        x_TD = x_BLD.reshape(-1, shape[-1])
        r = self.routing(self.router(x_BLD).float())  # keeps B, L: sequence-wise losses

        x_ND = x_TD[r.token_N]
        gate_N1 = r.weight_N.unsqueeze(-1).type_as(x_ND)
        if self.moe_cfg.gate_on == "input":  # Llama 4: expert(w * x)
            x_ND = x_ND * gate_N1
        out_ND = self._looped(x_ND, r.counts_E.tolist())
        if self.moe_cfg.gate_on == "output":  # w * expert(x)
            out_ND = out_ND * gate_N1
        y_TSD = x_TD.new_zeros(x_TD.shape[0], r.num_slots, shape[-1])
        y_TSD[r.token_N, r.slot_N] = out_ND
        y_TD = y_TSD.sum(1)
        if self.shared is not None:
            y_TD = y_TD + self.shared(x_TD)

        self.aux_loss, self.stats = r.aux_loss, r.stats
        return y_TD.view(shape)

    def update_bias(self) -> None:
        """After an optimizer step: let the router adjust its selection bias, if it has one."""
        update = getattr(self.routing, "update_bias", None)
        if update is not None:
            update()
