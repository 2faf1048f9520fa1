"""Llama 4 with images (``Llama4ForConditionalGeneration``, ``model_type`` llama4).

The ``config.json`` nests the text model (``text_config``, a Llama 4 text config mapped by
``superlab.model.hf_arch.llama4``) and the vision tower (``vision_config``, our
``model.vision``); the image token ids sit at the top. ``vision_from_hf`` /
``wrap_to_hf`` map the vision side and the nesting; ``tensor_names`` pairs every vision
tensor (all one to one: both sides rotate adjacent pairs in the vision RoPE) and
``TEXT_PREFIX`` is put before every text tensor name (``superlab.model.hf``).

What transformers' ``Llama4VisionModel`` cannot run or we do not have is refused:
``intermediate_size`` must equal ``hidden_size / pixel_shuffle_ratio^2`` (transformers
uses it both as the ViT MLP width and as the adapter's input width),
``projector_input_dim``, ``projector_output_dim`` and ``vision_output_dim`` must be equal,
GELU only, no projector bias, square images and patches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from superlab.config.vision import VisionConfig
from superlab.model.hf_arch.base import get, refuse

HF_CLASS = "Llama4ForConditionalGeneration"
MODEL_TYPE = "llama4"
TEXT_PREFIX = "language_model."
# transformers' Llama4VisionConfig / Llama4Config defaults for fields a config may omit.
DEFAULTS: dict[str, Any] = {
    "hidden_size": 768,
    "num_hidden_layers": 34,
    "num_attention_heads": 16,
    "num_channels": 3,
    "intermediate_size": 5632,
    "vision_output_dim": 7680,
    "image_size": 448,
    "patch_size": 14,
    "pixel_shuffle_ratio": 0.5,
    "projector_input_dim": 4096,
    "projector_output_dim": 4096,
    "rope_theta": 10_000.0,
    "hidden_act": "gelu",
    "image_token_index": 200092,
    "boi_token_index": 200080,
    "eoi_token_index": 200081,
}


def _theta(vc: dict[str, Any]) -> float:
    params = vc.get("rope_parameters") or {}
    kind = params.get("rope_type", "default")
    if kind != "default":
        raise refuse("vision_config.rope_parameters.rope_type", kind, "only 'default'")
    return float(params.get("rope_theta") or get(vc, DEFAULTS, "rope_theta"))


def vision_from_hf(hf: dict[str, Any]) -> VisionConfig:
    """Our ``model.vision`` from a ``Llama4ForConditionalGeneration`` ``config.json``."""
    vc = hf.get("vision_config") or {}
    v = {k: get(vc, DEFAULTS, k) for k in DEFAULTS if k != "rope_theta"}
    for key in ("image_size", "patch_size"):
        if not isinstance(v[key], int):
            raise refuse(f"vision_config.{key}", v[key], "a single int (square) only")
    if v["hidden_act"] != "gelu":
        raise refuse("vision_config.hidden_act", v["hidden_act"], "only 'gelu'")
    if vc.get("multi_modal_projector_bias"):
        raise refuse("vision_config.multi_modal_projector_bias", True, "no projector bias")
    dims = {v["projector_input_dim"], v["projector_output_dim"], v["vision_output_dim"]}
    if len(dims) > 1:
        why = "must equal projector_input_dim and projector_output_dim"
        raise refuse("vision_config.vision_output_dim", v["vision_output_dim"], why)
    ratio = v["pixel_shuffle_ratio"]
    if v["intermediate_size"] * ratio**2 != v["hidden_size"]:
        why = f"must be hidden_size / pixel_shuffle_ratio^2 ({v['hidden_size'] / ratio**2:g})"
        raise refuse("vision_config.intermediate_size", v["intermediate_size"], why)
    return VisionConfig(
        image_size=v["image_size"],
        patch_size=v["patch_size"],
        channels=v["num_channels"],
        d_model=v["hidden_size"],
        n_layers=v["num_hidden_layers"],
        n_heads=v["num_attention_heads"],
        ffn_hidden=v["intermediate_size"],
        rope_theta=_theta(vc),
        pixel_shuffle_ratio=ratio,
        projector_dim=v["projector_output_dim"],
        image_token_id=get(hf, DEFAULTS, "image_token_index"),
        image_start_id=get(hf, DEFAULTS, "boi_token_index"),
        image_end_id=get(hf, DEFAULTS, "eoi_token_index"),
    )


def wrap_to_hf(text: dict[str, Any], v: VisionConfig) -> dict[str, Any]:
    """The ``Llama4ForConditionalGeneration`` ``config.json`` around a Llama 4 text config."""
    if text.get("model_type") != "llama4_text":
        raise ValueError(f"model.vision is set: export with arch='llama4', not {text}")
    if v.ffn_hidden != v.d_model * v.merge**2:
        raise ValueError(
            f"vision.ffn_hidden = {v.ffn_hidden}: transformers' Llama 4 needs d_model /"
            f" pixel_shuffle_ratio^2 = {v.d_model * v.merge**2}"
        )
    ids = {
        "image_token_id": v.image_token_id,
        "image_start_id": v.image_start_id,
        "image_end_id": v.image_end_id,
    }
    for name, value in ids.items():
        if value is None:
            raise ValueError(f"vision.{name} is None: Llama 4 needs every image token id")
    vision = {
        "model_type": "llama4_vision_model",
        "hidden_act": "gelu",
        "hidden_size": v.d_model,
        "num_hidden_layers": v.n_layers,
        "num_attention_heads": v.n_heads,
        "num_channels": v.channels,
        "intermediate_size": v.ffn_hidden,
        "vision_output_dim": v.projector_dim,
        "projector_input_dim": v.projector_dim,
        "projector_output_dim": v.projector_dim,
        "image_size": v.image_size,
        "patch_size": v.patch_size,
        "pixel_shuffle_ratio": v.pixel_shuffle_ratio,
        "multi_modal_projector_bias": False,
        "rope_parameters": {"rope_type": "default", "rope_theta": v.rope_theta},
    }
    return {
        "architectures": [HF_CLASS],
        "model_type": MODEL_TYPE,
        "text_config": text | {"architectures": None},
        "vision_config": vision,
        "image_token_index": v.image_token_id,
        "boi_token_index": v.image_start_id,
        "eoi_token_index": v.image_end_id,
        "tie_word_embeddings": text["tie_word_embeddings"],
        "dtype": text["dtype"],
        "torch_dtype": text["dtype"],
    }


def tensor_names(v: VisionConfig) -> Iterator[tuple[str, str]]:
    """(HF name, our name) of every vision tensor, all mapped as they are."""
    hf, us = "vision_model.", "vision.encoder."
    yield hf + "patch_embedding.linear.weight", us + "patch_emb.weight"
    yield hf + "class_embedding", us + "cls_D"
    yield hf + "positional_embedding_vlm", us + "pos_LD"
    norms = (("layernorm_pre", "norm_pre"), ("layernorm_post", "norm_post"))
    for h, o in norms:
        for p in ("weight", "bias"):
            yield f"{hf}{h}.{p}", f"{us}{o}.{p}"
    for i in range(v.n_layers):
        h, o = f"{hf}model.layers.{i}.", f"{us}blocks.{i}."
        pairs = [("input_layernorm", "norm1"), ("post_attention_layernorm", "norm2")]
        pairs += [(f"self_attn.{p}_proj", f"attn.w{p}") for p in "qkvo"]
        pairs += [("mlp.fc1", "fc1"), ("mlp.fc2", "fc2")]
        for hn, on in pairs:
            for p in ("weight", "bias"):
                yield f"{h}{hn}.{p}", f"{o}{on}.{p}"
    yield hf + "vision_adapter.mlp.fc1.weight", "vision.projector.fc1.weight"
    yield hf + "vision_adapter.mlp.fc2.weight", "vision.projector.fc2.weight"
    yield "multi_modal_projector.linear_1.weight", "vision.projector.out.weight"
