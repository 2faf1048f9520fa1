"""Hugging Face config mapping: ``config.json`` <-> our ``ModelConfig``, per architecture.

``config_from_hf(hf)`` reads the ``config.json`` dict of a Llama, Mixtral, Llama 4 text or
Qwen3-MoE checkpoint into ``(arch, ModelConfig)``; ``config_to_hf(cfg, arch, dtype)`` writes
the dict transformers' ``from_pretrained`` reads. Fields a ``config.json`` leaves out take
transformers' class defaults (``DEFAULTS``). The tensors are mapped in ``superlab.model.hf``.

All four are pre-norm RMSNorm blocks with GQA and SwiGLU. This module maps what they share
(shapes, RoPE with ``rope_type`` default, linear or llama3 scaling, norms, embeddings) and
dispatches the rest by name to one module per architecture in ``superlab.model.hf_arch``,
whose docstrings say what each maps to.

What we cannot represent (biases, another activation, partial rotary, other RoPE types,
sliding or sparse layers in Llama 4, ...) is refused with a ``ValueError`` naming the
field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from superlab.config.model import ModelConfig, RopeScalingConfig
from superlab.model.hf_arch import ARCHS, Arch, llama4_vision
from superlab.model.hf_arch.base import refuse as _refuse

if TYPE_CHECKING:  # only annotates config_to_hf's dtype
    import torch

ARCHITECTURES = {name: a.hf_class for name, a in ARCHS.items()}
MODEL_TYPES = {name: a.model_type for name, a in ARCHS.items()}
NAMES = {name: a.title for name, a in ARCHS.items()}
# transformers' class defaults for fields a config.json may leave out.
DEFAULTS: dict[str, dict[str, Any]] = {name: a.defaults for name, a in ARCHS.items()}
# The keys each supported RoPE type reads (transformers' ROPE_INIT_FUNCTIONS).
ROPE_KEYS = {
    "default": set(),
    "linear": {"factor"},
    "llama3": {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"},
}

__all__ = [
    "ARCHITECTURES",
    "DEFAULTS",
    "MODEL_TYPES",
    "NAMES",
    "ROPE_KEYS",
    "Arch",
    "config_from_hf",
    "config_to_hf",
]


def _get(hf: dict[str, Any], arch: Arch, key: str) -> Any:
    """``hf[key]``, or transformers' default when absent or null."""
    value = hf.get(key)
    return DEFAULTS[arch].get(key) if value is None else value


def _arch(hf: dict[str, Any]) -> Arch:
    """Our arch name from ``model_type`` (or ``architectures``)."""
    by_type = {t: a for a, t in MODEL_TYPES.items()}
    if hf.get("model_type") in by_type:
        return by_type[hf["model_type"]]  # type: ignore[return-value]
    for arch, cls in ARCHITECTURES.items():
        if cls in (hf.get("architectures") or []):
            return arch  # type: ignore[return-value]
    why = f"supported: {sorted(by_type)} (a Llama 4 checkpoint's text model is 'llama4_text')"
    raise _refuse("model_type", hf.get("model_type"), why)


def _rope_from_hf(hf: dict[str, Any], arch: Arch) -> tuple[float, RopeScalingConfig | None]:
    """(theta, scaling) from ``rope_scaling`` (transformers < 5) or ``rope_parameters``."""
    field = "rope_scaling" if hf.get("rope_scaling") else "rope_parameters"
    params = dict(hf.get(field) or {})
    if any(isinstance(v, dict) for v in params.values()):
        raise _refuse(field, params, "RoPE per layer type is not supported")
    partial = params.pop("partial_rotary_factor", hf.get("partial_rotary_factor"))
    if partial not in (None, 1, 1.0):
        raise _refuse("partial_rotary_factor", partial, "RoPE on every head dimension only")
    theta = params.pop("rope_theta", None) or (hf.get("rope_parameters") or {}).get("rope_theta")
    theta = theta or _get(hf, arch, "rope_theta")
    kind = params.pop("rope_type", params.pop("type", "default"))
    if kind not in ROPE_KEYS:
        raise _refuse(f"{field}.rope_type", kind, f"supported: {sorted(ROPE_KEYS)}")
    unknown, missing = set(params) - ROPE_KEYS[kind], ROPE_KEYS[kind] - set(params)
    if unknown or missing:  # a key we would silently ignore, or one we need
        key = min(unknown or missing)
        why = f"rope_type {kind!r} reads exactly {sorted(ROPE_KEYS[kind])}"
        raise _refuse(f"{field}.{key}", params.get(key), why)
    if kind == "default":
        return float(theta), None
    if kind == "linear":
        return float(theta), RopeScalingConfig(type="linear", factor=params["factor"])
    return float(theta), RopeScalingConfig(
        type="llama3",
        factor=params["factor"],
        original_max_seq_len=params["original_max_position_embeddings"],
        low_freq_factor=params["low_freq_factor"],
        high_freq_factor=params["high_freq_factor"],
    )


