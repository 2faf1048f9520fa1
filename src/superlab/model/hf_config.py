"""Hugging Face config mapping: ``config.json`` <-> our ``ModelConfig``, per architecture.

``config_from_hf(hf)`` reads the ``config.json`` dict of a Llama, Mixtral, Llama 4 text or
Qwen3-MoE checkpoint into ``(arch, ModelConfig)``; ``config_to_hf(cfg, arch, dtype)`` writes
the dict transformers' ``from_pretrained`` reads. Fields a ``config.json`` leaves out take
transformers' class defaults (``DEFAULTS``). The tensors are mapped in ``superlab.model.hf``.

All four are pre-norm RMSNorm blocks with GQA and SwiGLU. What each maps to:

- Llama: RoPE (``rope_type`` default, linear or llama3 scaling, in every architecture).
- Mixtral: MoE in every layer (``every=1``), our ``token_choice`` router with a softmax,
  top-k, renormalised (``norm_topk``), gating the expert's output; ``sliding_window`` w
  lets query t see keys s with ``t - s < w`` (transformers' ``sliding_window_overlay``),
  our ``sliding`` kind.
- Qwen3-MoE: the same softmax top-k router, renormalised only with ``norm_topk_prob``;
  experts of ``moe_intermediate_size`` on layers i with ``(i + 1) % decoder_sparse_step
  == 0`` not in ``mlp_only_layers`` (``moe.every``, or explicit ``mlp`` entries of a
  ``layer_pattern``), dense ``intermediate_size`` MLPs elsewhere; ``q_norm``/``k_norm`` are
  RMSNorms over each head (eps ``rms_norm_eps``) before RoPE, our ``qk_norm: rms``;
  ``head_dim`` may differ from hidden/heads (``model.d_head``).
- Llama 4 text: layer i uses RoPE iff ``no_rope_layers[i]`` (0 every 4th layer: NoPE) and
  ``chunked_attention`` (``attention_chunk_size``) or ``full_attention`` by ``layer_types``
  (by default chunked exactly on the RoPE layers), our ``layer_pattern``. NoPE layers scale
  q by ``log1p(floor((pos + 1) / floor_scale)) * attn_scale + 1`` with
  ``attn_temperature_tuning`` (``model.nope_temperature``). ``use_qk_norm``: a weightless
  L2 norm (``x / rms(x)``, eps ``rms_norm_eps``) after RoPE on RoPE layers, our ``qk_norm:
  l2``. Router: top-k of the raw logits, then ``sigmoid`` of each chosen logit, not
  renormalised, scaling the expert's *input* (``score_func: sigmoid``, ``norm_topk:
  false``, ``gate_on: input``); one always-on shared expert; experts and the shared expert
  of ``intermediate_size``, dense layers (``interleave_moe_layer_step`` / ``moe_layers``)
  of ``intermediate_size_mlp``.

What we cannot represent (biases, another activation, partial rotary, other RoPE types,
sliding or sparse layers in Llama 4, ...) is refused with a ``ValueError`` naming the
field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from superlab.config.recipe import (
    AttentionConfig,
    LayerSpec,
    ModelConfig,
    MoEConfig,
    NopeTemperatureConfig,
    RopeScalingConfig,
)

if TYPE_CHECKING:  # only annotates config_to_hf's dtype
    import torch

Arch = Literal["llama", "mixtral", "llama4", "qwen3_moe"]
ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "mixtral": "MixtralForCausalLM",
    "llama4": "Llama4ForCausalLM",
    "qwen3_moe": "Qwen3MoeForCausalLM",
}
MODEL_TYPES = {
    "llama": "llama",
    "mixtral": "mixtral",
    "llama4": "llama4_text",
    "qwen3_moe": "qwen3_moe",
}
NAMES = {"llama": "Llama", "mixtral": "Mixtral", "llama4": "Llama 4", "qwen3_moe": "Qwen3-MoE"}
# transformers' class defaults for fields a config.json may leave out.
DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": {"rope_theta": 10_000.0, "rms_norm_eps": 1e-6, "max_position_embeddings": 2048},
    "mixtral": {"rope_theta": 1e6, "rms_norm_eps": 1e-5, "max_position_embeddings": 131072},
    "llama4": {
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
    },
    "qwen3_moe": {
        "rope_theta": 10_000.0,
        "rms_norm_eps": 1e-6,
        "max_position_embeddings": 32768,
        "moe_intermediate_size": 768,
        "num_experts_per_tok": 8,
        "num_experts": 128,
        "decoder_sparse_step": 1,
        "router_aux_loss_coef": 0.001,
    },
}
# The keys each supported RoPE type reads (transformers' ROPE_INIT_FUNCTIONS).
ROPE_KEYS = {
    "default": set(),
    "linear": {"factor"},
    "llama3": {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"},
}


def _refuse(field: str, value: Any, why: str) -> ValueError:
    """A ValueError naming the Hugging Face config field we cannot represent."""
    return ValueError(f"Hugging Face config field {field!r} = {value!r}: {why}")


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


def _pattern(specs: list[LayerSpec]) -> list[LayerSpec] | None:
    """The shortest cycle of ``specs`` that repeats to all of them; None if all default."""
    if all(s == LayerSpec() for s in specs):
        return None
    n = len(specs)
    period = next(p for p in range(1, n + 1) if all(specs[i] == specs[i % p] for i in range(n)))
    return specs[:period]


def _mlp_kinds(moe_layers: set[int], every: int, n: int) -> list[Literal["dense", "moe"] | None]:
    """Per layer None where ``moe.every`` already says it, else explicit dense / moe."""
    if moe_layers == {i for i in range(n) if (i + 1) % every == 0}:
        return [None] * n
    return ["moe" if i in moe_layers else "dense" for i in range(n)]


def config_from_hf(hf: dict[str, Any]) -> tuple[Arch, ModelConfig]:
    """Our ``ModelConfig`` for a ``config.json`` dict of a supported arch; refuses what differs."""
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
    build = {"llama": _llama, "mixtral": _mixtral, "llama4": _llama4, "qwen3_moe": _qwen3}
    return arch, ModelConfig(**common, **build[arch](hf))


def _llama(hf: dict[str, Any]) -> dict[str, Any]:
    return {"ffn_hidden": hf["intermediate_size"]}


def _mixtral(hf: dict[str, Any]) -> dict[str, Any]:
    window = hf.get("sliding_window")
    moe = MoEConfig(
        num_experts=hf["num_local_experts"],
        top_k=hf["num_experts_per_tok"],
        every=1,
        router="token_choice",
        score_func="softmax",
        aux_loss_coef=hf.get("router_aux_loss_coef", 0.001),
        z_loss_coef=0.0,
    )
    attention = AttentionConfig(kind="sliding", window=window) if window else AttentionConfig()
    return {"ffn_hidden": hf["intermediate_size"], "attention": attention, "moe": moe}


def _qwen3(hf: dict[str, Any]) -> dict[str, Any]:
    n, step = hf["num_hidden_layers"], _get(hf, "qwen3_moe", "decoder_sparse_step")
    # transformers saves num_experts as num_local_experts (its attribute_map).
    given = [hf[k] for k in ("num_experts", "num_local_experts") if hf.get(k) is not None]
    num_experts = given[0] if given else DEFAULTS["qwen3_moe"]["num_experts"]
    if not isinstance(step, int) or step < 1:  # every step-th layer is MoE
        raise _refuse("decoder_sparse_step", step, "must be a positive integer")
    dense = set(hf.get("mlp_only_layers") or [])
    moe_layers = {i for i in range(n) if (i + 1) % step == 0 and i not in dense}
    if not num_experts:
        raise _refuse("num_experts", num_experts, "a dense Qwen3 is not supported")
    if not moe_layers:
        why = (
            f"with decoder_sparse_step {step} it leaves none of the {n} layers MoE;"
            " a dense Qwen3 is not supported"
        )
        raise _refuse("mlp_only_layers", hf.get("mlp_only_layers"), why)
    moe = MoEConfig(
        num_experts=num_experts,
        top_k=_get(hf, "qwen3_moe", "num_experts_per_tok"),
        expert_hidden=_get(hf, "qwen3_moe", "moe_intermediate_size"),
        every=step,
        router="token_choice",
        score_func="softmax",
        norm_topk=bool(hf.get("norm_topk_prob", False)),
        aux_loss_coef=_get(hf, "qwen3_moe", "router_aux_loss_coef"),
        z_loss_coef=0.0,
    )
    window = hf.get("sliding_window") if hf.get("use_sliding_window") else None
    attention = AttentionConfig(kind="sliding", window=window) if window else AttentionConfig()
    specs = [LayerSpec(mlp=m) for m in _mlp_kinds(moe_layers, step, n)]
    return {
        "ffn_hidden": hf["intermediate_size"],
        "attention": attention,
        "moe": moe,
        "layer_pattern": _pattern(specs),
        "qk_norm": "rms",
    }


def _llama4(hf: dict[str, Any]) -> dict[str, Any]:
    n = hf["num_hidden_layers"]
    interval = _get(hf, "llama4", "no_rope_layer_interval")
    rope = hf.get("no_rope_layers") or [int((i + 1) % interval != 0) for i in range(n)]
    if len(rope) < n:
        raise _refuse("no_rope_layers", rope, f"needs an entry for each of the {n} layers")
    types = hf.get("layer_types") or ["chunked_attention" if r else "full_attention" for r in rope]
    if len(types) < n or set(types[:n]) - {"full_attention", "chunked_attention"}:
        raise _refuse("layer_types", types, f"{n} of 'full_attention' / 'chunked_attention'")
    chunk = hf.get("attention_chunk_size")
    if "chunked_attention" in types[:n] and not chunk:
        raise _refuse("attention_chunk_size", chunk, "chunked_attention layers need a size")
    step = _get(hf, "llama4", "interleave_moe_layer_step")
    listed = hf.get("moe_layers")
    moe_layers = set(range(step - 1, n, step) if listed is None else listed) & set(range(n))
    moe = None
    if moe_layers:
        moe = MoEConfig(
            num_experts=_get(hf, "llama4", "num_local_experts"),
            top_k=_get(hf, "llama4", "num_experts_per_tok"),
            expert_hidden=_get(hf, "llama4", "intermediate_size"),
            num_shared_experts=1,
            every=step,
            router="token_choice",
            score_func="sigmoid",
            norm_topk=False,
            gate_on="input",
            aux_loss_coef=_get(hf, "llama4", "router_aux_loss_coef"),
            z_loss_coef=0.0,
        )
    mlp = _mlp_kinds(moe_layers, step, n) if moe_layers else [None] * n
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
            floor_scale=float(_get(hf, "llama4", "floor_scale")),
            attn_scale=_get(hf, "llama4", "attn_scale"),
        )
    return {
        "ffn_hidden": _get(hf, "llama4", "intermediate_size_mlp"),
        "moe": moe,
        "layer_pattern": _pattern(specs),
        "qk_norm": "l2" if hf.get("use_qk_norm", True) else "none",
        "nope_temperature": temperature,
    }


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


def _require(arch: Arch, checks: dict[str, tuple[Any, Any]]) -> None:
    """Refuse the first ``field: (value, wanted)`` whose value differs."""
    for field, (value, wanted) in checks.items():
        if value != wanted:
            raise ValueError(f"{field} = {value!r}: {NAMES[arch]} needs {wanted!r}")


def _kinds(cfg: ModelConfig, arch: Arch, allowed: tuple[str, ...]) -> list[AttentionConfig]:
    """Every layer's attention; refuses a kind ``arch`` lacks."""
    layers = [cfg.attention_for(i) for i in range(cfg.n_layers)]
    for a in layers:
        if a.kind not in allowed:
            raise ValueError(f"attention.kind {a.kind!r} has no {arch} equivalent")
    return layers


