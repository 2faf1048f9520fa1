"""The ``model`` section: shapes, attention, RoPE, MoE and per-layer patterns."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from superlab.config.attention_kinds import KIND_NEEDS, check_kind, kinds_needing, quoted
from superlab.config.section import FieldError, Section
from superlab.config.vision import VisionConfig

# A registered attention kind's name (superlab.config.attention_kinds; the shipped ones:
# full, sliding, chunked, sparse; behaviour in superlab.model.attention_kinds).
KindName = Annotated[str, AfterValidator(check_kind)]


class AttentionConfig(Section):
    """Which tokens a query may see. All kinds are causal."""

    kind: KindName = "full"
    window: int | None = Field(
        default=None, ge=1, description="sliding: tokens seen, self included"
    )
    chunk_size: int | None = Field(default=None, ge=1, description="chunked: tokens per chunk")
    # sparse (MoBA / NSA "selection"): each query block attends to its own block, the
    # local_blocks before it, and the top_k_blocks most relevant earlier blocks, chosen by
    # the query's dot product with each block's mean key.
    block_size: int = Field(default=64, ge=1)
    top_k_blocks: int = Field(default=4, ge=0)
    local_blocks: int = Field(default=1, ge=0)

    @model_validator(mode="after")
    def _kind_needs(self) -> AttentionConfig:
        for field in KIND_NEEDS[self.kind]:
            if getattr(self, field) is None:
                raise FieldError(field, f"kind '{self.kind}' needs '{field}'")
        return self


class RopeScalingConfig(Section):
    """Stretch RoPE past the trained context; ``model.rope_scaling`` (``superlab.model.rope``)."""

    # linear: positions / factor (Chen et al. 2023, position interpolation);
    # ntk: theta * factor^(C/(C-2)) (bloc97's "NTK-aware" scaling, reddit r/LocalLLaMA 2023);
    # llama3: Llama 3.1's piecewise rule on wavelengths (transformers' rope_type "llama3").
    type: Literal["linear", "ntk", "llama3"]
    factor: float = Field(gt=0)
    # llama3 only; Llama 3.1 uses original_max_seq_len 8192, low 1, high 4 (factor 8);
    # Llama 4 Scout 8192, low 1, high 1 (factor 16).
    original_max_seq_len: int | None = Field(default=None, ge=1)
    low_freq_factor: float = Field(default=1.0, gt=0)
    high_freq_factor: float = Field(default=4.0, gt=0)

    @model_validator(mode="after")
    def _llama3_needs(self) -> RopeScalingConfig:
        if self.type == "llama3" and self.original_max_seq_len is None:
            raise FieldError("original_max_seq_len", "type 'llama3' needs 'original_max_seq_len'")
        # Equal factors leave no band to interpolate: longer wavelengths than
        # original_max / low are stretched, the rest kept (Llama 4 Scout ships 1 and 1).
        if self.type == "llama3" and self.high_freq_factor < self.low_freq_factor:
            raise FieldError(
                "high_freq_factor", "high_freq_factor must not be below low_freq_factor"
            )
        return self


class NopeTemperatureConfig(Section):
    """Query scale ``log(floor((pos + 1) / floor_scale) + 1) * attn_scale + 1`` on NoPE layers.

    Llama 4's ``attn_temperature_tuning`` (transformers ``Llama4TextAttention``; config
    names ``floor_scale``, ``attn_scale``): sharper attention at long range without RoPE.
    """

    floor_scale: float = Field(default=8192.0, gt=0)
    attn_scale: float = Field(default=0.1, ge=0)


class LayerSpec(Section):
    """One entry of ``model.layer_pattern``: a layer's attention kind, RoPE/NoPE and MLP."""

    attention: KindName | None = Field(default=None, description="None = model.attention.kind")
    # Overrides of model.attention's settings for this layer (None = model.attention's).
    window: int | None = Field(default=None, ge=1)
    chunk_size: int | None = Field(default=None, ge=1)
    rope: bool = Field(default=True, description="false = NoPE, no positional encoding")
    mlp: Literal["dense", "moe"] | None = Field(default=None, description="None = by moe.every")


# The AttentionConfig fields a LayerSpec may override (each applies to the kinds needing it).
LAYER_OVERRIDES = ("window", "chunk_size")


