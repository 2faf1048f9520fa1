"""Expert parallelism: each MoE layer's experts split over ``train.expert_parallel`` ranks.

Process groups, from the world size W and the EP size P (P must divide W): ranks
``[g*P, (g+1)*P)`` form EP group g, which holds one copy of the experts, P-th by P-th
(EP rank p holds experts ``[p*E/P, (p+1)*E/P)`` of every MoE layer); the W/P ranks that
hold the same experts (``p, p+P, p+2P, ...``) form a replica group. The rest of the model
is replicated and stays under DDP over the whole world, which ignores the expert weights.

Dispatch, per MoE layer and forward (``ExpertParallel`` is the layer's ``dispatch``):

1. ``gather``: all-gather the router logits of every rank (a few numbers per token), so
   every rank routes the global batch exactly as one process would: capacity per expert
   over the whole batch, aux-free loads and the balance loss from global counts, the
   same statistics. Its backward all-reduces the logits' gradient (every rank's loss
   holds the same aux loss) and keeps this rank's rows.
2. ``plan``: this rank's kept slots (sorted by expert, so by destination) are sent with
   ``all_to_all_single`` to the EP ranks holding their experts, with uneven splits read
   from the routing; every rank knows the global routing, so it knows what it will
   receive without exchanging counts. The received slots are put back in the global
   order (by expert, then priority), each local expert runs once on its slice, and a
   second all-to-all returns the outputs; backward runs the same exchanges reversed.

Gradients: DDP averages the replicated parameters over W; the expert gradients, summed
over the EP group's tokens by the all-to-all's backward, are summed over the replica
group and divided by W (``sync_grads``). Clipping uses the global norm (``clip_grad_norm``).

Checkpoints are consolidated on save (``consolidate``: each EP group gathers its shards,
rank 0 writes full tensors) and sharded on load (``shard_state``), so the files are the
one-process format: any EP size, one process and the HF export read them.

A peer that dies makes the next collective fail; ``ExpertParallelError`` then names this
rank, the operation and the group. Collectives time out after ``TIMEOUT_S``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from superlab.common import StageError
from superlab.config.recipe import ModelConfig
from superlab.model.moe import MoE, SlotPlan
from superlab.model.routers import Routing
from superlab.train.parallel import World

# Seconds a rank waits in an expert-parallel collective before giving up (our choice:
# long enough for a slow step on a shared CPU, short enough to notice a hung peer).
TIMEOUT_S = 300.0
EXPERT_WEIGHTS = ("w1_EFD", "w3_EFD", "w2_EDF")


class ExpertParallelError(RuntimeError):
    """An expert-parallel collective failed: a peer died or timed out."""


@dataclass(frozen=True)
class Layout:
    """This rank's place in the EP x DP grid (pure arithmetic, no process groups)."""

    ep: int
    world: int
    rank: int

    @property
    def dp(self) -> int:
        return self.world // self.ep

    @property
    def ep_rank(self) -> int:
        return self.rank % self.ep

    @property
    def ep_ranks(self) -> list[int]:
        """The ranks of this rank's EP group (one copy of the experts between them)."""
        base = self.rank - self.ep_rank
        return list(range(base, base + self.ep))

    @property
    def replica_ranks(self) -> list[int]:
        """The ranks holding the same experts as this one."""
        return list(range(self.ep_rank, self.world, self.ep))


def check_layout(ep: int, world: int, num_experts: int | None) -> None:
    """One-line errors for an EP size that does not divide the world or the experts."""
    if world % ep:
        raise StageError(
            f"train.expert_parallel ({ep}) must divide the world size ({world}): "
            f"world = expert_parallel x data-parallel replicas"
        )
    if num_experts is None:
        raise StageError(f"train.expert_parallel ({ep}) needs a MoE model (model.moe)")
    if num_experts % ep:
        raise StageError(
            f"train.expert_parallel ({ep}) must divide model.moe.num_experts ({num_experts})"
        )


