"""Hugging Face interop: Llama and Mixtral checkpoints (``config.json`` + safetensors).

``import_hf(path_or_model)`` reads a ``LlamaForCausalLM`` / ``MixtralForCausalLM``
directory (or an in-memory transformers model, saved to a temporary directory first);
``export_hf(model, directory, arch)`` writes one that transformers' ``from_pretrained``
loads. Only ``json`` and ``safetensors`` are used: transformers is not needed here.

Both layouts are the same math: pre-norm RMSNorm blocks, rotate-half RoPE, GQA, SwiGLU;
Mixtral's router takes a softmax over experts, the top-k, then renormalises, exactly our
``token_choice`` router with ``score_func="softmax"`` and no capacity limit (MoE in every
layer, ``every=1``). Mixtral's ``sliding_window`` w lets query t see keys s with
``t - s < w`` (transformers' ``sliding_window_overlay``), our ``sliding`` kind. What we
cannot represent (biases, RoPE scaling, another head dim or activation) is refused with
a ``ValueError`` naming the field, and every tensor must map one to one.

Parameter names (HF prefix ``model.`` dropped except for the head; i layer, e expert):

| Hugging Face                                    | superlab                          |
|-------------------------------------------------|-----------------------------------|
| embed_tokens.weight                             | tok_emb.weight                    |
| layers.i.input_layernorm.weight                 | blocks.i.norm1.weight             |
| layers.i.self_attn.{q,k,v,o}_proj.weight        | blocks.i.attn.w{q,k,v,o}.weight   |
| layers.i.post_attention_layernorm.weight        | blocks.i.norm2.weight             |
| layers.i.mlp.{gate,up,down}_proj.weight         | blocks.i.mlp.w{1,3,2}.weight      |
| layers.i.block_sparse_moe.gate.weight           | blocks.i.mlp.router.weight        |
| layers.i.block_sparse_moe.experts.e.w1.weight   | blocks.i.mlp.w1_EFD[e]            |
| layers.i.block_sparse_moe.experts.e.w3.weight   | blocks.i.mlp.w3_EFD[e]            |
| layers.i.block_sparse_moe.experts.e.w2.weight   | blocks.i.mlp.w2_EDF[e]            |
| norm.weight                                     | norm.weight                       |
| lm_head.weight (absent when tied)               | lm_head.weight (None when tied)   |
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file

from superlab.common.atomic import atomic_write_json
from superlab.config.recipe import AttentionConfig, ModelConfig, MoEConfig
from superlab.model.transformer import Transformer

Arch = Literal["llama", "mixtral"]
ARCHITECTURES = {"llama": "LlamaForCausalLM", "mixtral": "MixtralForCausalLM"}
# transformers' class defaults for fields a config.json may leave out.
DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": {"rope_theta": 10_000.0, "rms_norm_eps": 1e-6, "max_position_embeddings": 2048},
    "mixtral": {"rope_theta": 1e6, "rms_norm_eps": 1e-5, "max_position_embeddings": 131072},
}


def _refuse(field: str, value: Any, why: str) -> ValueError:
    """A ValueError naming the Hugging Face config field we cannot represent."""
    return ValueError(f"Hugging Face config field {field!r} = {value!r}: {why}")


def _arch(hf: dict[str, Any]) -> Arch:
    """``llama`` or ``mixtral`` from ``model_type`` (or ``architectures``)."""
    names = [hf.get("model_type")] + [
        a for a, cls in ARCHITECTURES.items() if cls in (hf.get("architectures") or [])
    ]
    for name in names:
        if name in ARCHITECTURES:
            return name  # type: ignore[return-value]
    raise _refuse("model_type", hf.get("model_type"), "only 'llama' and 'mixtral' are supported")


def config_from_hf(hf: dict[str, Any]) -> tuple[Arch, ModelConfig]:
    """Our ``ModelConfig`` for a Llama / Mixtral ``config.json`` dict; refuses what differs."""
    arch = _arch(hf)
    defaults = DEFAULTS[arch]
    if hf.get("hidden_act", "silu") != "silu":
        raise _refuse("hidden_act", hf["hidden_act"], "only 'silu' (SwiGLU) is supported")
    for field in ("attention_bias", "mlp_bias"):
        if hf.get(field):
            raise _refuse(field, hf[field], "biases are not supported")
    if hf.get("rope_scaling"):
        raise _refuse("rope_scaling", hf["rope_scaling"], "RoPE scaling is not supported")
    rope = hf.get("rope_parameters") or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default" or any(
        isinstance(v, dict) for v in rope.values()
    ):
        raise _refuse("rope_parameters", rope, "only plain RoPE (rope_type 'default')")
    partial = rope.get("partial_rotary_factor", hf.get("partial_rotary_factor"))
    if partial not in (None, 1, 1.0):
        raise _refuse("partial_rotary_factor", partial, "RoPE on every head dimension only")
    d_model, n_heads = hf["hidden_size"], hf["num_attention_heads"]
    if hf.get("head_dim") not in (None, d_model // n_heads) or d_model % n_heads:
        raise _refuse("head_dim", hf.get("head_dim"), "must be hidden_size / num_attention_heads")
    window = hf.get("sliding_window") if arch == "mixtral" else None
    moe = None
    if arch == "mixtral":
        moe = MoEConfig(
            num_experts=hf["num_local_experts"],
            top_k=hf["num_experts_per_tok"],
            every=1,
            router="token_choice",
            score_func="softmax",
            aux_loss_coef=hf.get("router_aux_loss_coef", 0.001),
            z_loss_coef=0.0,
        )
    cfg = ModelConfig(
        d_model=d_model,
        n_layers=hf["num_hidden_layers"],
        n_heads=n_heads,
        n_kv_heads=hf.get("num_key_value_heads") or n_heads,
        ffn_hidden=hf["intermediate_size"],
        vocab_size=hf["vocab_size"],
        max_seq_len=hf.get("max_position_embeddings", defaults["max_position_embeddings"]),
        rope_theta=rope.get("rope_theta", hf.get("rope_theta", defaults["rope_theta"])),
        norm_eps=hf.get("rms_norm_eps", defaults["rms_norm_eps"]),
        tie_embeddings=hf.get("tie_word_embeddings", False),
        attention=AttentionConfig(kind="sliding", window=window) if window else AttentionConfig(),
        moe=moe,
    )
    return arch, cfg


def config_to_hf(cfg: ModelConfig, arch: Arch, dtype: torch.dtype) -> dict[str, Any]:
    """The ``config.json`` dict for ``cfg`` as ``arch``; refuses what the arch lacks."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch {arch!r}: expected one of {sorted(ARCHITECTURES)}")
    # Per-layer patterns, QK-norm, NoPE temperature and RoPE scaling have no field in
    # these two architectures: refuse rather than export a different model.
    for name, value, plain in (
        ("layer_pattern", cfg.layer_pattern, None),
        ("qk_norm", cfg.qk_norm, "none"),
        ("rope_scaling", cfg.rope_scaling, None),
        ("nope_temperature", cfg.nope_temperature, None),
    ):
        if value != plain:
            raise ValueError(f"{name} is set: {arch} has no equivalent")
    kind = cfg.attention.kind
    if kind not in ("full", "sliding") or (kind == "sliding" and arch == "llama"):
        raise ValueError(f"attention.kind {kind!r} has no {arch} equivalent")
    moe = cfg.moe
    if arch == "llama" and moe is not None:
        raise ValueError("moe is set: Llama is dense, export with arch='mixtral'")
    hf: dict[str, Any] = {
        "architectures": [ARCHITECTURES[arch]],
        "model_type": arch,
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
        "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},
        "rms_norm_eps": cfg.norm_eps,
        "tie_word_embeddings": cfg.tie_embeddings,
        "torch_dtype": str(dtype).removeprefix("torch."),
        "dtype": str(dtype).removeprefix("torch."),
    }
    if arch == "llama":
        return hf | {"attention_bias": False, "mlp_bias": False}
    if moe is None:
        raise ValueError("moe is None: Mixtral needs an MoE config")
    checks = {
        "moe.every": (moe.every, 1),
        "moe.router": (moe.router, "token_choice"),
        "moe.score_func": (moe.score_func, "softmax"),
        "moe.num_shared_experts": (moe.num_shared_experts, 0),
        "moe.capacity_factor": (moe.capacity_factor, None),
    }
    for field, (value, wanted) in checks.items():
        if value != wanted:
            raise ValueError(f"{field} = {value!r}: Mixtral needs {wanted!r}")
    return hf | {
        "intermediate_size": moe.expert_hidden or cfg.hidden,
        "num_local_experts": moe.num_experts,
        "num_experts_per_tok": moe.top_k,
        "router_aux_loss_coef": moe.aux_loss_coef,
        "sliding_window": cfg.attention.window if kind == "sliding" else None,
    }


