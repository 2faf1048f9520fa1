"""Data parallelism and compile, applied to the one-device model from the outside.

Under ``torchrun`` (``WORLD_SIZE`` > 1) every rank builds the same model from the same
seed and ``parallelize`` wraps it: ``ddp`` (``DistributedDataParallel``, gradients
all-reduced, every rank holds everything) or ``fsdp`` (FSDP2 ``fully_shard`` on each
block, then on the root, as torchtitan does: parameters, gradients and AdamW state
sharded over ranks). Backend: NCCL on CUDA, gloo on CPU. ``train.compile`` compiles each
block first (torchtitan's order: compile, then shard).

Checkpoints are written in one format whatever the world size: ``full_state`` gathers
the full model and optimizer state dicts (parameter names as keys) onto rank 0, and
``load_full_state`` puts them back (each rank reads the files and keeps its shard), so a
run saved by two ranks resumes on one and the other way round.

Buffers that routers update from the tokens they see (the aux-free router's load, the
expert-choice threshold) are reduced over ranks here, so every rank moves them alike and
they equal the one-process values (DDP's own buffer broadcast is off).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from superlab.model.moe import MoE
from superlab.model.transformer import Transformer


@dataclass(frozen=True)
class World:
    """This process's place among the data-parallel ranks."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0 writes checkpoints, metrics and logs."""
        return self.rank == 0


def init_world(device_type: str) -> World:
    """Join torchrun's process group when ``WORLD_SIZE`` > 1; one rank otherwise."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), local_rank)


def compile_blocks(model: Transformer) -> None:
    """``torch.compile`` every block in place; in MoE blocks only the attention.

    The routers compute their statistics as Python numbers (``tolist``, ``item``), which
    dynamo cannot trace through, so MoE layers and the LM head stay eager.
    """
    for block in model.blocks:
        if isinstance(block.mlp, MoE):
            block.attn.compile()
        else:
            block.compile()


def parallelize(model: Transformer, strategy: str, world: World) -> nn.Module:
    """The module to call in training: ``model`` itself, DDP around it, or ``model`` sharded."""
    if world.size == 1:
        return model
    experts = expert_weights(model)  # sharded by expert parallelism: reduced there
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        ignored = set(experts.values()) or None
        for block in model.blocks:
            fully_shard(block, ignored_params=ignored)
        fully_shard(model, ignored_params=ignored)
        return model
    if strategy != "ddp":
        raise ValueError(f"train.distributed {strategy!r}: expected 'ddp' or 'fsdp'")
    device = next(model.parameters()).device
    ids = [device.index] if device.type == "cuda" else None
    # Router buffers are reduced by sync_router_buffers; DDP must not overwrite them with
    # rank 0's at each forward (aux-free loads add up over micro-batches). torch 2.13
    # renamed the switch and deprecated the old name.
    ddp = nn.parallel.DistributedDataParallel
    if experts:
        ddp._set_params_and_buffers_to_ignore_for_model(model, list(experts))
    no_sync = (
        {"forward_sync_buffers": False}
        if "forward_sync_buffers" in inspect.signature(ddp).parameters
        else {"broadcast_buffers": False}
    )
    return ddp(model, device_ids=ids, **no_sync)


def expert_weights(model: Transformer) -> dict[str, nn.Parameter]:
    """The expert weights of MoE layers under expert parallelism (this rank's slices)."""
    return {
        f"blocks.{i}.mlp.{name}": getattr(block.mlp, name)
        for i, block in enumerate(model.blocks)
        if isinstance(block.mlp, MoE) and block.mlp.dispatch is not None
        for name in ("w1_EFD", "w3_EFD", "w2_EDF")
    }


@contextmanager
def gradient_sync(module: nn.Module, enabled: bool) -> Iterator[None]:
    """Skip the gradient all-reduce on all but the last micro-batch of a step."""
    if enabled:
        yield
        return
    if isinstance(module, nn.parallel.DistributedDataParallel):
        with module.no_sync():
            yield
        return
    if hasattr(module, "set_requires_gradient_sync"):  # FSDP2
        module.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            module.set_requires_gradient_sync(True)
        return
    yield  # one rank: nothing to synchronise


def all_mean(values: list[float], world: World, device: torch.device) -> list[float]:
    """The mean over ranks of each of ``values`` (the values themselves on one rank)."""
    if world.size == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return (t / world.size).tolist()


def all_gather(obj: Any, world: World) -> list[Any]:
    """Every rank's ``obj``, in rank order."""
    if world.size == 1:
        return [obj]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def sync_router_buffers(model: Transformer, world: World, before_update: bool) -> None:
    """Sum the aux-free routers' loads over ranks (before ``update_bias``), or average the
    expert-choice thresholds (after the step), so every rank's routers stay identical."""
    if world.size == 1:
        return
    for block in model.blocks:
        if not isinstance(block.mlp, MoE) or block.mlp.dispatch is not None:
            continue  # under expert parallelism every rank routed the global batch
        routing = block.mlp.routing
        if before_update and hasattr(routing, "load_E"):
            dist.all_reduce(routing.load_E)
        if not before_update and hasattr(routing, "threshold_E"):
            dist.all_reduce(routing.threshold_E)
            routing.threshold_E /= world.size


def grad_norm_value(norm: torch.Tensor) -> float:
    """A float from ``clip_grad_norm_``'s result (a DTensor under FSDP2)."""
    full = getattr(norm, "full_tensor", None)
    return float((full() if full is not None else norm).item())


def full_state(
    model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Full model and optimizer state dicts on CPU, keyed by parameter name (rank 0; others
    get empty dicts under FSDP). Every rank must call it: it gathers shards."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    model_sd = get_model_state_dict(model, options=options)
    optim_sd = get_optimizer_state_dict(model, optimizer, options=options)
    return model_sd, optim_sd


def load_full_state(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    model_sd: dict[str, torch.Tensor],
    optim_sd: dict[str, Any],
) -> None:
    """Load what ``full_state`` returned; under FSDP each rank keeps its own shard."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True)
    set_model_state_dict(model, model_sd, options=options)
    set_optimizer_state_dict(model, optimizer, optim_sd, options=options)
