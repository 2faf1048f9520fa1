"""Causal grouped-query attention (Ainslie et al. 2023); which keys a query sees is its kind's.

Every kind is causal: a query at position t may see key position s <= t, and then by its
layer's kind (``superlab.model.attention_kinds``: ``full``, ``sliding``, ``chunked``,
``sparse``, or any registered one), which owns the rule (``visible``), the training kernel
(``attend``) and the cached step (``decode``). This module asks ``get_kind(cfg.kind)`` and
never tests a kind's name.

A forward's ``Positions`` (``superlab.model.positions``) carries the rotary tables, and
``doc_ids_BT`` and ``pos_BT`` where given. With ``doc_ids_BT`` a query also sees only keys
of its own document (packed sequences).
``attention_mask`` is the reference (a boolean T x T mask for SDPA); full attention trains
on SDPA's ``is_causal`` path and the other shipped kinds on block-wise kernels
(``attention_blockwise``, ``attention_sparse``) that never build T x T scores and are
tested equal to the reference, forward and backward.

Per layer (``ModelConfig.attention_for`` / ``rope_for``, from ``model.layer_pattern``) the
kind may differ and q, k may get RoPE or none (NoPE). Optional QK-norm (``model.qk_norm``):
``rms``, a learned RMSNorm over the head dim on q and k before RoPE in every layer (Qwen3);
``l2``, a weightless ``x / rms(x)`` after RoPE on RoPE layers only (Llama 4,
``Llama4TextL2Norm``). NoPE layers may scale q by a position-dependent temperature
(``model.nope_temperature``, Llama 4's ``attn_temperature_tuning``).
Optional smeared keys (``model.smear_keys``, Olsson et al. 2022): each key head's key is
a learned mix of its token's and the previous token's (before QK-norm and RoPE), never
across a document edge or a segment edge of the kind (``segment``: a chunked layer's chunk).

With a ``LayerKV`` cache (incremental decoding, ``superlab.model.cache``) the T new
queries of row b sit at absolute positions ``pos_BT[b]`` (-1: padding) and attend to that
row's cached keys plus their own, masked by the same rule on absolute positions; empty
slots (padding, other rows' lengths) are never attended.

Legend: B batch, T query positions, S key positions, D model dim, H query heads,
G key/value heads, C head dim.
"""

from __future__ import annotations

import torch
from torch import nn

from superlab.config.recipe import ModelConfig, NopeTemperatureConfig
from superlab.model.attention_kinds import get_kind
from superlab.model.attention_kinds.kernels import attention_mask, visible
from superlab.model.cache import LayerKV
from superlab.model.norm import RMSNorm
from superlab.model.paged_cache import PagedLayerKV
from superlab.model.positions import Positions
from superlab.model.rope import apply_rope
from superlab.model.token_shift import previous

__all__ = ["Attention", "attention_mask", "l2_norm", "nope_temperature", "visible"]


def l2_norm(x_C: torch.Tensor, eps: float) -> torch.Tensor:
    """Weightless ``x / rms(x)`` over the last dim, as Llama 4's ``Llama4TextL2Norm``."""
    x32_C = x_C.float()
    return (x32_C * torch.rsqrt(x32_C.pow(2).mean(-1, keepdim=True) + eps)).type_as(x_C)


def nope_temperature(cfg: NopeTemperatureConfig, pos_T: torch.Tensor) -> torch.Tensor:
    """Query scale per position: ``log(floor((pos + 1) / floor_scale) + 1) * attn_scale + 1``."""
    steps_T = torch.floor((pos_T.float() + 1.0) / cfg.floor_scale)
    return torch.log1p(steps_T) * cfg.attn_scale + 1.0