def _names(cfg: ModelConfig) -> Iterator[tuple[str, str, int | None]]:
    """(HF name, our name, expert index or None) for every tensor, per the table above."""
    yield "model.embed_tokens.weight", "tok_emb.weight", None
    for i in range(cfg.n_layers):
        hf, us = f"model.layers.{i}.", f"blocks.{i}."
        yield hf + "input_layernorm.weight", us + "norm1.weight", None
        for p in "qkvo":
            yield hf + f"self_attn.{p}_proj.weight", us + f"attn.w{p}.weight", None
        yield hf + "post_attention_layernorm.weight", us + "norm2.weight", None
        if cfg.moe is None:
            for h, w in (("gate", "w1"), ("up", "w3"), ("down", "w2")):
                yield hf + f"mlp.{h}_proj.weight", us + f"mlp.{w}.weight", None
            continue
        yield hf + "block_sparse_moe.gate.weight", us + "mlp.router.weight", None
        for e in range(cfg.moe.num_experts):
            for w, ours in (("w1", "w1_EFD"), ("w3", "w3_EFD"), ("w2", "w2_EDF")):
                yield hf + f"block_sparse_moe.experts.{e}.{w}.weight", us + f"mlp.{ours}", e
    yield "model.norm.weight", "norm.weight", None
    if not cfg.tie_embeddings:
        yield "lm_head.weight", "lm_head.weight", None


