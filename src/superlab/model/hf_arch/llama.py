"""Llama (``LlamaForCausalLM``, ``model_type`` llama): the dense base every arch shares.

RoPE (``rope_type`` default, linear or llama3 scaling, mapped for every architecture in
``superlab.model.hf_config``); full attention only; no MoE, no per-layer pattern.
"""

from __future__ import annotations

from typing import Any

from superlab.config.model import ModelConfig
from superlab.model.hf_arch.base import HFArch, kinds, refuse_set

# transformers' class defaults for fields a config.json may leave out.
DEFAULTS: dict[str, Any] = {
    "rope_theta": 10_000.0,
    "rms_norm_eps": 1e-6,
    "max_position_embeddings": 2048,
}


def from_hf(hf: dict[str, Any]) -> dict[str, Any]:
    """The ``ModelConfig`` fields only Llama maps, from its ``config.json``."""
    return {"ffn_hidden": hf["intermediate_size"]}


def to_hf(cfg: ModelConfig) -> dict[str, Any]:
    """The ``config.json`` fields only Llama has; refuses what it lacks."""
    refuse_set(cfg, "llama", ("layer_pattern", "qk_norm", "nope_temperature"))
    kinds(cfg, "llama", ("full",))
    if cfg.moe is not None:
        raise ValueError("moe is set: Llama is dense, export with arch='mixtral'")
    return {"mlp_bias": False}


ARCH = HFArch("llama", "LlamaForCausalLM", "llama", "Llama", DEFAULTS, from_hf, to_hf)
