"""Qwen3-MoE (``Qwen3MoeForCausalLM``): softmax top-k MoE, per-head RMS QK-norm.

The same softmax top-k router as Mixtral, renormalised only with ``norm_topk_prob``;
experts of ``moe_intermediate_size`` on layers i with ``(i + 1) % decoder_sparse_step
== 0`` not in ``mlp_only_layers`` (``moe.every``, or explicit ``mlp`` entries of a
``layer_pattern``), dense ``intermediate_size`` MLPs elsewhere; ``q_norm``/``k_norm`` are
RMSNorms over each head (eps ``rms_norm_eps``) before RoPE, our ``qk_norm: rms``;
``head_dim`` may differ from hidden/heads (``model.d_head``).
"""

from __future__ import annotations

from typing import Any

from superlab.config.model import AttentionConfig, LayerSpec, ModelConfig, MoEConfig
from superlab.model.hf_arch.base import (
    HFArch,
    get,
    kinds,
    mlp_kinds,
    pattern,
    refuse,
    refuse_set,
    require,
    require_moe,
)

TITLE = "Qwen3-MoE"
# transformers' class defaults for fields a config.json may leave out.
DEFAULTS: dict[str, Any] = {
    "rope_theta": 10_000.0,
    "rms_norm_eps": 1e-6,
    "max_position_embeddings": 32768,
    "moe_intermediate_size": 768,
    "num_experts_per_tok": 8,
    "num_experts": 128,
    "decoder_sparse_step": 1,
    "router_aux_loss_coef": 0.001,
}
# What every Qwen3-MoE layer is, whatever its size (norm_topk_prob varies by checkpoint):
# from_hf builds it, to_hf requires it.
ROUTING: dict[str, Any] = {
    "router": "token_choice",  # dropless (no capacity), no shared expert
    "capacity_factor": None,
    "num_shared_experts": 0,
    "score_func": "softmax",  # gating the expert's output
    "gate_on": "output",
}


def from_hf(hf: dict[str, Any]) -> dict[str, Any]:
    """The ``ModelConfig`` fields only Qwen3-MoE maps, from its ``config.json``."""
    n, step = hf["num_hidden_layers"], get(hf, DEFAULTS, "decoder_sparse_step")
    # transformers saves num_experts as num_local_experts (its attribute_map).
    given = [hf[k] for k in ("num_experts", "num_local_experts") if hf.get(k) is not None]
    num_experts = given[0] if given else DEFAULTS["num_experts"]
    if not isinstance(step, int) or step < 1:  # every step-th layer is MoE
        raise refuse("decoder_sparse_step", step, "must be a positive integer")
    dense = set(hf.get("mlp_only_layers") or [])
    moe_layers = {i for i in range(n) if (i + 1) % step == 0 and i not in dense}
    if not num_experts:
        raise refuse("num_experts", num_experts, "a dense Qwen3 is not supported")
    if not moe_layers:
        why = (
            f"with decoder_sparse_step {step} it leaves none of the {n} layers MoE;"
            " a dense Qwen3 is not supported"
        )
        raise refuse("mlp_only_layers", hf.get("mlp_only_layers"), why)
    moe = MoEConfig(
        num_experts=num_experts,
        top_k=get(hf, DEFAULTS, "num_experts_per_tok"),
        expert_hidden=get(hf, DEFAULTS, "moe_intermediate_size"),
        every=step,
        norm_topk=bool(hf.get("norm_topk_prob", False)),
        aux_loss_coef=get(hf, DEFAULTS, "router_aux_loss_coef"),
        z_loss_coef=0.0,
        **ROUTING,
    )
    window = hf.get("sliding_window") if hf.get("use_sliding_window") else None
    attention = AttentionConfig(kind="sliding", window=window) if window else AttentionConfig()
    specs = [LayerSpec(mlp=m) for m in mlp_kinds(moe_layers, step, n)]
    return {
        "ffn_hidden": hf["intermediate_size"],
        "attention": attention,
        "moe": moe,
        "layer_pattern": pattern(specs),
        "qk_norm": "rms",
    }


def to_hf(cfg: ModelConfig) -> dict[str, Any]:
    """The ``config.json`` fields only Qwen3-MoE has; refuses what it lacks."""
    refuse_set(cfg, "qwen3_moe", ("nope_temperature",))
    require(TITLE, {"qk_norm": (cfg.qk_norm, "rms")})
    for j, spec in enumerate(cfg.layer_pattern or []):  # only dense / MoE choices
        if spec.model_copy(update={"mlp": None}) != LayerSpec():
            raise ValueError(f"layer_pattern.{j} = {spec!r}: qwen3_moe varies only the MLP")
    kind = kinds(cfg, "qwen3_moe", ("full", "sliding"))[0]
    moe = require_moe(cfg, TITLE, **ROUTING)
    n = cfg.n_layers
    moe_layers = {i for i in range(n) if cfg.is_moe_layer(i)}
    step = moe.every if all((i + 1) % moe.every == 0 for i in moe_layers) else 1
    return {
        "moe_intermediate_size": moe.expert_hidden or cfg.hidden,
        "num_experts": moe.num_experts,
        "num_experts_per_tok": moe.top_k,
        "norm_topk_prob": moe.norm_topk,
        "decoder_sparse_step": step,
        "mlp_only_layers": [i for i in range(n) if (i + 1) % step == 0 and i not in moe_layers],
        "router_aux_loss_coef": moe.aux_loss_coef,
        "use_sliding_window": kind.kind == "sliding",
        "sliding_window": kind.window if kind.kind == "sliding" else None,
    }


ARCH = HFArch("qwen3_moe", "Qwen3MoeForCausalLM", "qwen3_moe", TITLE, DEFAULTS, from_hf, to_hf)
