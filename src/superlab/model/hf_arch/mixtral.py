"""Mixtral (``MixtralForCausalLM``): MoE in every layer, optional sliding window.

MoE in every layer (``every=1``), our ``token_choice`` router with a softmax, top-k,
renormalised (``norm_topk``), gating the expert's output; ``sliding_window`` w lets query
t see keys s with ``t - s < w`` (transformers' ``sliding_window_overlay``), our
``sliding`` kind.
"""

from __future__ import annotations

from typing import Any

from superlab.config.model import AttentionConfig, ModelConfig, MoEConfig
from superlab.model.hf_arch.base import HFArch, kinds, refuse_set, require_moe

TITLE = "Mixtral"
# transformers' class defaults for fields a config.json may leave out.
DEFAULTS: dict[str, Any] = {
    "rope_theta": 1e6,
    "rms_norm_eps": 1e-5,
    "max_position_embeddings": 131072,
}
# What every Mixtral MoE layer is, whatever its size: from_hf builds it, to_hf requires it.
ROUTING: dict[str, Any] = {
    "every": 1,
    "router": "token_choice",  # dropless (no capacity), no shared expert
    "capacity_factor": None,
    "num_shared_experts": 0,
    "score_func": "softmax",  # the top-k renormalised, gating the expert's output
    "norm_topk": True,
    "gate_on": "output",
}


def from_hf(hf: dict[str, Any]) -> dict[str, Any]:
    """The ``ModelConfig`` fields only Mixtral maps, from its ``config.json``."""
    window = hf.get("sliding_window")
    moe = MoEConfig(
        num_experts=hf["num_local_experts"],
        top_k=hf["num_experts_per_tok"],
        aux_loss_coef=hf.get("router_aux_loss_coef", 0.001),
        z_loss_coef=0.0,
        **ROUTING,
    )
    attention = AttentionConfig(kind="sliding", window=window) if window else AttentionConfig()
    return {"ffn_hidden": hf["intermediate_size"], "attention": attention, "moe": moe}


def to_hf(cfg: ModelConfig) -> dict[str, Any]:
    """The ``config.json`` fields only Mixtral has; refuses what it lacks."""
    refuse_set(cfg, "mixtral", ("layer_pattern", "qk_norm", "nope_temperature"))
    kind = kinds(cfg, "mixtral", ("full", "sliding"))[0]
    moe = require_moe(cfg, TITLE, **ROUTING)
    return {
        "intermediate_size": moe.expert_hidden or cfg.hidden,
        "num_local_experts": moe.num_experts,
        "num_experts_per_tok": moe.top_k,
        "router_aux_loss_coef": moe.aux_loss_coef,
        "sliding_window": kind.window if kind.kind == "sliding" else None,
    }


ARCH = HFArch("mixtral", "MixtralForCausalLM", "mixtral", TITLE, DEFAULTS, from_hf, to_hf)
