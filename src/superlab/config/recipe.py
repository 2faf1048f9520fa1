"""Pydantic models for every section of a recipe. Every knob has a default here."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FieldError(ValueError):
    """A cross-field check that failed; ``field`` is appended to the error's dotted path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Section(BaseModel):
    """Base for every recipe section: unknown keys are errors, assignment is checked."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --------------------------------------------------------------------------- data


class SourceConfig(Section):
    """Where documents come from."""

    kind: Literal["wiki_demo", "jsonl", "parquet", "warc"] = "wiki_demo"
    # jsonl / parquet / warc: files or globs. jsonl and parquet rows hold a text field;
    # warc (and .warc.gz, WET) records are HTML responses or plain text conversions.
    paths: list[str] = Field(default_factory=list)
    text_field: str = "text"
    id_field: str | None = "id"
    # warc: HTML-to-text extractor.
    extractor: Literal["trafilatura", "resiliparse"] = "trafilatura"
    # A record larger than this (bytes of text) is rejected as giant, not loaded whole.
    max_doc_bytes: int = Field(default=2_000_000, ge=1)
    # wiki_demo: how many source articles to draw (None = all 10,033) and the
    # seed that plants duplicates, boilerplate, spam and foreign pages.
    max_articles: int | None = Field(default=None, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _paths_for_files(self) -> SourceConfig:
        if self.kind != "wiki_demo" and not self.paths:
            raise FieldError("paths", f"kind '{self.kind}' needs at least one entry in 'paths'")
        return self


class FilterConfig(Section):
    """Quality filters. Thresholds are Gopher's (Rae et al. 2021, appendix A) and C4's."""

    min_words: int = Field(default=50, ge=0)
    max_words: int = Field(default=100_000, ge=1)
    # Gopher: mean word length within [3, 10] characters.
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    # Gopher: symbol-to-word ratio (# and ellipsis) at most 0.1.
    max_symbol_word_ratio: float = Field(default=0.1, ge=0)
    # Gopher: at most 90% of lines start with a bullet, at most 30% end with an ellipsis.
    max_bullet_lines_ratio: float = Field(default=0.9, ge=0, le=1)
    max_ellipsis_lines_ratio: float = Field(default=0.3, ge=0, le=1)
    # Gopher: at least 80% of words contain an alphabetic character.
    min_alpha_words_ratio: float = Field(default=0.8, ge=0, le=1)
    # Gopher: at least 2 of the English stop words (the, be, to, of, and, that, have, with).
    min_stop_words: int = Field(default=2, ge=0)
    # Gopher repetition: fraction of characters in duplicated lines at most 0.2,
    # top 2-gram character fraction at most 0.2.
    max_dup_line_char_ratio: float = Field(default=0.2, ge=0, le=1)
    max_top_2gram_char_ratio: float = Field(default=0.2, ge=0, le=1)
    # C4 line rules: drop lines without terminal punctuation, with fewer than 3
    # words, or mentioning javascript / cookie-policy boilerplate.
    c4_lines: bool = True
    # FineWeb's extra rules (Penedo et al. 2024, sec. 3.3): drop a document when at most
    # 12% of its lines end in punctuation, when at least 10% of its characters sit in
    # duplicated lines, or when at least 67% of its lines are shorter than 30 characters.
    fineweb: bool = True
    fineweb_min_punct_line_ratio: float = Field(default=0.12, ge=0, le=1)
    fineweb_max_dup_line_char_ratio: float = Field(default=0.1, ge=0, le=1)
    fineweb_max_short_line_ratio: float = Field(default=0.67, ge=0, le=1)
    fineweb_short_line_chars: int = Field(default=30, ge=1)
    # URL blocklist: documents whose metadata url's host is, or is under, a listed domain.
    url_blocklist: list[str] = Field(default_factory=list)
    url_blocklist_file: str | None = None


class LanguageConfig(Section):
    """Language identification with a model that works offline."""

    enabled: bool = True
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1)
    # FineWeb keeps English with a fastText score of at least 0.65.
    min_score: float = Field(default=0.65, ge=0, le=1)


class PIIConfig(Section):
    """Mask personal data in kept documents."""

    emails: bool = True
    ips: bool = True


class MinHashConfig(Section):
    """Near-duplicate detection: MinHash over word n-grams with LSH banding (FineWeb's settings)."""

    enabled: bool = True
    ngram: int = Field(default=5, ge=1)
    bands: int = Field(default=14, ge=1)
    rows: int = Field(default=8, ge=1)
    seed: int = 1
    # Check each candidate pair's exact n-gram Jaccard and keep only pairs at or above it.
    verify: bool = False
    verify_threshold: float = Field(default=0.7, ge=0, le=1)


class DedupConfig(Section):
    """Deduplication settings."""

    exact: bool = True
    minhash: MinHashConfig = Field(default_factory=MinHashConfig)


class ProbeSpec(Section):
    """The shape of long-context probe texts (``superlab.eval.probes``)."""

    kinds: list[Literal["recall", "multihop", "passkey"]] = Field(
        default_factory=lambda: ["recall", "multihop"], min_length=1
    )
    pairs: int = Field(default=24, ge=2, description="key-value facts per recall/multihop context")
    # Each context draws its number of facts uniformly from [min_pairs, pairs], so query
    # positions, and with them the chunk relations, spread out; None = always pairs.
    min_pairs: int | None = Field(default=None, ge=2)
    # words: keys drawn from 256 common English nouns (mostly one token each, so a small
    # model can learn recall); letters: random lowercase strings of key_letters letters.
    keys: Literal["words", "letters"] = "words"
    key_letters: int = Field(default=3, ge=2, le=8)
    value_digits: int = Field(default=2, ge=1, le=6)
    passkey_filler: int = Field(default=8, ge=1, description="filler paragraphs per passkey text")
    passkey_depths: list[float] = Field(
        default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0], min_length=1
    )
    passkey_digits: int = Field(default=5, ge=1, le=9)

    @model_validator(mode="after")
    def _depths_in_range(self) -> ProbeSpec:
        if self.keys == "words" and self.pairs + 4 > 256:
            raise FieldError("pairs", f"pairs ({self.pairs}) must be at most 252 with keys 'words'")
        if self.min_pairs is not None and self.min_pairs > self.pairs:
            raise FieldError(
                "min_pairs", f"min_pairs ({self.min_pairs}) exceeds pairs ({self.pairs})"
            )
        for j, d in enumerate(self.passkey_depths):
            if not 0.0 <= d <= 1.0:
                raise FieldError(f"passkey_depths.{j}", f"depth {d} is outside [0, 1]")
        return self


