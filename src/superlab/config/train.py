"""The ``train`` section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from superlab.config.section import Section


class TrainConfig(Section):
    """The training loop: AdamW, warmup + cosine or WSD, precision, parallelism, checkpoints."""

    steps: int = Field(default=200, ge=1)
    # The global batch of one micro-step; under torchrun each rank takes its own
    # batch_size / world_size rows of it, so the run is the same at any world size.
    batch_size: int = Field(default=16, ge=1)
    seq_len: int = Field(default=256, ge=8)
    grad_accum: int = Field(default=1, ge=1)
    lr: float = Field(default=3e-3, gt=0)
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)
    warmup_steps: int = Field(default=20, ge=0)
    # cosine: warmup, then cosine decay to min_lr_ratio * lr over the remaining steps.
    # wsd (warmup-stable-decay): warmup, constant lr, then a 1-sqrt decay to
    # min_lr_ratio * lr over the last decay_fraction of the steps (Hägele et al. 2024).
    schedule: Literal["cosine", "wsd"] = "cosine"
    decay_fraction: float = Field(
        default=0.2, gt=0, le=1, description="wsd: share of the steps spent decaying"
    )
    weight_decay: float = Field(default=0.1, ge=0)
    beta1: float = Field(default=0.9, ge=0, lt=1)
    beta2: float = Field(default=0.95, ge=0, lt=1)
    grad_clip: float = Field(default=1.0, ge=0, description="0 = off")
    # auto: bf16 autocast on a CUDA device that supports it, fp32 elsewhere; bf16 also
    # runs on CPU (slower than fp32 without AMX). Weights and AdamW state stay fp32.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    compile: bool = Field(default=False, description="torch.compile each block")
    document_mask: bool = Field(
        default=False, description="no attention across document boundaries in a window"
    )
    max_bad_steps: int = Field(
        default=5, ge=1, description="non-finite steps in a row that stop the run"
    )
    # Under torchrun (WORLD_SIZE > 1): ddp replicates the model on every rank, fsdp
    # shards parameters, gradients and optimizer state (FSDP2 fully_shard per block).
    distributed: Literal["ddp", "fsdp"] = "ddp"
    # Expert parallelism: each MoE layer's experts split over this many ranks (tokens
    # go to them by all-to-all); it must divide the world size and model.moe.num_experts.
    # The rest of the model stays under train.distributed (ddp or fsdp) over all ranks.
    expert_parallel: int = Field(
        default=1, ge=1, description="ranks that split each MoE layer's experts"
    )
    peak_tflops: float | None = Field(
        default=None,
        gt=0,
        description="one device's dense peak for MFU; None = the plan catalog's (CUDA only)",
    )
    tensorboard: bool = Field(default=True, description="also write tb/ when installed")
    log_every: int = Field(default=10, ge=1)
    eval_every: int = Field(default=50, ge=1)
    eval_batches: int = Field(default=4, ge=1)
    ckpt_every: int = Field(default=50, ge=1)
    keep_last: int = Field(default=2, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(default=0, ge=0, description="torch CPU threads; 0 = all cores")
    seed: int = 1234
