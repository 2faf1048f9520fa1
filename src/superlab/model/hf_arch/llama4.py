"""Llama 4 text (``Llama4ForCausalLM``, ``model_type`` llama4_text): iRoPE, chunked layers.

Layer i uses RoPE iff ``no_rope_layers[i]`` (0 every 4th layer: NoPE) and
``chunked_attention`` (``attention_chunk_size``) or ``full_attention`` by ``layer_types``
(by default chunked exactly on the RoPE layers), our ``layer_pattern``. NoPE layers scale
q by ``log1p(floor((pos + 1) / floor_scale)) * attn_scale + 1`` with
``attn_temperature_tuning`` (``model.nope_temperature``). ``use_qk_norm``: a weightless
L2 norm (``x / rms(x)``, eps ``rms_norm_eps``) after RoPE on RoPE layers, our ``qk_norm:
l2``. Router: top-k of the raw logits, then ``sigmoid`` of each chosen logit, not
renormalised, scaling the expert's *input* (``score_func: sigmoid``, ``norm_topk:
false``, ``gate_on: input``); one always-on shared expert; experts and the shared expert
of ``intermediate_size``, dense layers (``interleave_moe_layer_step`` / ``moe_layers``)
of ``intermediate_size_mlp``. Sliding or sparse layers are refused.
"""

from __future__ import annotations

from typing import Any

from superlab.config.model import LayerSpec, ModelConfig, MoEConfig, NopeTemperatureConfig
from superlab.model.hf_arch.base import HFArch, get, kinds, mlp_kinds, pattern, refuse, require_moe

TITLE = "Llama 4"
# transformers' class defaults for fields a config.json may leave out.
DEFAULTS: dict[str, Any] = {
    "rope_theta": 500_000.0,
    "rms_norm_eps": 1e-5,
    "max_position_embeddings": 131072,
    "intermediate_size": 8192,
    "intermediate_size_mlp": 16384,
    "num_local_experts": 16,
    "num_experts_per_tok": 1,
    "interleave_moe_layer_step": 1,
    "no_rope_layer_interval": 4,
    "floor_scale": 8192,
    "attn_scale": 0.1,
    "router_aux_loss_coef": 0.001,
}
# What every Llama 4 MoE layer is, whatever its size: from_hf builds it, to_hf requires it.
ROUTING: dict[str, Any] = {
    "router": "token_choice",  # dropless (no capacity), one routed expert and a shared one
    "capacity_factor": None,
    "num_shared_experts": 1,
    "score_func": "sigmoid",  # the top-k's raw sigmoid scores gate the expert's input
    "norm_topk": False,
    "gate_on": "input",
}


def from_hf(hf: dict[str, Any]) -> dict[str, Any]:
    """The ``ModelConfig`` fields only Llama 4 maps, from its ``config.json``."""
    n = hf["num_hidden_layers"]
    interval = get(hf, DEFAULTS, "no_rope_layer_interval")
    rope = hf.get("no_rope_layers") or [int((i + 1) % interval != 0) for i in range(n)]
    if len(rope) < n:
        raise refuse("no_rope_layers", rope, f"needs an entry for each of the {n} layers")
    types = hf.get("layer_types") or ["chunked_attention" if r else "full_attention" for r in rope]
    if len(types) < n or set(types[:n]) - {"full_attention", "chunked_attention"}:
        raise refuse("layer_types", types, f"{n} of 'full_attention' / 'chunked_attention'")
    chunk = hf.get("attention_chunk_size")
    if "chunked_attention" in types[:n] and not chunk:
        raise refuse("attention_chunk_size", chunk, "chunked_attention layers need a size")
    step = get(hf, DEFAULTS, "interleave_moe_layer_step")
    listed = hf.get("moe_layers")
    moe_layers = set(range(step - 1, n, step) if listed is None else listed) & set(range(n))
    moe = None
    if moe_layers:
        moe = MoEConfig(
            num_experts=get(hf, DEFAULTS, "num_local_experts"),
            top_k=get(hf, DEFAULTS, "num_experts_per_tok"),
            expert_hidden=get(hf, DEFAULTS, "intermediate_size"),
            every=step,
            aux_loss_coef=get(hf, DEFAULTS, "router_aux_loss_coef"),
            z_loss_coef=0.0,
            **ROUTING,
        )
    mlp = mlp_kinds(moe_layers, step, n) if moe_layers else [None] * n
    specs = []
    for i in range(n):
        chunked = types[i] == "chunked_attention"
        specs.append(
            LayerSpec(
                attention="chunked" if chunked else None,  # None: model.attention, full
                chunk_size=chunk if chunked else None,
                rope=bool(rope[i]),
                mlp=mlp[i],
            )
        )
    temperature = None
    if hf.get("attn_temperature_tuning", True):
        temperature = NopeTemperatureConfig(
            floor_scale=float(get(hf, DEFAULTS, "floor_scale")),
            attn_scale=get(hf, DEFAULTS, "attn_scale"),
        )
    return {
        "ffn_hidden": get(hf, DEFAULTS, "intermediate_size_mlp"),
        "moe": moe,
        "layer_pattern": pattern(specs),
        "qk_norm": "l2" if hf.get("use_qk_norm", True) else "none",
        "nope_temperature": temperature,
    }


def to_hf(cfg: ModelConfig) -> dict[str, Any]:
    """The ``config.json`` fields only Llama 4 has; refuses what it lacks."""
    if cfg.qk_norm not in ("none", "l2"):
        raise ValueError(f"qk_norm = {cfg.qk_norm!r}: Llama 4 has only the weightless 'l2'")
    layers = kinds(cfg, "llama4", ("full", "chunked"))
    chunks = {a.chunk_size for a in layers if a.kind == "chunked"}
    if len(chunks) > 1:
        raise ValueError(f"layer_pattern: chunk sizes {sorted(chunks)}; Llama 4 has one")
    n, moe, temp = cfg.n_layers, cfg.moe, cfg.nope_temperature
    hf: dict[str, Any] = {
        "intermediate_size_mlp": cfg.hidden,
        "layer_types": [f"{a.kind}_attention" for a in layers],
        "no_rope_layers": [int(cfg.rope_for(i)) for i in range(n)],
        # transformers builds the chunked mask even when no layer uses it.
        "attention_chunk_size": chunks.pop() if chunks else cfg.max_seq_len,
        "use_qk_norm": cfg.qk_norm == "l2",
        "attn_temperature_tuning": temp is not None,
        "moe_layers": [i for i in range(n) if cfg.is_moe_layer(i)],
    }
    if temp is not None:
        if not temp.floor_scale.is_integer():  # an int in Llama4TextConfig
            raise ValueError(
                f"nope_temperature.floor_scale = {temp.floor_scale}: Llama 4 needs an int"
            )
        hf |= {"floor_scale": int(temp.floor_scale), "attn_scale": temp.attn_scale}
    if moe is None:
        return hf
    require_moe(cfg, TITLE, **ROUTING)
    return hf | {
        "intermediate_size": moe.expert_hidden or cfg.hidden,
        "num_local_experts": moe.num_experts,
        "num_experts_per_tok": moe.top_k,
        "interleave_moe_layer_step": moe.every,
        "router_aux_loss_coef": moe.aux_loss_coef,
    }


ARCH = HFArch("llama4", "Llama4ForCausalLM", "llama4_text", TITLE, DEFAULTS, from_hf, to_hf)
