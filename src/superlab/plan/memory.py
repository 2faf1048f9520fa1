"""Training memory per GPU under a parallel layout: weights, gradients, optimizer, activations.

The formulas (bytes per GPU):

- local parameters = dense / (TP x PP) + experts / (EP x PP)
- weights = local x bytes_weight / S3, gradients = local x bytes_grad / S2,
  optimizer = local x bytes_optimizer / S1, where S_k is the data-parallel degree
  when the ZeRO stage is >= k and 1 otherwise (Rajbhandari et al. 2020, "ZeRO",
  sec. 5: stage 1 shards optimizer state, 2 also gradients, 3 also parameters;
  FSDP full sharding = stage 3). Experts shard over DP / EP replicas.
- Adam in mixed precision keeps 12 bytes per parameter of optimizer state (fp32
  master weights, momentum and variance: ZeRO paper, sec. 3.1, K = 12).
- activations per layer and micro-batch (Korthikanti et al. 2022, "Reducing
  Activation Recomputation in Large Transformer Models", sec. 4, 16-bit):
  s b h (34 + 5 a s / h) with no parallelism; with tensor parallelism t and
  sequence parallelism s b h (34 + 5 a s / h) / t; selective recompute (or flash
  attention, which never stores the s x s scores) drops the 5 a s / h term; full
  recompute keeps only each layer's input, 2 s b h (/ t with sequence parallelism).
  With a 1F1B pipeline the first stage holds PP micro-batches of L / PP layers,
  i.e. L layers' worth (Korthikanti et al. sec. 4.2.3).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Recompute = Literal["none", "selective", "full"]
# Adam with fp32 master weights, momentum and variance (ZeRO paper, K = 12).
ADAM_MIXED_BYTES = 12.0
# Share of HBM a training job can fill: the rest goes to the CUDA context, NCCL
# buffers and allocator fragmentation (assumption, typical of PyTorch jobs).
USABLE_FRACTION = 0.9
GB = 1e9


class Layout(BaseModel):
    """A parallel layout: tensor, pipeline, data and expert parallel degrees and ZeRO stage."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tp: int = Field(default=1, ge=1)
    pp: int = Field(default=1, ge=1)
    dp: int = Field(default=1, ge=1)
    ep: int = Field(default=1, ge=1)
    zero: Literal[0, 1, 2, 3] = 1
    sequence_parallel: bool = True
    recompute: Recompute = "selective"
    micro_batch: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _ep_divides_dp(self) -> Layout:
        if self.dp % self.ep:
            raise ValueError(f"ep ({self.ep}) must divide dp ({self.dp}): experts shard over DP")
        return self

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp


def training_memory(
    *,
    params: float,
    expert_params: float = 0.0,
    layers: int,
    d_model: int,
    n_heads: int,
    seq_len: int,
    layout: Layout,
    memory_gb: float,
    bytes_weight: float = 2.0,
    bytes_grad: float = 2.0,
    bytes_optimizer: float = ADAM_MIXED_BYTES,
) -> dict[str, float | bool | str]:
    """Per-GPU memory in GB by kind, the total, and whether it fits ``memory_gb``."""
    if not 0 <= expert_params <= params:
        raise ValueError(f"expert_params ({expert_params:g}) must be in [0, params={params:g}]")
    lay = layout
    dense, experts = params - expert_params, expert_params
    dense_local = dense / (lay.tp * lay.pp)
    expert_local = experts / (lay.ep * lay.pp)

    def sharded(stage: int, per_param: float) -> float:
        d = dense_local / (lay.dp if lay.zero >= stage else 1)
        e = expert_local / (lay.dp // lay.ep if lay.zero >= stage else 1)
        return (d + e) * per_param

    weights = sharded(3, bytes_weight)
    grads = sharded(2, bytes_grad)
    optimizer = sharded(1, bytes_optimizer)

    s, b, h, a, t = seq_len, lay.micro_batch, d_model, n_heads, lay.tp
    if lay.recompute == "full":
        per_layer = 2 * s * b * h / (t if lay.sequence_parallel else 1)
    else:
        scores = 5 * a * s / h if lay.recompute == "none" else 0.0
        if lay.sequence_parallel:
            per_layer = s * b * h * (34 + scores) / t
        else:
            per_layer = s * b * h * (10 + 24 / t + scores / t)
    activations = per_layer * layers  # 1F1B: first stage holds L layers' worth
    total = weights + grads + optimizer + activations
    usable = memory_gb * USABLE_FRACTION
    return {
        "weights_gb": weights / GB,
        "gradients_gb": grads / GB,
        "optimizer_gb": optimizer / GB,
        "activations_gb": activations / GB,
        "total_gb": total / GB,
        "usable_gb": usable,
        "fits": total / GB <= usable,
        "formula": (
            "weights+grads+optimizer = P_local x (2/S3 + 2/S2 + 12/S1) bytes; "
            "activations = L x s b h (34 + 5as/h) / t (Korthikanti et al. 2022)"
        ),
    }