def config_to_hf(cfg: ModelConfig, arch: Arch, dtype: torch.dtype) -> dict[str, Any]:
    """The ``config.json`` dict for ``cfg`` as ``arch``; refuses what the arch lacks."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch {arch!r}: expected one of {sorted(ARCHITECTURES)}")
    if cfg.token_shift:
        raise ValueError(f"token_shift is set: {arch} has no equivalent")
    if cfg.smear_keys:
        raise ValueError(f"smear_keys is set: {arch} has no equivalent")
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
    build = {
        "llama": _to_llama,
        "mixtral": _to_mixtral,
        "llama4": _to_llama4,
        "qwen3_moe": _to_qwen3,
    }
    return hf | build[arch](cfg)


def _refuse_set(cfg: ModelConfig, arch: Arch, names: tuple[str, ...]) -> None:
    """Refuse any of these model fields that is set (not its plain default)."""
    plain = {"layer_pattern": None, "qk_norm": "none", "nope_temperature": None}
    for name in names:
        if getattr(cfg, name) != plain[name]:
            raise ValueError(f"{name} is set: {arch} has no equivalent")


def _to_llama(cfg: ModelConfig) -> dict[str, Any]:
    _refuse_set(cfg, "llama", ("layer_pattern", "qk_norm", "nope_temperature"))
    _kinds(cfg, "llama", ("full",))
    if cfg.moe is not None:
        raise ValueError("moe is set: Llama is dense, export with arch='mixtral'")
    return {"mlp_bias": False}


def _moe_checks(moe: MoEConfig, **wanted: Any) -> dict[str, tuple[Any, Any]]:
    """``moe.<field>: (value, wanted)`` for ``_require``."""
    return {f"moe.{k}": (getattr(moe, k), v) for k, v in wanted.items()}


def _to_mixtral(cfg: ModelConfig) -> dict[str, Any]:
    _refuse_set(cfg, "mixtral", ("layer_pattern", "qk_norm", "nope_temperature"))
    kind = _kinds(cfg, "mixtral", ("full", "sliding"))[0]
    moe = cfg.moe
    if moe is None:
        raise ValueError("moe is None: Mixtral needs an MoE config")
    _require(
        "mixtral",
        _moe_checks(
            moe,
            every=1,
            router="token_choice",
            score_func="softmax",
            norm_topk=True,
            gate_on="output",
            num_shared_experts=0,
            capacity_factor=None,
        ),
    )
    return {
        "intermediate_size": moe.expert_hidden or cfg.hidden,
        "num_local_experts": moe.num_experts,
        "num_experts_per_tok": moe.top_k,
        "router_aux_loss_coef": moe.aux_loss_coef,
        "sliding_window": kind.window if kind.kind == "sliding" else None,
    }


def _to_qwen3(cfg: ModelConfig) -> dict[str, Any]:
    _refuse_set(cfg, "qwen3_moe", ("nope_temperature",))
    _require("qwen3_moe", {"qk_norm": (cfg.qk_norm, "rms")})
    for j, spec in enumerate(cfg.layer_pattern or []):  # only dense / MoE choices
        if spec.model_copy(update={"mlp": None}) != LayerSpec():
            raise ValueError(f"layer_pattern.{j} = {spec!r}: qwen3_moe varies only the MLP")
    kind = _kinds(cfg, "qwen3_moe", ("full", "sliding"))[0]
    moe = cfg.moe
    if moe is None:
        raise ValueError("moe is None: Qwen3-MoE needs an MoE config")
    _require(
        "qwen3_moe",
        _moe_checks(
            moe,
            router="token_choice",
            score_func="softmax",
            gate_on="output",
            num_shared_experts=0,
            capacity_factor=None,
        ),
    )
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


def _to_llama4(cfg: ModelConfig) -> dict[str, Any]:
    if cfg.qk_norm not in ("none", "l2"):
        raise ValueError(f"qk_norm = {cfg.qk_norm!r}: Llama 4 has only the weightless 'l2'")
    layers = _kinds(cfg, "llama4", ("full", "chunked"))
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
    _require(
        "llama4",
        _moe_checks(
            moe,
            router="token_choice",
            score_func="sigmoid",
            norm_topk=False,
            gate_on="input",
            num_shared_experts=1,
            capacity_factor=None,
        ),
    )
    return hf | {
        "intermediate_size": moe.expert_hidden or cfg.hidden,
        "num_local_experts": moe.num_experts,
        "num_experts_per_tok": moe.top_k,
        "interleave_moe_layer_step": moe.every,
        "router_aux_loss_coef": moe.aux_loss_coef,
    }