class ProbeMixConfig(ProbeSpec):
    """Probe documents added to the train split by the data stage (never to held-out)."""

    docs: int = Field(default=0, ge=0, description="probe documents per kind")
    queries: int = Field(default=4, ge=1, description="answered queries per document")
    seed: int = Field(default=1, description="must differ from eval.probes.seed")


class DataConfig(Section):
    """Documents in, clean deduplicated text out, then tokenized shards."""

    source: SourceConfig = Field(default_factory=SourceConfig)
    filters: FilterConfig = Field(default_factory=FilterConfig)
    language: LanguageConfig = Field(default_factory=LanguageConfig)
    pii: PIIConfig = Field(default_factory=PIIConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    heldout_fraction: float = Field(default=0.02, ge=0, lt=0.5)
    shard_tokens: int = Field(default=1_000_000, ge=1024)
    executor: Literal["local", "ray"] = "local"
    workers: int = Field(default=0, ge=0, description="0 = all cores")
    # Long-context probe documents mixed into the train split (superlab.eval.probes).
    probes: ProbeMixConfig | None = None


# ---------------------------------------------------------------------- tokenizer


class TokenizerConfig(Section):
    """Byte-level BPE trained on the cleaned corpus."""

    vocab_size: int = Field(default=4096, ge=260, le=1_000_000)
    min_frequency: int = Field(default=2, ge=1)


# -------------------------------------------------------------------------- model


class AttentionConfig(Section):
    """Which tokens a query may see. All kinds are causal."""

    kind: Literal["full", "sliding", "chunked", "sparse"] = "full"
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
        if self.kind == "sliding" and self.window is None:
            raise FieldError("window", "kind 'sliding' needs 'window'")
        if self.kind == "chunked" and self.chunk_size is None:
            raise FieldError("chunk_size", "kind 'chunked' needs 'chunk_size'")
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

    attention: Literal["full", "sliding", "chunked", "sparse"] | None = Field(
        default=None, description="None = model.attention.kind"
    )
    # Overrides of model.attention's settings for this layer (None = model.attention's).
    window: int | None = Field(default=None, ge=1)
    chunk_size: int | None = Field(default=None, ge=1)
    rope: bool = Field(default=True, description="false = NoPE, no positional encoding")
    mlp: Literal["dense", "moe"] | None = Field(default=None, description="None = by moe.every")


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
    # chunked attention each layer passes the previous chunk's last position on. No
    # Hugging Face architecture has it.
    token_shift: bool = False
    # Smeared keys (Olsson et al. 2022, "In-context Learning and Induction Heads"): each
    # key head's key at t is s * k_t + (1 - s) * k_{t-1}, s = sigmoid(a) with a learned
    # per key head (init 0). A head with s near 0 keys each position by the token before
    # it, so one layer can attend to "what followed this key" (in recipes/ablate-llama4.yaml
    # the learned shares end between 0.03 and 0.90). Unlike token_shift it
    # touches keys only, and it never crosses a document edge or, in a chunked layer, a
    # chunk edge (chunked attention stays sealed). In a sliding layer the oldest key in the
    # window carries the token just before the window. No Hugging Face architecture has it.
    smear_keys: bool = False

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
            window = spec.window or self.attention.window
            chunk = spec.chunk_size or self.attention.chunk_size
            if spec.window is not None and kind != "sliding":
                raise FieldError(
                    f"{where}.window", f"'window' applies to kind 'sliding', not '{kind}'"
                )
            if spec.chunk_size is not None and kind != "chunked":
                raise FieldError(
                    f"{where}.chunk_size", f"'chunk_size' applies to kind 'chunked', not '{kind}'"
                )
            if kind == "sliding" and window is None:
                raise FieldError(
                    f"{where}.window", "kind 'sliding' needs 'window' (here or in model.attention)"
                )
            if kind == "chunked" and chunk is None:
                raise FieldError(
                    f"{where}.chunk_size",
                    "kind 'chunked' needs 'chunk_size' (here or in model.attention)",
                )
        return self

    def _spec(self, layer: int) -> LayerSpec | None:
        if self.layer_pattern is None:
            return None
        return self.layer_pattern[layer % len(self.layer_pattern)]

    def _spec_attention(self, spec: LayerSpec) -> AttentionConfig:
        base = self.attention.model_dump()
        base["kind"] = spec.attention or self.attention.kind
        if spec.window is not None:
            base["window"] = spec.window
        if spec.chunk_size is not None:
            base["chunk_size"] = spec.chunk_size
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


# -------------------------------------------------------------------------- train


class TrainConfig(Section):
    """The training loop: AdamW, warmup + cosine or WSD, precision, parallelism, checkpoints."""

    steps: int = Field(default=200, ge=1)
    # The global batch of one micro-step; under torchrun each rank takes its own
    # batch_size / world_size rows of it, so the run is the same at any world size.
    batch_size: int = Field(default=16, ge=1)
    seq_len: int = Field(default=256, ge=8)
    grad_accum: int = Field(default=1, ge=1)
    lr: float = Field(default=3e-3, gt=0)
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)
    warmup_steps: int = Field(default=20, ge=0)
    # cosine: warmup, then cosine decay to min_lr_ratio * lr over the remaining steps.
    # wsd (warmup-stable-decay): warmup, constant lr, then a 1-sqrt decay to
    # min_lr_ratio * lr over the last decay_fraction of the steps (Hägele et al. 2024).
    schedule: Literal["cosine", "wsd"] = "cosine"
    decay_fraction: float = Field(
        default=0.2, gt=0, le=1, description="wsd: share of the steps spent decaying"
    )
    weight_decay: float = Field(default=0.1, ge=0)
    beta1: float = Field(default=0.9, ge=0, lt=1)
    beta2: float = Field(default=0.95, ge=0, lt=1)
    grad_clip: float = Field(default=1.0, ge=0, description="0 = off")
    # auto: bf16 autocast on a CUDA device that supports it, fp32 elsewhere; bf16 also
    # runs on CPU (slower than fp32 without AMX). Weights and AdamW state stay fp32.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    compile: bool = Field(default=False, description="torch.compile each block")
    document_mask: bool = Field(
        default=False, description="no attention across document boundaries in a window"
    )
    max_bad_steps: int = Field(
        default=5, ge=1, description="non-finite steps in a row that stop the run"
    )
    # Under torchrun (WORLD_SIZE > 1): ddp replicates the model on every rank, fsdp
    # shards parameters, gradients and optimizer state (FSDP2 fully_shard per block).
    distributed: Literal["ddp", "fsdp"] = "ddp"
    peak_tflops: float | None = Field(
        default=None,
        gt=0,
        description="one device's dense peak for MFU; None = the plan catalog's (CUDA only)",
    )
    tensorboard: bool = Field(default=True, description="also write tb/ when installed")
    log_every: int = Field(default=10, ge=1)
    eval_every: int = Field(default=50, ge=1)
    eval_batches: int = Field(default=4, ge=1)
    ckpt_every: int = Field(default=50, ge=1)
    keep_last: int = Field(default=2, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(default=0, ge=0, description="torch CPU threads; 0 = all cores")
    seed: int = 1234


# --------------------------------------------------------------------------- eval


class ProbeEvalConfig(ProbeSpec):
    """Long-context probes scored on the newest checkpoint (``superlab.eval.probes``)."""

    items: int = Field(default=100, ge=1, description="items per kind")
    seed: int = Field(default=0, description="must differ from data.probes.seed")
    # Chunk sizes to classify items by (same / adjacent / far chunk, straddling an edge),
    # besides the model's own chunk sizes.
    chunk_sizes: list[int] = Field(default_factory=list)
    batch_size: int = Field(default=16, ge=1)

    @model_validator(mode="after")
    def _positive_chunks(self) -> ProbeEvalConfig:
        for j, c in enumerate(self.chunk_sizes):
            if c < 1:
                raise FieldError(f"chunk_sizes.{j}", f"chunk size {c} must be at least 1")
        return self


class ContaminationConfig(Section):
    """N-gram overlap between the train shards and each eval set, and Min-K% probability."""

    # 13-grams as in GPT-3's contamination study (Brown et al. 2020, appendix C).
    ngram: int = Field(default=13, ge=1)
    # An item is contaminated when at least this fraction of its n-grams occur in the
    # train split (PaLM, Chowdhery et al. 2022, sec. 8, used 70% of 8-grams).
    min_overlap: float = Field(default=0.7, gt=0, le=1)
    # Min-K% probability (Shi et al. 2023): mean log-probability of the k% least likely tokens.
    min_k_percent: float = Field(default=20.0, gt=0, le=100)


class HLEConfig(Section):
    """A Humanity's Last Exam-format file (question, answer, answer_type, category)."""

    path: str = Field(description="local .json, .jsonl or .parquet file")
    prompt: str = "Question: {question}\nAnswer:"
    max_new_tokens: int = Field(default=32, ge=1)
    limit: int | None = Field(default=None, ge=1, description="first N items only")
    # Target items per calibration bin (HLE's beta = 100).
    calibration_bin: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _prompt_has_question(self) -> HLEConfig:
        if "{question}" not in self.prompt:
            raise FieldError("prompt", "prompt must contain '{question}'")
        return self


class EvalConfig(Section):
    """Evaluation of the newest checkpoint."""

    perplexity: bool = True
    batches: int = Field(default=8, ge=1)
    probes: ProbeEvalConfig | None = None
    contamination: ContaminationConfig | None = None
    hle: HLEConfig | None = None


# -------------------------------------------------------------------------- serve


class ServeConfig(Section):
    """Sampling settings; the run's serve stage answers ``prompts`` as a smoke test."""

    prompts: list[str] = Field(default_factory=lambda: ["The history of", "In mathematics,"])
    max_new_tokens: int = Field(default=48, ge=1)
    temperature: float = Field(default=0.8, ge=0, description="0 = greedy")
    top_k: int | None = Field(default=40, ge=1)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int = 0
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # The HTTP server (`superlab serve`): batching, limits and the safety policy.
    max_batch: int = Field(default=32, ge=1, description="sequences decoded together")
    queue_size: int = Field(default=64, ge=1, description="waiting requests before 429")
    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="larger bodies get 413")
    max_tokens_limit: int = Field(default=1024, ge=1, description="largest max_tokens allowed")
    default_max_tokens: int = Field(default=16, ge=1, description="OpenAI's completions default")
    request_timeout_s: float = Field(default=300.0, gt=0, description="per request, then 408")
    policy: str | None = Field(default=None, description="safety policy YAML; None = built-in")
    log_user_text: bool = Field(default=False, description="refusal logs carry the user's text")
    max_n: int = Field(default=4, ge=1, description="largest n (choices per prompt) allowed")
    drain_timeout_s: float = Field(
        default=30.0, ge=0, description="on SIGTERM, how long requests in flight may finish"
    )
    max_check_chars: int = Field(
        default=200_000, ge=1000, description="longest input the safety check scans, else 400"
    )
    check_workers: int = Field(default=2, ge=1, description="threads for safety checks")
    docs: bool = Field(default=False, description="serve /docs and /openapi.json")


