"""The decoder-only transformer: embeddings, pre-norm blocks, final norm, LM head.

Init follows GPT-2 / Llama: every weight matrix N(0, 0.02); the projections that
write into the residual stream (attention ``wo``, MLP/expert ``w2``) get
0.02 / sqrt(2 * n_layers) so the residual's variance does not grow with depth
(Radford et al. 2019, section 2.3).

Incremental decoding: pass a ``KVCache`` (``superlab.model.cache``) and the call covers,
in each row b, positions ``cache.pos_B[b]..`` (one per valid token), attends to that row's
cached keys, and advances ``cache.pos_B``; a prefill is one call with the prompt, then one
call per new token. Rows are separate sequences of different lengths: ``valid_BT`` marks
the real tokens of a step (padding gets no position, is never attended and never kept).
A ``PagedKVCache`` (``superlab.model.paged_cache``, the serving engine's: fixed-size blocks,
a block table per sequence) has the same interface and works the same way on the rows it
was bound to. Without a cache the forward is the training path, unchanged. Decoding is
inference, so a cache needs ``model.eval()``: then every MoE router routes each token
alone (no capacity drops, no top-C over the batch; docs/moe.md), and a row's logits do
not depend on the other rows of its batch.

Per-layer choices (``model.layer_pattern``: attention kind, RoPE or NoPE, dense or MoE)
are resolved by ``ModelConfig`` and read by each ``Block`` from its layer index.

Early fusion (``model.vision``, Llama 4): ``pixels_NCHW`` holds the images of a call, in
order; their tower outputs replace the embeddings of the ``image_token_id`` placeholders
(``superlab.model.vision``), and no loss is taken at image positions. Everything after
the embedding treats those positions like any others. A text-only model has no tower and
its path is unchanged.

Legend: B batch, T sequence, D model dim, V vocabulary, N images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from superlab.config.recipe import ModelConfig
from superlab.model.attention import Attention
from superlab.model.attention_kinds import get_kind
from superlab.model.cache import KVCache, LayerKV
from superlab.model.mlp import SwiGLU
from superlab.model.moe import MoE
from superlab.model.norm import RMSNorm
from superlab.model.paged_cache import PagedKVCache, PagedLayerKV
from superlab.model.positions import Positions
from superlab.model.rope import RotaryEmbedding
from superlab.model.token_shift import previous
from superlab.model.vision import VisionTower, fuse, ignore_image_targets


@dataclass
class ModelOutput:
    """What ``Transformer.forward`` returns."""

    logits_BTV: torch.Tensor
    loss: torch.Tensor | None  # mean next-token cross-entropy; None without targets
    aux_loss: torch.Tensor  # weighted MoE auxiliary losses; 0 for a dense model
    moe_stats: list[dict[str, Any]] = field(default_factory=list)  # one per MoE layer


class Block(nn.Module):
    """Pre-norm residual block: attention, then a dense or MoE SwiGLU."""

    def __init__(self, cfg: ModelConfig, layer: int) -> None:
        super().__init__()
        self.norm1 = RMSNorm(cfg.d_model, cfg.norm_eps)
        # model.token_shift: the gain on the previous token's normed input (init 1).
        self.shift_D = nn.Parameter(torch.ones(cfg.d_model)) if cfg.token_shift else None
        self.attn = Attention(cfg, layer)
        self.norm2 = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp: SwiGLU | MoE = (
            MoE(cfg) if cfg.is_moe_layer(layer) else SwiGLU(cfg.d_model, cfg.hidden)
        )

    def forward(
        self, x_BTD: torch.Tensor, positions: Positions, kv: LayerKV | PagedLayerKV | None = None
    ) -> torch.Tensor:
        h_BTD = self.norm1(x_BTD)
        if self.shift_D is not None:
            prev_BTD = previous(h_BTD, positions.doc_ids_BT, kv, positions.pos_BT)
            h_BTD = h_BTD + self.shift_D * prev_BTD
        x_BTD = x_BTD + self.attn(h_BTD, positions, kv)
        x_BTD = x_BTD + self.mlp(self.norm2(x_BTD))
        return x_BTD


class Transformer(nn.Module):
    """A decoder-only language model built from a ``ModelConfig`` (``vocab_size`` set)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.vocab_size is None:
            raise ValueError("ModelConfig.vocab_size is None; fill it in (the tokenizer's) first")
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.rope = RotaryEmbedding(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta, cfg.rope_scaling)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        # Tied: the LM head reuses the embedding matrix (Press & Wolf 2017).
        self.lm_head = (
            None if cfg.tie_embeddings else nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        )
        self.vision: VisionTower | None = None
        self.reset_parameters()
        if cfg.vision is not None:  # built after the text init: same text weights per seed
            self.vision = VisionTower(cfg.vision, cfg.d_model)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """GPT-2 / Llama init; see the module docstring."""
        residual_std = 0.02 / math.sqrt(2 * self.cfg.n_layers)
        for name, p in self.named_parameters():
            if name.startswith("vision."):  # the tower's own init, below
                continue
            if name.endswith("smear_G"):  # model.smear_keys: equal shares of k_t and k_{t-1}
                nn.init.zeros_(p)
            elif p.dim() == 1:  # norm gains
                nn.init.ones_(p)
            elif name.endswith(("wo.weight", "w2.weight", "w2_EDF")):
                nn.init.normal_(p, mean=0.0, std=residual_std)
            else:
                nn.init.normal_(p, mean=0.0, std=0.02)
        if self.vision is not None:
            self.vision.reset_parameters()

    def forward(
        self,
        idx_BT: torch.Tensor,
        targets_BT: torch.Tensor | None = None,
        doc_ids_BT: torch.Tensor | None = None,
        cache: KVCache | PagedKVCache | None = None,
        valid_BT: torch.Tensor | None = None,
        pixels_NCHW: torch.Tensor | None = None,
        last_only: bool = False,
    ) -> ModelOutput:
        """Logits (and, with ``targets_BT``, the loss) of ``idx_BT``.

        ``last_only``: logits only at each row's last position (its last valid one, with
        ``valid_BT``), shape (B, 1, V): a prefill needs no others, and the LM head over a
        long prompt is a large share of its cost. Not with ``targets_BT``.
        """
        if last_only and targets_BT is not None:
            raise ValueError("last_only gives one position's logits; the loss needs them all")
        if cache is not None and self.training:
            raise ValueError(
                "decoding with a KV cache is inference: call model.eval() first"
                " (in training mode MoE capacity and batch expert choice couple the rows)"
            )
        if cache is not None and doc_ids_BT is not None:
            raise ValueError("doc_ids_BT (packed documents) is not supported with a KV cache")
        if cache is None and valid_BT is not None:
            raise ValueError("valid_BT (padding in a decode step) needs a KV cache")
        pos_BT = None
        if cache is None:
            cos_TC, sin_TC = self.rope(idx_BT.shape[1])
        else:  # each row at its own positions: (B, 1, T, C) tables, broadcast over heads
            if valid_BT is None:
                valid_BT = torch.ones_like(idx_BT, dtype=torch.bool)
            pos_BT = cache.positions(valid_BT)
            table_cos, table_sin = self.rope(max(int(pos_BT.max()), 0) + 1)
            at_BT = pos_BT.clamp(min=0)
            cos_TC, sin_TC = table_cos[at_BT][:, None], table_sin[at_BT][:, None]
        positions = Positions(cos_TC, sin_TC, doc_ids_BT, pos_BT)
        x_BTD = self.tok_emb(idx_BT)
        if self.vision is not None or pixels_NCHW is not None:
            x_BTD = fuse(self.vision, idx_BT, x_BTD, pixels_NCHW)
        for i, block in enumerate(self.blocks):
            kv = None if cache is None else cache.layers[i]
            x_BTD = block(x_BTD, positions, kv)
        if cache is not None and valid_BT is not None:
            cache.advance(valid_BT)
        if last_only:
            T = x_BTD.shape[1]
            if valid_BT is None:
                last_B = torch.full((x_BTD.shape[0],), T - 1, device=x_BTD.device)
            else:  # each row's last valid position (0 for a row with none)
                at_BT = torch.arange(T, device=x_BTD.device).expand_as(valid_BT)
                last_B = torch.where(valid_BT, at_BT, 0).max(dim=1).values
            x_BTD = x_BTD[torch.arange(x_BTD.shape[0], device=x_BTD.device), last_B][:, None]
        x_BTD = self.norm(x_BTD)
        weight_VD = self.tok_emb.weight if self.lm_head is None else self.lm_head.weight
        logits_BTV = F.linear(x_BTD, weight_VD)

        loss = None
        if targets_BT is not None and self.cfg.vision is not None:
            image_id = self.cfg.vision.image_token_id
            assert image_id is not None  # fuse refused a model without it
            targets_BT = ignore_image_targets(idx_BT, targets_BT, image_id)
        if targets_BT is not None:
            loss = F.cross_entropy(
                logits_BTV.float().flatten(0, 1), targets_BT.flatten(), ignore_index=-100
            )
        moes = [b.mlp for b in self.blocks if isinstance(b.mlp, MoE)]
        aux_loss = sum((m.aux_loss for m in moes), logits_BTV.new_zeros((), dtype=torch.float32))
        return ModelOutput(logits_BTV, loss, aux_loss, [m.stats for m in moes])

    @property
    def bounded_context(self) -> bool:
        """True when every layer's KV cache is bounded, so decoding may run past
        ``max_seq_len`` without cropping the context (each layer's kind says: ``bounded``)."""
        layers = [self.cfg.attention_for(i) for i in range(self.cfg.n_layers)]
        return all(get_kind(a.kind).bounded(a) for a in layers)

    def new_cache(self, batch: int | None = None) -> KVCache:
        """An empty KV cache for incremental decoding, each layer kept by its own kind."""
        cache = KVCache(self.cfg, batch)
        if cache.pos_B is not None:
            cache.pos_B = cache.pos_B.to(self.tok_emb.weight.device)
        return cache

    def new_paged_cache(self, num_blocks: int, block_size: int = 16) -> PagedKVCache:
        """An empty paged KV cache (``superlab.model.paged_cache``) of ``num_blocks`` blocks of
        ``block_size`` positions per layer group, on the model's device and in its dtype."""
        w = self.tok_emb.weight
        return PagedKVCache(self.cfg, num_blocks, block_size, w.device, w.dtype)

    def num_params(self) -> int:
        """Parameters stored (the tied embedding counted once)."""
        return sum(p.numel() for p in self.parameters())
