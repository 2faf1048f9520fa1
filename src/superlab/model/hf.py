"""Hugging Face interop: Llama, Mixtral, Llama 4 text and Qwen3-MoE (``config.json`` + safetensors).

``import_hf(path_or_model)`` reads a ``LlamaForCausalLM`` / ``MixtralForCausalLM`` /
``Llama4ForCausalLM`` / ``Qwen3MoeForCausalLM`` directory (or an in-memory transformers
model, saved to a temporary directory first); ``export_hf(model, directory, arch)`` writes
one that transformers' ``from_pretrained`` loads. Only ``json`` and ``safetensors`` are
used: transformers is not needed here. A ``Llama4ForConditionalGeneration`` (Llama 4 with
images, ``model.vision``) maps its text model as Llama 4 text under ``language_model.``,
and its vision tower and projector by ``superlab.model.hf_arch.llama4_vision``.

The ``config.json`` side (each architecture's fields <-> our ``ModelConfig``, and what is
refused) is ``superlab.model.hf_config``; ``config_from_hf``, ``config_to_hf`` and ``Arch``
are re-exported here (its tables are not). This module maps the tensors, and every tensor
must map one to one.

Llama 4 rotates adjacent pairs (2i, 2i+1) as complex numbers; we rotate (i, i + C/2). The
rows of ``q_proj`` and ``k_proj`` of RoPE layers are permuted per head on import
(``llama2c.interleaved_to_half``) and back on export: q . k is a sum over the same pairs,
so it is unchanged, and the L2 norm after RoPE is a mean of squares over the head dim,
which no permutation changes (``tests/model/test_hf_llama4.py`` checks both).

Parameter names (HF prefix ``model.`` dropped except for the head; i layer, e expert; a
``/`` separates Mixtral / Qwen3 names; Llama 4's MLP prefix is ``feed_forward.``):

| Hugging Face                                        | superlab                          |
|-----------------------------------------------------|-----------------------------------|
| embed_tokens.weight                                 | tok_emb.weight                    |
| layers.i.input_layernorm.weight                     | blocks.i.norm1.weight             |
| layers.i.self_attn.{q,k,v,o}_proj.weight            | blocks.i.attn.w{q,k,v,o}.weight   |
| layers.i.self_attn.{q,k}_norm.weight (Qwen3)        | blocks.i.attn.{q,k}_norm.weight   |
| layers.i.post_attention_layernorm.weight            | blocks.i.norm2.weight             |
| layers.i.mlp.{gate,up,down}_proj.weight             | blocks.i.mlp.w{1,3,2}.weight      |
| layers.i.block_sparse_moe.gate / mlp.gate .weight   | blocks.i.mlp.router.weight        |
| ...experts.e.w1 / experts.e.gate_proj .weight       | blocks.i.mlp.w1_EFD[e]            |
| ...experts.e.w3 / experts.e.up_proj .weight         | blocks.i.mlp.w3_EFD[e]            |
| ...experts.e.w2 / experts.e.down_proj .weight       | blocks.i.mlp.w2_EDF[e]            |
| layers.i.feed_forward.router.weight (Llama 4)       | blocks.i.mlp.router.weight        |
| ...feed_forward.experts.gate_up_proj (E, D, 2F)     | mlp.w1_EFD, mlp.w3_EFD (transposed) |
| ...feed_forward.experts.down_proj (E, F, D)         | mlp.w2_EDF (transposed)           |
| ...feed_forward.shared_expert.{gate,up,down}_proj   | blocks.i.mlp.shared.w{1,3,2}      |
| norm.weight                                         | norm.weight                       |
| lm_head.weight (absent when tied)                   | lm_head.weight (None when tied)   |
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from superlab.common.atomic import atomic_write_json
from superlab.config.recipe import ModelConfig
from superlab.model.hf_arch import llama4_vision
from superlab.model.hf_config import Arch, config_from_hf, config_to_hf
from superlab.model.llama2c import interleaved_to_half
from superlab.model.transformer import Transformer

__all__ = [
    "Arch",
    "Convert",
    "config_from_hf",
    "config_to_hf",
    "export_hf",
    "half_to_interleaved",
    "import_hf",
]

Convert = Callable[[list[torch.Tensor]], list[torch.Tensor]]


def _same(ts: list[torch.Tensor]) -> list[torch.Tensor]:
    return ts


@dataclass(frozen=True)
class _Map:
    """HF tensors ``hf`` <-> our tensors ``ours``, with the conversion each way."""

    hf: tuple[str, ...]
    ours: tuple[str, ...]
    to_ours: Convert = _same
    to_hf: Convert = _same


def _one(hf: str, ours: str) -> _Map:
    return _Map((hf,), (ours,))


def _stacked(hf: list[str], ours: str) -> _Map:
    """One HF tensor per expert <-> our stacked (E, ...) tensor."""
    return _Map(tuple(hf), (ours,), lambda ts: [torch.stack(ts)], lambda ts: list(ts[0].unbind(0)))


def half_to_interleaved(w_OD: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Inverse of ``interleaved_to_half``: each head's rows from (i, i + C/2) to (2i, 2i+1)."""
    out, D = w_OD.shape
    return w_OD.view(n_heads, 2, out // n_heads // 2, D).transpose(1, 2).reshape(out, D)


def _rope_rows(hf: str, ours: str, n_heads: int) -> _Map:
    """A q/k projection of an interleaved-RoPE (Llama 4) layer: rows permuted per head."""
    return _Map(
        (hf,),
        (ours,),
        lambda ts: [interleaved_to_half(ts[0], n_heads)],
        lambda ts: [half_to_interleaved(ts[0], n_heads)],
    )


def _swiglu(hf: str, us: str, names: tuple[str, str, str]) -> Iterator[_Map]:
    """A dense SwiGLU: HF (gate, up, down) names -> our w1, w3, w2."""
    for h, w in zip(names, ("w1", "w3", "w2"), strict=True):
        yield _one(f"{hf}{h}.weight", f"{us}{w}.weight")


def _moe_maps(cfg: ModelConfig, arch: Arch, hf: str, us: str) -> Iterator[_Map]:
    """The router and experts of one MoE layer (``hf``/``us``: the layer's MLP prefixes)."""
    assert cfg.moe is not None
    E = cfg.moe.num_experts
    ours = (f"{us}w1_EFD", f"{us}w3_EFD", f"{us}w2_EDF")
    if arch == "llama4":
        yield _one(f"{hf}router.weight", f"{us}router.weight")
        yield _Map(  # (E, D, 2F): gate | up along the last dim, used as x @ W
            (f"{hf}experts.gate_up_proj",),
            ours[:2],
            lambda ts: [w.transpose(1, 2) for w in ts[0].chunk(2, dim=2)],
            lambda ts: [torch.cat(ts, dim=1).transpose(1, 2)],
        )
        yield _Map(
            (f"{hf}experts.down_proj",),
            ours[2:],
            lambda ts: [ts[0].transpose(1, 2)],
            lambda ts: [ts[0].transpose(1, 2)],
        )
        yield from _swiglu(
            f"{hf}shared_expert.", f"{us}shared.", ("gate_proj", "up_proj", "down_proj")
        )
        return
    expert_names = (
        ("w1", "w3", "w2") if arch == "mixtral" else ("gate_proj", "up_proj", "down_proj")
    )
    yield _one(f"{hf}gate.weight", f"{us}router.weight")
    for h, o in zip(expert_names, ours, strict=True):
        yield _stacked([f"{hf}experts.{e}.{h}.weight" for e in range(E)], o)


def _maps(cfg: ModelConfig, arch: Arch) -> Iterator[_Map]:
    """Every tensor's mapping, per the table in the module docstring."""
    yield _one("model.embed_tokens.weight", "tok_emb.weight")
    for i in range(cfg.n_layers):
        hf, us = f"model.layers.{i}.", f"blocks.{i}."
        yield _one(hf + "input_layernorm.weight", us + "norm1.weight")
        for p in "qkvo":
            names = (hf + f"self_attn.{p}_proj.weight", us + f"attn.w{p}.weight")
            if arch == "llama4" and p in "qk" and cfg.rope_for(i):
                yield _rope_rows(*names, cfg.n_heads if p == "q" else cfg.kv_heads)
            else:
                yield _one(*names)
        if cfg.qk_norm == "rms":
            for p in "qk":
                yield _one(hf + f"self_attn.{p}_norm.weight", us + f"attn.{p}_norm.weight")
        yield _one(hf + "post_attention_layernorm.weight", us + "norm2.weight")
        mlp = hf + ("feed_forward." if arch == "llama4" else "mlp.")
        if cfg.is_moe_layer(i):
            moe = hf + "block_sparse_moe." if arch == "mixtral" else mlp
            yield from _moe_maps(cfg, arch, moe, us + "mlp.")
        else:
            yield from _swiglu(mlp, us + "mlp.", ("gate_proj", "up_proj", "down_proj"))
    yield _one("model.norm.weight", "norm.weight")
    if not cfg.tie_embeddings:
        yield _one("lm_head.weight", "lm_head.weight")


def _all_maps(cfg: ModelConfig, arch: Arch) -> Iterator[_Map]:
    """``_maps``, or with ``model.vision`` set Llama 4's text maps under ``language_model.``
    and the vision tower's (``superlab.model.hf_arch.llama4_vision``)."""
    if cfg.vision is None:
        yield from _maps(cfg, arch)
        return
    for m in _maps(cfg, arch):
        yield _Map(tuple(llama4_vision.TEXT_PREFIX + n for n in m.hf), m.ours, m.to_ours, m.to_hf)
    for hf, ours in llama4_vision.tensor_names(cfg.vision):
        yield _one(hf, ours)


def _load_tensors(directory: Path) -> dict[str, torch.Tensor]:
    """All tensors of ``model.safetensors`` or of the shards its index lists."""
    index = directory / "model.safetensors.index.json"
    if not index.exists():
        return load_file(str(directory / "model.safetensors"))
    shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    return {k: v for shard in shards for k, v in load_file(str(directory / shard)).items()}


def import_hf(path_or_model: str | Path | Any) -> Transformer:
    """Our ``Transformer`` (eval mode, the checkpoint's dtype) from a supported checkpoint."""
    if not isinstance(path_or_model, str | Path):  # a transformers model in memory
        with tempfile.TemporaryDirectory() as tmp:
            path_or_model.save_pretrained(tmp)
            return import_hf(tmp)
    directory = Path(path_or_model)
    arch, cfg = config_from_hf(json.loads((directory / "config.json").read_text()))
    tensors = _load_tensors(directory)
    if cfg.tie_embeddings:
        tensors.pop("lm_head.weight", None)  # some writers store the tied copy
        tensors.pop(llama4_vision.TEXT_PREFIX + "lm_head.weight", None)
    state: dict[str, torch.Tensor] = {}
    for m in _all_maps(cfg, arch):
        missing = [name for name in m.hf if name not in tensors]
        if missing:
            raise ValueError(f"{directory}: tensor {missing[0]!r} is missing")
        converted = m.to_ours([tensors.pop(name) for name in m.hf])
        state.update(zip(m.ours, converted, strict=True))
    if tensors:
        raise ValueError(f"{directory}: tensors we have no place for: {sorted(tensors)[:5]}")
    model = Transformer(cfg).to(state["tok_emb.weight"].dtype)
    model.load_state_dict(state, strict=True)
    return model.eval()


def export_hf(model: Transformer, directory: str | Path, arch: Arch) -> None:
    """Write ``config.json`` + ``model.safetensors`` that transformers loads as ``arch``."""
    state = model.state_dict()
    hf = config_to_hf(model.cfg, arch, state["tok_emb.weight"].dtype)
    maps = list(_all_maps(model.cfg, arch))
    extra = set(state) - {ours for m in maps for ours in m.ours}
    if extra:
        raise ValueError(f"{arch} has no place for: {sorted(extra)[:5]}")
    out = {}
    for m in maps:
        converted = m.to_hf([state[ours].detach().cpu() for ours in m.ours])
        for name, tensor in zip(m.hf, converted, strict=True):
            out[name] = tensor.contiguous().clone()  # no shared storage
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(out, str(directory / "model.safetensors"), metadata={"format": "pt"})
    atomic_write_json(directory / "config.json", hf)