def config_from_hf(hf: dict[str, Any]) -> tuple[Arch, ModelConfig]:
    """Our ``ModelConfig`` for a ``config.json`` dict of a supported arch; refuses what differs."""
    if hf.get("model_type") == llama4_vision.MODEL_TYPE:  # text_config + vision_config
        if not isinstance(hf.get("text_config"), dict):
            why = "a 'llama4' config nests its text model ('llama4_text') in text_config"
            raise _refuse("text_config", hf.get("text_config"), why)
        arch, text = config_from_hf(hf["text_config"])
        vision = llama4_vision.vision_from_hf(hf)
        return arch, ModelConfig(**(text.model_dump() | {"vision": vision.model_dump()}))
    arch = _arch(hf)
    if hf.get("hidden_act", "silu") != "silu":
        raise _refuse("hidden_act", hf["hidden_act"], "only 'silu' (SwiGLU) is supported")
    for field in ("attention_bias", "mlp_bias"):
        if hf.get(field):
            raise _refuse(field, hf[field], "biases are not supported")
    theta, scaling = _rope_from_hf(hf, arch)
    d_model, n_heads = hf["hidden_size"], hf["num_attention_heads"]
    head_dim = hf.get("head_dim")
    if head_dim is not None and head_dim % 2:
        raise _refuse("head_dim", head_dim, "must be even for RoPE")
    if head_dim is None and d_model % n_heads:
        raise _refuse("num_attention_heads", n_heads, "must divide hidden_size without head_dim")
    plain = not d_model % n_heads and head_dim in (None, d_model // n_heads)
    common = dict(
        d_model=d_model,
        n_layers=hf["num_hidden_layers"],
        n_heads=n_heads,
        n_kv_heads=hf.get("num_key_value_heads") or n_heads,
        d_head=None if plain else head_dim,
        vocab_size=hf["vocab_size"],
        max_seq_len=_get(hf, arch, "max_position_embeddings"),
        rope_theta=theta,
        rope_scaling=scaling,
        norm_eps=_get(hf, arch, "rms_norm_eps"),
        tie_embeddings=hf.get("tie_word_embeddings", False),
    )
    return arch, ModelConfig(**common, **ARCHS[arch].from_hf(hf))


def _rope_to_hf(cfg: ModelConfig) -> dict[str, Any]:
    """``rope_parameters`` for ``cfg``'s RoPE; NTK has no static transformers equivalent."""
    params: dict[str, Any] = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    s = cfg.rope_scaling
    if s is None:
        return params
    if s.type == "ntk":  # transformers' "dynamic" rescales with the sequence length
        raise ValueError("rope_scaling.type = 'ntk': transformers has no static NTK RoPE")
    params |= {"rope_type": s.type, "factor": s.factor}
    if s.type == "llama3":
        params |= {
            "original_max_position_embeddings": s.original_max_seq_len,
            "low_freq_factor": s.low_freq_factor,
            "high_freq_factor": s.high_freq_factor,
        }
    return params


def config_to_hf(cfg: ModelConfig, arch: Arch, dtype: torch.dtype) -> dict[str, Any]:
    """The ``config.json`` dict for ``cfg`` as ``arch``; refuses what the arch lacks."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch {arch!r}: expected one of {sorted(ARCHITECTURES)}")
    if cfg.token_shift:
        raise ValueError(f"token_shift is set: {arch} has no equivalent")
    if cfg.smear_keys:
        raise ValueError(f"smear_keys is set: {arch} has no equivalent")
    if cfg.vision is not None:  # Llama4ForConditionalGeneration around the text config
        text = config_to_hf(cfg.model_copy(update={"vision": None}), arch, dtype)
        return llama4_vision.wrap_to_hf(text, cfg.vision)
    rope = _rope_to_hf(cfg)
    hf: dict[str, Any] = {
        "architectures": [ARCHITECTURES[arch]],
        "model_type": MODEL_TYPES[arch],
        "hidden_act": "silu",
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.hidden,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.kv_heads,
        "head_dim": cfg.head_dim,
        "vocab_size": cfg.vocab_size,
        "max_position_embeddings": cfg.max_seq_len,
        "rope_theta": cfg.rope_theta,  # transformers < 5
        "rope_parameters": rope,
        "rms_norm_eps": cfg.norm_eps,
        "tie_word_embeddings": cfg.tie_embeddings,
        "attention_bias": False,
        "torch_dtype": str(dtype).removeprefix("torch."),
        "dtype": str(dtype).removeprefix("torch."),
    }
    if cfg.rope_scaling is not None:  # transformers < 5 reads this name
        hf["rope_scaling"] = {k: v for k, v in rope.items() if k != "rope_theta"}
    return hf | ARCHS[arch].to_hf(cfg)