def _load_tensors(directory: Path) -> dict[str, torch.Tensor]:
    """All tensors of ``model.safetensors`` or of the shards its index lists."""
    index = directory / "model.safetensors.index.json"
    if not index.exists():
        return load_file(str(directory / "model.safetensors"))
    shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    return {k: v for shard in shards for k, v in load_file(str(directory / shard)).items()}


def import_hf(path_or_model: str | Path | Any) -> Transformer:
    """Our ``Transformer`` (eval mode, the checkpoint's dtype) from a Llama / Mixtral."""
    if not isinstance(path_or_model, str | Path):  # a transformers model in memory
        with tempfile.TemporaryDirectory() as tmp:
            path_or_model.save_pretrained(tmp)
            return import_hf(tmp)
    directory = Path(path_or_model)
    _, cfg = config_from_hf(json.loads((directory / "config.json").read_text()))
    tensors = _load_tensors(directory)
    if cfg.tie_embeddings:
        tensors.pop("lm_head.weight", None)  # some writers store the tied copy
    state: dict[str, torch.Tensor] = {}
    experts: dict[str, list[torch.Tensor]] = {}
    for hf_name, ours, e in _names(cfg):
        if hf_name not in tensors:
            raise ValueError(f"{directory}: tensor {hf_name!r} is missing")
        tensor = tensors.pop(hf_name)
        if e is None:
            state[ours] = tensor
        else:
            experts.setdefault(ours, []).append(tensor)
    if tensors:
        raise ValueError(f"{directory}: tensors we have no place for: {sorted(tensors)[:5]}")
    state |= {name: torch.stack(ts) for name, ts in experts.items()}
    model = Transformer(cfg).to(state["tok_emb.weight"].dtype)
    model.load_state_dict(state, strict=True)
    return model.eval()


def export_hf(model: Transformer, directory: str | Path, arch: Arch) -> None:
    """Write ``config.json`` + ``model.safetensors`` that transformers loads as ``arch``."""
    state = model.state_dict()
    hf = config_to_hf(model.cfg, arch, state["tok_emb.weight"].dtype)
    names = list(_names(model.cfg))
    extra = set(state) - {ours for _, ours, _ in names}
    if extra:
        raise ValueError(f"{arch} has no place for: {sorted(extra)[:5]}")
    out = {}
    for hf_name, ours, e in names:
        tensor = state[ours] if e is None else state[ours][e]
        out[hf_name] = tensor.detach().cpu().clone().contiguous()  # no shared storage
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(out, str(directory / "model.safetensors"), metadata={"format": "pt"})
    atomic_write_json(directory / "config.json", hf)