def _call(op: str, ep: ExpertParallel, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except RuntimeError as e:  # gloo/NCCL: connection closed, timeout
        lay = ep.layout
        raise ExpertParallelError(
            f"rank {lay.rank}: expert-parallel {op} with ranks {lay.ep_ranks} "
            f"(world {lay.world}) failed; a peer died or timed out "
            f"(timeout {ep.timeout_s:g} s): {str(e).splitlines()[0] if str(e) else e!r}"
        ) from e


class _GatherRows(torch.autograd.Function):
    """All-gather along dim 0; backward all-reduces the gradient and keeps this rank's rows."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, ep: ExpertParallel) -> torch.Tensor:  # type: ignore[override]
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(ep.layout.world)]
        _call("gather of router logits", ep, dist.all_gather, parts, x, group=ep.world_group)
        ctx.ep, ctx.rows = ep, x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        ep: ExpertParallel = ctx.ep
        g = g.contiguous().clone()
        _call("reduce of router gradients", ep, dist.all_reduce, g, group=ep.world_group)
        rank, n = ep.layout.rank, ctx.rows
        return g[rank * n : (rank + 1) * n], None


class _AllToAll(torch.autograd.Function):
    """``all_to_all_single`` of rows with uneven splits; backward swaps the splits."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: torch.Tensor, send: list[int], recv: list[int], ep: ExpertParallel
    ) -> torch.Tensor:
        ctx.send, ctx.recv, ctx.ep = send, recv, ep
        return ep.exchange(x, send, recv)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:  # type: ignore[override]
        return ctx.ep.exchange(g, ctx.recv, ctx.send), None, None, None