class Attention(nn.Module):
    """Multi-head attention with G <= H shared key/value heads; RoPE (or NoPE) on q and k."""

    def __init__(self, cfg: ModelConfig, layer: int = 0) -> None:
        super().__init__()
        self.attn_cfg = cfg.attention_for(layer)
        self.kind = get_kind(self.attn_cfg.kind)
        self.use_rope = cfg.rope_for(layer)
        self.eps = cfg.norm_eps
        self.l2_qk = cfg.qk_norm == "l2" and self.use_rope
        self.temperature = None if self.use_rope else cfg.nope_temperature
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.kv_heads, cfg.head_dim
        self.wq = nn.Linear(cfg.d_model, self.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(cfg.d_model, self.n_kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(cfg.d_model, self.n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(self.n_heads * self.head_dim, cfg.d_model, bias=False)
        self.q_norm = RMSNorm(self.head_dim, cfg.norm_eps) if cfg.qk_norm == "rms" else None
        self.k_norm = RMSNorm(self.head_dim, cfg.norm_eps) if cfg.qk_norm == "rms" else None
        # model.smear_keys: per key head, the logit of the current token's share (init 0.5).
        self.smear_G = nn.Parameter(torch.zeros(self.n_kv_heads)) if cfg.smear_keys else None

    def forward(
        self, x_BTD: torch.Tensor, positions: Positions, kv: LayerKV | PagedLayerKV | None = None
    ) -> torch.Tensor:
        B, T, _ = x_BTD.shape
        H, G, C = self.n_heads, self.n_kv_heads, self.head_dim
        q_BHTC = self.wq(x_BTD).view(B, T, H, C).transpose(1, 2)
        k_BTD = self.wk(x_BTD)
        if self.smear_G is not None:
            k_BTD = self._smear(k_BTD, positions, kv)
        k_BGSC = k_BTD.view(B, T, G, C).transpose(1, 2)
        v_BGSC = self.wv(x_BTD).view(B, T, G, C).transpose(1, 2)
        q_BHTC, k_BGSC = self._position(q_BHTC, k_BGSC, positions)
        y_BHTC = self._mix(q_BHTC, k_BGSC, v_BGSC, positions, kv)
        return self.wo(y_BHTC.transpose(1, 2).reshape(B, T, H * C))

    def _smear(
        self, k_BTD: torch.Tensor, positions: Positions, kv: LayerKV | PagedLayerKV | None = None
    ) -> torch.Tensor:
        """Smeared keys: s * k_t + (1 - s) * k_{t-1} per key head, sealed at segment edges."""
        B, T, _ = k_BTD.shape
        G, C = self.n_kv_heads, self.head_dim
        pos_BT = positions.pos_BT
        prev_BTD = previous(k_BTD, positions.doc_ids_BT, kv, pos_BT, slot="last_k_BD")
        segment = self.kind.segment(self.attn_cfg)
        if segment is not None:
            at_BT = torch.arange(T, device=k_BTD.device).expand(B, T) if pos_BT is None else pos_BT
            # A segment's (chunk's) first key gets nothing from the segment before it.
            inside_BT = (at_BT % segment != 0) & (at_BT >= 0)
            prev_BTD = prev_BTD * inside_BT[..., None].to(prev_BTD.dtype)
        assert self.smear_G is not None
        s_GC = torch.sigmoid(self.smear_G)[:, None].expand(G, C).reshape(G * C)
        return s_GC * k_BTD + (1 - s_GC) * prev_BTD

    def _mix(
        self,
        q_BHTC: torch.Tensor,
        k_BGSC: torch.Tensor,
        v_BGSC: torch.Tensor,
        positions: Positions,
        kv: LayerKV | PagedLayerKV | None,
    ) -> torch.Tensor:
        """Each query's weighted sum of the values it may see, by this layer's kind."""
        if kv is None:
            return self.kind.attend(self.attn_cfg, q_BHTC, k_BGSC, v_BGSC, positions.doc_ids_BT)
        pos_BT = positions.pos_BT
        assert pos_BT is not None, "a cached step needs the positions of its tokens"
        # Prepend the cached keys/values: S = cached + T.
        k_BGSC, v_BGSC, pos_BS = kv.update(k_BGSC, v_BGSC, pos_BT)
        return self.kind.decode(self.attn_cfg, q_BHTC, k_BGSC, v_BGSC, pos_BT, pos_BS)

    def _position(
        self, q_BHTC: torch.Tensor, k_BGTC: torch.Tensor, positions: Positions
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """QK-norm, then RoPE (or NoPE and its temperature) on q and k at their positions."""
        if self.q_norm is not None and self.k_norm is not None:
            q_BHTC, k_BGTC = self.q_norm(q_BHTC), self.k_norm(k_BGTC)
        if self.use_rope:
            q_BHTC = apply_rope(q_BHTC, positions.cos_TC, positions.sin_TC)
            k_BGTC = apply_rope(k_BGTC, positions.cos_TC, positions.sin_TC)
            if self.l2_qk:
                q_BHTC, k_BGTC = l2_norm(q_BHTC, self.eps), l2_norm(k_BGTC, self.eps)
        elif self.temperature is not None:
            pos_BT = positions.pos_BT
            if pos_BT is None:
                pos_T = torch.arange(q_BHTC.shape[2], device=q_BHTC.device)
                scale = nope_temperature(self.temperature, pos_T)[:, None]  # (T, 1)
            else:
                scale = nope_temperature(self.temperature, pos_BT.clamp(min=0))[:, None, :, None]
            q_BHTC = (q_BHTC * scale).type_as(q_BHTC)
        return q_BHTC, k_BGTC