class MoEConfig(Section):
    """Mixture of Experts with SwiGLU experts and a choice of router."""

    num_experts: int = Field(default=4, ge=1)
    top_k: int = Field(default=2, ge=1)
    expert_hidden: int | None = Field(default=None, ge=1, description="None = the dense ffn_hidden")
    num_shared_experts: int = Field(default=0, ge=0)
    every: int = Field(default=2, ge=1, description="MoE in every n-th layer (the last of each n)")
    # token_choice: each token picks top_k experts (Switch / Mixtral);
    # aux_free: token choice with DeepSeek-V3's selection bias, updated from observed load;
    # expert_choice: each expert picks its top-C tokens (Zhou et al. 2022).
    router: Literal["token_choice", "aux_free", "expert_choice"] = "token_choice"
    score_func: Literal["softmax", "sigmoid"] = "softmax"
    # token_choice, aux_free: renormalise the K chosen weights to sum to 1 (Mixtral,
    # DeepSeek-V3; Qwen3-MoE's norm_topk_prob) or gate with the raw scores (Qwen3-MoE's
    # default; Llama 4's sigmoid). expert_choice always gates with the raw score.
    norm_topk: bool = True
    # Where the gating weight w multiplies: the expert's output, w * expert(x) (Switch,
    # Mixtral, DeepSeek), or its input, expert(w * x) (Llama 4's Llama4TextMoe).
    gate_on: Literal["output", "input"] = "output"
    # expert_choice: causal picks by per-expert thresholds from past batches (trains and
    # decodes without reading the future); batch is Zhou et al.'s top-C over the batch,
    # which leaks the future in causal training (docs/moe.md).
    expert_choice_mode: Literal["causal", "batch"] = "causal"
    # Expert capacity = capacity_factor * tokens * top_k / num_experts; None = no limit
    # (token_choice, aux_free: overflow tokens are dropped, in training only: inference
    # drops nothing, docs/moe.md); expert_choice always uses it in training.
    capacity_factor: float | None = Field(default=None, gt=0)
    aux_loss_coef: float = Field(default=0.01, ge=0)
    z_loss_coef: float = Field(default=0.001, ge=0)
    # aux_free: bias step per update (DeepSeek-V3's gamma) and the optional small
    # sequence-wise balance loss (its alpha).
    bias_update_rate: float = Field(default=0.001, ge=0)
    seq_aux_loss_coef: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _top_k_fits(self) -> MoEConfig:
        if self.top_k > self.num_experts:
            raise FieldError(
                "top_k",
                f"top_k ({self.top_k}) must not exceed num_experts ({self.num_experts})",
            )
        if self.expert_choice_mode != "causal" and self.router != "expert_choice":
            raise FieldError(
                "expert_choice_mode",
                f"expert_choice_mode applies to router 'expert_choice', not '{self.router}'",
            )
        return self