# --------------------------------------------------------------------------- plan


class PlanConfig(Section):
    """What training this recipe's model would cost at scale."""

    accelerator: str = "h100-sxm"
    precision: Literal["bf16", "fp8"] = "bf16"
    num_gpus: int = Field(default=8, ge=1)
    mfu: float = Field(default=0.4, gt=0, le=1)
    goodput: float = Field(default=0.9, gt=0, le=1)
    pue: float = Field(default=1.2, ge=1)
    price_per_gpu_hour: float = Field(default=2.5, ge=0)
    # Tokens for the scaled-up estimate; None = 20 x parameters (Chinchilla).
    target_tokens: float | None = Field(default=None, gt=0)


# ------------------------------------------------------------------------- recipe


class Recipe(Section):
    """One run, from web documents to a served model and its cost."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100)
    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    plan: PlanConfig = Field(default_factory=PlanConfig)

    @model_validator(mode="after")
    def _cross_section(self) -> Recipe:
        if (
            self.data.probes is not None
            and self.eval.probes is not None
            and self.data.probes.seed == self.eval.probes.seed
        ):
            raise FieldError(
                "eval.probes.seed",
                f"eval.probes.seed ({self.eval.probes.seed}) equals data.probes.seed: the eval "
                "items would be the training documents",
            )
        if self.train.seq_len > self.model.max_seq_len:
            raise FieldError(
                "train.seq_len",
                f"train.seq_len ({self.train.seq_len}) exceeds model.max_seq_len "
                f"({self.model.max_seq_len})",
            )
        if self.model.vocab_size is not None and self.model.vocab_size < self.tokenizer.vocab_size:
            raise FieldError(
                "model.vocab_size",
                f"model.vocab_size ({self.model.vocab_size}) is smaller than "
                f"tokenizer.vocab_size ({self.tokenizer.vocab_size})",
            )
        return self

    @classmethod
    def load(cls, path: str | Path, overrides: list[str] | None = None) -> Recipe:
        """Load and validate a recipe file; see ``superlab.config.load``."""
        from superlab.config.load import load_recipe

        return load_recipe(path, overrides)

    def resolved(self) -> dict[str, Any]:
        """The recipe with every default filled in, as plain data."""
        return self.model_dump(mode="json")