class ExpertParallel:
    """The process groups of one EP layout and the dispatch its MoE layers use."""

    def __init__(self, layout: Layout, num_experts: int, timeout_s: float = TIMEOUT_S) -> None:
        self.layout = layout
        self.num_experts = num_experts
        self.local_experts = num_experts // layout.ep
        self.timeout_s = timeout_s
        timeout = timedelta(seconds=timeout_s)
        W, P = layout.world, layout.ep
        # Every rank creates every group, in the same order (torch.distributed's rule).
        self.world_group = dist.new_group(list(range(W)), timeout=timeout)
        self.ep_group: Any = None
        self.replica_group: Any = None
        for g in range(W // P):
            group = dist.new_group(list(range(g * P, (g + 1) * P)), timeout=timeout)
            if layout.rank in range(g * P, (g + 1) * P):
                self.ep_group = group
        for p in range(P):
            group = dist.new_group(list(range(p, W, P)), timeout=timeout)
            if layout.rank % P == p:
                self.replica_group = group
        self.layers: list[tuple[str, MoE]] = []

    # ------------------------------------------------------------------ dispatch

    def gather(self, logits_BLE: torch.Tensor) -> torch.Tensor:
        return _GatherRows.apply(logits_BLE, self)

    def exchange(self, x_ND: torch.Tensor, send: list[int], recv: list[int]) -> torch.Tensor:
        """Rows ``x_ND`` split by ``send`` to the EP group; ``recv`` rows back from each."""
        x_ND = x_ND.contiguous()
        out = x_ND.new_empty((sum(recv), *x_ND.shape[1:]))
        _call(
            "all-to-all of expert tokens",
            self,
            dist.all_to_all_single,
            out,
            x_ND,
            recv,
            send,
            group=self.ep_group,
        )
        return out

    def plan(self, routing: Routing, num_tokens: int) -> SlotPlan:
        lay, E_l = self.layout, self.local_experts
        counts_E = routing.counts_E
        expert_N = torch.repeat_interleave(
            torch.arange(counts_E.numel(), device=counts_E.device), counts_E
        )
        owner_N = torch.div(routing.token_N, num_tokens, rounding_mode="floor")  # world rank
        own = (owner_N == lay.rank).nonzero().squeeze(1)  # ascending: sorted by expert
        send = torch.bincount(expert_N[own] // E_l, minlength=lay.ep).tolist()
        # What the peers of this EP group send here: their slots on this rank's experts.
        mine = (expert_N // E_l == lay.ep_rank) & (owner_N // lay.ep == lay.rank // lay.ep)
        incoming = mine.nonzero().squeeze(1)  # global order: by expert, then priority
        source_N = owner_N[incoming] - (lay.rank - lay.ep_rank)
        recv = torch.bincount(source_N, minlength=lay.ep).tolist()
        arrival = torch.argsort(source_N, stable=True)  # received row i = incoming[arrival[i]]
        to_global = torch.argsort(arrival)
        counts = torch.bincount(expert_N[incoming] - lay.ep_rank * E_l, minlength=E_l).tolist()

        def run(moe: MoE, x_ND: torch.Tensor) -> torch.Tensor:
            got_RD = _AllToAll.apply(x_ND, send, recv, self)
            x_RD = got_RD[to_global]
            # Nothing received: pass the empty rows on, so both exchanges stay in the
            # autograd graph and every rank runs the same collectives in backward.
            out_RD = moe._looped(x_RD, counts) if x_RD.shape[0] else x_RD
            return _AllToAll.apply(out_RD[arrival], recv, send, self)

        return SlotPlan(
            routing.token_N[own] - lay.rank * num_tokens,
            routing.slot_N[own],
            routing.weight_N[own],
            run,
        )

    # ------------------------------------------------------------------ setup

    def shard(self, model: nn.Module) -> None:
        """Keep this rank's experts in every MoE layer and make the layer dispatch here."""
        lo = self.layout.ep_rank * self.local_experts
        for name, module in model.named_modules():
            if not isinstance(module, MoE):
                continue
            for w in EXPERT_WEIGHTS:
                full = getattr(module, w)
                part = full.detach()[lo : lo + self.local_experts].clone()
                setattr(module, w, nn.Parameter(part, requires_grad=full.requires_grad))
            module.dispatch = self
            self.layers.append((name, module))

    def expert_names(self) -> list[str]:
        """State-dict names of the expert weights (this rank holds a slice of each)."""
        return [f"{name}.{w}" if name else w for name, _ in self.layers for w in EXPERT_WEIGHTS]

    def expert_params(self) -> list[nn.Parameter]:
        return [getattr(m, w) for _, m in self.layers for w in EXPERT_WEIGHTS]

    # ------------------------------------------------------------------ gradients

    @torch.no_grad()
    def sync_grads(self) -> None:
        """Expert gradients: sum over the replica group, then / W (as DDP's mean)."""
        params = self.expert_params()
        for p in params:
            if p.grad is None:  # no token reached this rank's experts: one process has zeros
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        if self.layout.dp > 1:
            _call(
                "all-reduce of expert gradients",
                self,
                dist.all_reduce,
                flat,
                group=self.replica_group,
            )
        flat /= self.layout.world
        for p, g in zip(params, flat.split([p.numel() for p in params]), strict=True):
            p.grad.copy_(g.view_as(p))

    @torch.no_grad()
    def clip_grad_norm(self, model: nn.Module, max_norm: float) -> torch.Tensor:
        """``clip_grad_norm_`` over the whole model: replicated (DDP) or sharded (FSDP2)
        gradients, plus every rank's expert shard."""
        from torch.distributed.tensor import DTensor

        experts = {id(p) for p in self.expert_params()}
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        dense = [p.grad for p in model.parameters() if p.grad is not None and id(p) not in experts]
        replicated = [g for g in dense if not isinstance(g, DTensor)]
        fsdp = [g.to_local() for g in dense if isinstance(g, DTensor)]  # disjoint shards
        sharded = [p.grad for p in self.expert_params() if p.grad is not None]

        def squares(gs: list[torch.Tensor]) -> torch.Tensor:
            if not gs:
                return torch.zeros((), dtype=torch.float32)
            return torch.stack([torch.linalg.vector_norm(g) for g in gs]).pow(2).sum()

        fsdp_sq = squares(fsdp).reshape(1)
        if fsdp:
            _call(
                "all-reduce of the gradient norm",
                self,
                dist.all_reduce,
                fsdp_sq,
                group=self.world_group,
            )
        shard_sq = squares(sharded).reshape(1)
        _call(
            "all-reduce of the gradient norm",
            self,
            dist.all_reduce,
            shard_sq,
            group=self.ep_group,
        )
        total = (squares(replicated) + fsdp_sq[0] + shard_sq[0]).sqrt()
        coef = float((max_norm / (total + 1e-6)).clamp(max=1.0))
        for g in grads:
            g.mul_(coef)
        return total

    # ------------------------------------------------------------------ checkpoints

    @torch.no_grad()
    def consolidate(
        self,
        model_sd: dict[str, torch.Tensor],
        optim_sd: dict[str, Any],
        optimizer: torch.optim.Optimizer,
    ) -> None:
        """Put the full expert tensors (and their AdamW moments) into both state dicts.

        Every rank must call it (each EP group gathers its own shards); the dicts are
        filled where they are not empty (rank 0: the ranks that write)."""

        def full(t: torch.Tensor) -> torch.Tensor:
            t = t.detach().contiguous()
            parts = [torch.empty_like(t) for _ in range(self.layout.ep)]
            _call("checkpoint gather", self, dist.all_gather, parts, t, group=self.ep_group)
            return torch.cat(parts).cpu()

        for name, param in zip(self.expert_names(), self.expert_params(), strict=True):
            weight = full(param)
            if model_sd:
                model_sd[name] = weight
            state = optimizer.state.get(param, {})
            for key in sorted(state):
                value = state[key]
                if torch.is_tensor(value) and value.dim() > 0:
                    value = full(value)
                    if optim_sd:
                        optim_sd["state"][name][key] = value

    def shard_state(self, model_sd: dict[str, torch.Tensor], optim_sd: dict[str, Any]) -> None:
        """Cut full expert tensors (a consolidated checkpoint) down to this rank's experts."""
        lo, n = self.layout.ep_rank * self.local_experts, self.local_experts
        for name in self.expert_names():
            if model_sd[name].shape[0] != self.num_experts:
                raise StageError(
                    f"checkpoint tensor {name} has {model_sd[name].shape[0]} experts, "
                    f"the model {self.num_experts}"
                )
            model_sd[name] = model_sd[name][lo : lo + n]
            state = optim_sd.get("state", {}).get(name, {})
            for key, value in state.items():
                if torch.is_tensor(value) and value.dim() > 0:
                    state[key] = value[lo : lo + n]


def setup(model: nn.Module, cfg: ModelConfig, ep: int, world: World) -> ExpertParallel | None:
    """Shard ``model``'s experts over ``ep`` ranks (None when ``ep`` is 1).

    Call before building the optimizer and before ``parallel.parallelize``, which leaves
    the expert weights out of DDP and FSDP2 (``sync_grads`` reduces them instead).
    """
    if ep == 1:
        return None
    check_layout(ep, world.size, cfg.moe.num_experts if cfg.moe is not None else None)
    assert cfg.moe is not None
    ep_obj = ExpertParallel(Layout(ep, world.size, world.rank), cfg.moe.num_experts)
    ep_obj.shard(model)
    return ep_obj


def param_bytes(model: nn.Module) -> int:
    """Bytes of this rank's parameters."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def optimizer_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of this rank's optimizer state tensors (AdamW: two moments; the step counts)."""
    return sum(
        v.numel() * v.element_size()
        for state in optimizer.state.values()
        for v in state.values()
        if torch.is_tensor(v)
    )


def routed_expert_params(cfg: ModelConfig) -> int:
    """Parameters of the routed experts (what EP shards), over every MoE layer."""
    if cfg.moe is None:
        return 0
    per_expert = 3 * cfg.d_model * (cfg.moe.expert_hidden or cfg.hidden)
    moe_layers = sum(cfg.is_moe_layer(i) for i in range(cfg.n_layers))
    return moe_layers * cfg.moe.num_experts * per_expert


def planned_bytes(cfg: ModelConfig, ep: int, world: int) -> dict[str, float]:
    """``superlab.plan.memory``'s per-GPU parameter and optimizer bytes for this trainer.

    The planner's formula (dense + experts / EP per rank, no ZeRO under DDP) at the
    trainer's sizes: fp32 weights (4 bytes) and AdamW's two fp32 moments (8 bytes).
    ``superlab plan train``'s defaults assume bf16 weights with a 12-byte fp32 master
    copy and moments instead (14 bytes per parameter against the trainer's 12)."""
    from superlab.model.counts import param_count
    from superlab.plan.memory import GB, training_memory
    from superlab.plan.memory import Layout as PlanLayout

    mem = training_memory(
        params=param_count(cfg)["total"],
        expert_params=routed_expert_params(cfg),
        layers=cfg.n_layers,
        d_model=cfg.d_model,
        n_heads=cfg.n_heads,
        seq_len=1,
        layout=PlanLayout(dp=world, ep=ep, zero=0),
        memory_gb=1.0,
        bytes_weight=4.0,
        bytes_grad=4.0,
        bytes_optimizer=8.0,
    )
    return {
        "param_bytes": float(mem["weights_gb"]) * GB,
        "optimizer_bytes": float(mem["optimizer_gb"]) * GB,
    }