class ModelConfig(Section):
    """A decoder-only transformer: RMSNorm, RoPE, grouped-query attention, SwiGLU."""

    d_model: int = Field(default=128, ge=8)
    n_layers: int = Field(default=4, ge=1)
    n_heads: int = Field(default=4, ge=1)
    n_kv_heads: int | None = Field(default=None, ge=1, description="None = n_heads (no GQA)")
    # Per-head width of q, k and v (projections are n_heads * d_head wide); set it when it
    # differs from d_model / n_heads (Qwen3-30B-A3B: 2048 / 32 heads, but 128 per head).
    d_head: int | None = Field(default=None, ge=2, description="None = d_model / n_heads")
    ffn_hidden: int | None = Field(
        default=None, ge=1, description="None = 8/3 d_model, rounded up to 32"
    )
    vocab_size: int | None = Field(default=None, ge=2, description="None = the tokenizer's")
    max_seq_len: int = Field(default=256, ge=8)
    rope_theta: float = Field(default=10_000.0, gt=0)
    norm_eps: float = Field(default=1e-5, gt=0)
    tie_embeddings: bool = True
    attention: AttentionConfig = Field(default_factory=AttentionConfig)
    moe: MoEConfig | None = None
    # Per-layer choices, repeated cyclically over n_layers (None = model.attention, RoPE
    # and MoE by moe.every in every layer). Llama 4: three chunked RoPE layers, then a
    # full NoPE layer ("iRoPE"; transformers' no_rope_layers, attention_chunk_size).
    layer_pattern: list[LayerSpec] | None = Field(default=None, min_length=1)
    # rms: learned RMSNorm over the head dim on q and k before RoPE, in every layer (Qwen3;
    # OLMo-2 normalises the whole projection). l2: weightless x / rms(x) after RoPE, on RoPE
    # layers only (Llama 4's use_qk_norm, Llama4TextL2Norm).
    qk_norm: Literal["none", "rms", "l2"] = "none"
    rope_scaling: RopeScalingConfig | None = None
    nope_temperature: NopeTemperatureConfig | None = None
    # Token shift before attention: each layer's attention input at position t gets
    # g * (its input at t - 1) added, g a learned per-channel gain (init 1; RWKV's token
    # shift; smear_keys below is the keys-only form). A position then carries the token
    # before it, so one attention layer can match "what followed this key" (the induction
    # pattern). It never crosses a document edge, but it does cross chunk edges: under
    # chunked attention each layer passes the previous chunk's last position on (measured
    # effect: docs/eval.md). No Hugging Face architecture has it.
    token_shift: bool = False
    # Smeared keys (Olsson et al. 2022, "In-context Learning and Induction Heads"): each
    # key head's key at t is s * k_t + (1 - s) * k_{t-1}, s = sigmoid(a) with a learned
    # per key head (init 0). A head with s near 0 keys each position by the token before
    # it, so one layer can attend to "what followed this key" (measured effect and learned
    # shares: docs/eval.md, "Smeared keys ..."). Unlike token_shift it touches keys only,
    # and it never crosses a document edge or, in a chunked layer, a chunk edge (chunked
    # attention stays sealed). In a sliding layer the oldest key in the
    # window carries the token just before the window. No Hugging Face architecture has it.
    smear_keys: bool = False
    # Early fusion (Llama 4): a ViT + projector whose outputs replace image placeholder
    # tokens' embeddings (superlab.config.vision, superlab.model.vision); None = text only.
    vision: VisionConfig | None = None

    @model_validator(mode="after")
    def _shapes(self) -> ModelConfig:
        if self.d_head is not None:
            if self.d_head % 2:
                raise FieldError("d_head", f"d_head ({self.d_head}) must be even for RoPE")
        elif self.d_model % self.n_heads:
            raise FieldError(
                "n_heads", f"n_heads ({self.n_heads}) must divide d_model ({self.d_model})"
            )
        elif (self.d_model // self.n_heads) % 2:
            raise FieldError(
                "n_heads",
                f"head dim d_model/n_heads ({self.d_model // self.n_heads}) must be even for RoPE",
            )
        kv = self.n_kv_heads or self.n_heads
        if self.n_heads % kv:
            raise FieldError(
                "n_kv_heads", f"n_kv_heads ({kv}) must divide n_heads ({self.n_heads})"
            )
        for j, spec in enumerate(self.layer_pattern or []):
            where = f"layer_pattern.{j}"
            if spec.mlp == "moe" and self.moe is None:
                raise FieldError(f"{where}.mlp", "mlp 'moe' needs a 'model.moe' section")
            kind = spec.attention or self.attention.kind
            for field in LAYER_OVERRIDES:
                if getattr(spec, field) is not None and field not in KIND_NEEDS[kind]:
                    raise FieldError(
                        f"{where}.{field}",
                        f"'{field}' applies to kind {quoted(kinds_needing(field))}, not '{kind}'",
                    )
            for field in KIND_NEEDS[kind]:
                if getattr(spec, field, None) is None and getattr(self.attention, field) is None:
                    raise FieldError(
                        f"{where}.{field}",
                        f"kind '{kind}' needs '{field}' (here or in model.attention)",
                    )
        return self

    def _spec(self, layer: int) -> LayerSpec | None:
        if self.layer_pattern is None:
            return None
        return self.layer_pattern[layer % len(self.layer_pattern)]

    def _spec_attention(self, spec: LayerSpec) -> AttentionConfig:
        base = self.attention.model_dump()
        base["kind"] = spec.attention or self.attention.kind
        for field in LAYER_OVERRIDES:
            if getattr(spec, field) is not None:
                base[field] = getattr(spec, field)
        return AttentionConfig(**base)

    @property
    def head_dim(self) -> int:
        """The effective per-head width: ``d_head``, or ``d_model / n_heads`` when unset."""
        return self.d_head if self.d_head is not None else self.d_model // self.n_heads

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def hidden(self) -> int:
        if self.ffn_hidden is not None:
            return self.ffn_hidden
        h = int(8 * self.d_model / 3)
        return (h + 31) // 32 * 32

    def is_moe_layer(self, layer: int) -> bool:
        """True when layer ``layer`` (0-based) uses the MoE MLP."""
        spec = self._spec(layer)
        if spec is not None and spec.mlp is not None:
            return spec.mlp == "moe"
        return self.moe is not None and (layer + 1) % self.moe.every == 0

    def attention_for(self, layer: int) -> AttentionConfig:
        """Layer ``layer``'s attention: its pattern entry over ``model.attention``."""
        spec = self._spec(layer)
        return self.attention if spec is None else self._spec_attention(spec)

    def rope_for(self, layer: int) -> bool:
        """True when layer ``layer`` rotates q and k by RoPE; False for a NoPE layer."""
        spec = self._spec(layer)
        return spec is None or spec.rope
