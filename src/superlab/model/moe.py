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

Expert parallelism: ``dispatch`` (None on one process) is an ``ExpertDispatch`` that
``superlab.train.expert_parallel`` attaches after keeping only this rank's experts in the
stacked weights. The layer then routes every rank's tokens at once (``gather``: the
global batch's logits, so capacity, the balance loss and the statistics are the
one-process ones) and runs only this rank's kept slots through ``plan``'s ``run``, which
sends them to the ranks that hold their experts and brings the outputs back. The model
knows nothing of process groups: the object does (docs/train.md, "Expert parallelism").

Legend: B batch, L positions, T = B*L tokens, D model dim, E experts, F expert hidden
dim, N kept token-slots, S combine slots per token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from superlab.config.recipe import ModelConfig
from superlab.model.mlp import SwiGLU
from superlab.model.routers import Routing, build_router


@dataclass
class SlotPlan:
    """This rank's kept slots of a global routing, and how to get their expert outputs."""

    token_N: torch.Tensor  # local flat token index
    slot_N: torch.Tensor
    weight_N: torch.Tensor
    run: Callable[[MoE, torch.Tensor], torch.Tensor]  # (layer, inputs of the slots) -> outputs


class ExpertDispatch(Protocol):
    """Runs a MoE layer's experts across processes (``superlab.train.expert_parallel``)."""

    def gather(self, logits_BLE: torch.Tensor) -> torch.Tensor:
        """The global batch's router logits, every rank's rows in rank order."""
        ...

    def plan(self, routing: Routing, num_tokens: int) -> SlotPlan:
        """This rank's slots of ``routing`` (made on the global batch); ``num_tokens`` local."""
        ...


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
        self.dispatch: ExpertDispatch | None = None  # set under expert parallelism

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
        logits_BLE = self.router(x_BLD).float()  # keeps B, L: sequence-wise losses
        if self.dispatch is None:
            r = self.routing(logits_BLE)
            token_N, slot_N, weight_N = r.token_N, r.slot_N, r.weight_N
        else:  # expert parallel: route the global batch, keep this rank's slots
            r = self.routing(self.dispatch.gather(logits_BLE))
            plan = self.dispatch.plan(r, x_TD.shape[0])
            token_N, slot_N, weight_N = plan.token_N, plan.slot_N, plan.weight_N

        x_ND = x_TD[token_N]
        gate_N1 = weight_N.unsqueeze(-1).type_as(x_ND)
        if self.moe_cfg.gate_on == "input":  # Llama 4: expert(w * x)
            x_ND = x_ND * gate_N1
        if self.dispatch is None:
            out_ND = self._looped(x_ND, r.counts_E.tolist())
        else:
            out_ND = plan.run(self, x_ND)
        if self.moe_cfg.gate_on == "output":  # w * expert(x)
            out_ND = out_ND * gate_N1
        y_TSD = x_TD.new_zeros(x_TD.shape[0], r.num_slots, shape[-1])
        y_TSD[token_N, slot_N] = out_ND
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
