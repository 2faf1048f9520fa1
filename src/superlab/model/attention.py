"""Causal grouped-query attention (Ainslie et al. 2023) with four kinds of visibility.

Every kind is causal; a query at position t may see key position s <= t and, by kind:

- ``full``: every earlier token.
- ``sliding`` (window w, Beltagy et al. 2020; Mistral): ``t - s < w``, itself and the
  w-1 previous tokens.
- ``chunked`` (chunk c, Llama 4's local layers): ``t // c == s // c``, only earlier tokens
  of its own fixed chunk, so nothing crosses a chunk boundary.

- ``sparse`` (MoBA / NSA selection): its own block, ``local_blocks`` before it and the
  ``top_k_blocks`` older blocks whose mean key best matches the query
  (``superlab.model.attention_sparse``).

With ``doc_ids_BT`` a query also sees only keys of its own document (packed sequences).
``attention_mask`` is the reference (a boolean T x T mask for SDPA); training runs full
attention on SDPA's ``is_causal`` path and the other kinds on block-wise kernels
(``attention_blockwise``, ``attention_sparse``) that never build T x T scores and are
tested equal to the reference, forward and backward. Short sequences (T <=
``MASKED_MAX_T``) run sliding and sparse attention through the explicit mask and one SDPA
call instead: the T x T scores are small there, and the block loops' per-block overhead
would dominate the step.

Per layer (``ModelConfig.attention_for`` / ``rope_for``, from ``model.layer_pattern``) the
kind may differ and q, k may get RoPE or none (NoPE). Optional QK-norm (``model.qk_norm``):
``rms``, a learned RMSNorm over the head dim on q and k before RoPE in every layer (Qwen3);
``l2``, a weightless ``x / rms(x)`` after RoPE on RoPE layers only (Llama 4,
``Llama4TextL2Norm``). NoPE layers may scale q by a position-dependent temperature
(``model.nope_temperature``, Llama 4's ``attn_temperature_tuning``).
Optional smeared keys (``model.smear_keys``, Olsson et al. 2022): each key head's key is
a learned mix of its token's and the previous token's (before QK-norm and RoPE), never
across a document edge or, in a chunked layer, a chunk edge.

With a ``LayerKV`` cache (incremental decoding, ``superlab.model.cache``) the T new
queries of row b sit at absolute positions ``pos_BT[b]`` (-1: padding) and attend to that
row's cached keys plus their own, masked by the same rule on absolute positions; empty
slots (padding, other rows' lengths) are never attended.

Legend: B batch, T query positions, S key positions, D model dim, H query heads,
G key/value heads, C head dim.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from superlab.config.recipe import AttentionConfig, ModelConfig, NopeTemperatureConfig
from superlab.model.attention_blockwise import chunked_attention, sliding_attention
from superlab.model.attention_sparse import select_blocks, sparse_attention, sparse_mask
from superlab.model.cache import LayerKV
from superlab.model.norm import RMSNorm
from superlab.model.rope import apply_rope
from superlab.model.token_shift import previous

# Up to this many positions, sliding and sparse attention use the T x T mask (see above).
MASKED_MAX_T = 256


def visible(cfg: AttentionConfig, pos_T: torch.Tensor, pos_S: torch.Tensor) -> torch.Tensor:
    """Boolean ``(..., T, S)``: may the query at position ``pos_T[t]`` see key ``pos_S[s]``.

    Leading dims broadcast: ``(B, T)`` and ``(B, S)`` positions give one mask per row.
    """
    t_T1, s_1S = pos_T[..., :, None], pos_S[..., None, :]
    mask_TS = s_1S <= t_T1
    if cfg.kind == "sliding":
        assert cfg.window is not None
        mask_TS = mask_TS & (t_T1 - s_1S < cfg.window)
    elif cfg.kind == "chunked":
        assert cfg.chunk_size is not None
        mask_TS = mask_TS & (t_T1 // cfg.chunk_size == s_1S // cfg.chunk_size)
    return mask_TS


def attention_mask(
    cfg: AttentionConfig,
    seq_len: int,
    doc_ids_BT: torch.Tensor | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Boolean visibility, True = may attend: ``(T, S)``, or ``(B, 1, T, S)`` with doc ids."""
    pos_T = torch.arange(seq_len, device=device)
    mask_TS = visible(cfg, pos_T, pos_T)
    if doc_ids_BT is None:
        return mask_TS
    same_doc_BTS = doc_ids_BT[:, :, None] == doc_ids_BT[:, None, :]
    return (mask_TS & same_doc_BTS)[:, None]


def l2_norm(x_C: torch.Tensor, eps: float) -> torch.Tensor:
    """Weightless ``x / rms(x)`` over the last dim, as Llama 4's ``Llama4TextL2Norm``."""
    x32_C = x_C.float()
    return (x32_C * torch.rsqrt(x32_C.pow(2).mean(-1, keepdim=True) + eps)).type_as(x_C)


def nope_temperature(cfg: NopeTemperatureConfig, pos_T: torch.Tensor) -> torch.Tensor:
    """Query scale per position: ``log(floor((pos + 1) / floor_scale) + 1) * attn_scale + 1``."""
    steps_T = torch.floor((pos_T.float() + 1.0) / cfg.floor_scale)
    return torch.log1p(steps_T) * cfg.attn_scale + 1.0


def _sdpa(
    q_BHTC: torch.Tensor, k_BGSC: torch.Tensor, v_BGSC: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """SDPA with each group of H/G query heads sharing one key/value head; None = causal."""
    H, G = q_BHTC.shape[1], k_BGSC.shape[1]
    k_BHSC = k_BGSC.repeat_interleave(H // G, dim=1)
    v_BHSC = v_BGSC.repeat_interleave(H // G, dim=1)
    return F.scaled_dot_product_attention(
        q_BHTC, k_BHSC, v_BHSC, attn_mask=mask, is_causal=mask is None
    )


class Attention(nn.Module):
    """Multi-head attention with G <= H shared key/value heads; RoPE (or NoPE) on q and k."""

    def __init__(self, cfg: ModelConfig, layer: int = 0) -> None:
        super().__init__()
        self.attn_cfg = cfg.attention_for(layer)
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
        self,
        x_BTD: torch.Tensor,
        cos_TC: torch.Tensor,
        sin_TC: torch.Tensor,
        doc_ids_BT: torch.Tensor | None = None,
        kv: LayerKV | None = None,
        pos_BT: torch.Tensor | None = None,
    ) -> torch.Tensor:
        B, T, _ = x_BTD.shape
        H, G, C = self.n_heads, self.n_kv_heads, self.head_dim
        q_BHTC = self.wq(x_BTD).view(B, T, H, C).transpose(1, 2)
        k_BTD = self.wk(x_BTD)
        if self.smear_G is not None:
            k_BTD = self._smear(k_BTD, doc_ids_BT, kv, pos_BT)
        k_BGSC = k_BTD.view(B, T, G, C).transpose(1, 2)
        v_BGSC = self.wv(x_BTD).view(B, T, G, C).transpose(1, 2)
        q_BHTC, k_BGSC = self._position(q_BHTC, k_BGSC, cos_TC, sin_TC, pos_BT)
        y_BHTC = self._mix(q_BHTC, k_BGSC, v_BGSC, doc_ids_BT, kv, pos_BT)
        return self.wo(y_BHTC.transpose(1, 2).reshape(B, T, H * C))

    def _smear(
        self,
        k_BTD: torch.Tensor,
        doc_ids_BT: torch.Tensor | None,
        kv: LayerKV | None,
        pos_BT: torch.Tensor | None,
    ) -> torch.Tensor:
        """Smeared keys: s * k_t + (1 - s) * k_{t-1} per key head, sealed at chunk edges."""
        B, T, _ = k_BTD.shape
        G, C = self.n_kv_heads, self.head_dim
        prev_BTD = previous(k_BTD, doc_ids_BT, kv, pos_BT, slot="last_k_BD")
        if self.attn_cfg.kind == "chunked":
            assert self.attn_cfg.chunk_size is not None
            at_BT = torch.arange(T, device=k_BTD.device).expand(B, T) if pos_BT is None else pos_BT
            # A chunk's first key gets nothing from the chunk before it.
            inside_BT = (at_BT % self.attn_cfg.chunk_size != 0) & (at_BT >= 0)
            prev_BTD = prev_BTD * inside_BT[..., None].to(prev_BTD.dtype)
        assert self.smear_G is not None
        s_GC = torch.sigmoid(self.smear_G)[:, None].expand(G, C).reshape(G * C)
        return s_GC * k_BTD + (1 - s_GC) * prev_BTD

    def _mix(
        self,
        q_BHTC: torch.Tensor,
        k_BGSC: torch.Tensor,
        v_BGSC: torch.Tensor,
        doc_ids_BT: torch.Tensor | None,
        kv: LayerKV | None,
        pos_BT: torch.Tensor | None,
    ) -> torch.Tensor:
        """Each query's weighted sum of the values it may see, by this layer's kind."""
        cfg, T, device = self.attn_cfg, q_BHTC.shape[2], q_BHTC.device
        mask = None  # None: plain causal, the is_causal fast path
        if kv is not None:  # prepend the cached keys/values: S = cached + T
            assert pos_BT is not None, "a cached step needs the positions of its tokens"
            k_BGSC, v_BGSC, pos_BS = kv.update(k_BGSC, v_BGSC, pos_BT)
            if cfg.kind == "sparse":
                return self._sparse_decode(q_BHTC, k_BGSC, v_BGSC, pos_BT, pos_BS)
            mask_BTS = visible(cfg, pos_BT, pos_BS) & (pos_BS >= 0)[:, None, :]
            # A padding query sees every slot: its output is never used, only kept finite.
            mask = (mask_BTS | (pos_BT < 0)[:, :, None])[:, None]
        elif cfg.kind != "full":  # block-wise kernels: never a T x T score matrix
            return self._efficient(q_BHTC, k_BGSC, v_BGSC, doc_ids_BT)
        elif doc_ids_BT is not None:
            mask = attention_mask(cfg, T, doc_ids_BT, device=device)
        return _sdpa(q_BHTC, k_BGSC, v_BGSC, mask)

    def _position(
        self,
        q_BHTC: torch.Tensor,
        k_BGTC: torch.Tensor,
        cos_TC: torch.Tensor,
        sin_TC: torch.Tensor,
        pos_BT: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """QK-norm, then RoPE (or NoPE and its temperature) on q and k at ``pos_BT`` (or 0..)."""
        if self.q_norm is not None and self.k_norm is not None:
            q_BHTC, k_BGTC = self.q_norm(q_BHTC), self.k_norm(k_BGTC)
        if self.use_rope:
            q_BHTC = apply_rope(q_BHTC, cos_TC, sin_TC)
            k_BGTC = apply_rope(k_BGTC, cos_TC, sin_TC)
            if self.l2_qk:
                q_BHTC, k_BGTC = l2_norm(q_BHTC, self.eps), l2_norm(k_BGTC, self.eps)
        elif self.temperature is not None:
            if pos_BT is None:
                pos_T = torch.arange(q_BHTC.shape[2], device=q_BHTC.device)
                scale = nope_temperature(self.temperature, pos_T)[:, None]  # (T, 1)
            else:
                scale = nope_temperature(self.temperature, pos_BT.clamp(min=0))[:, None, :, None]
            q_BHTC = (q_BHTC * scale).type_as(q_BHTC)
        return q_BHTC, k_BGTC

    def _efficient(
        self,
        q_BHTC: torch.Tensor,
        k_BGTC: torch.Tensor,
        v_BGTC: torch.Tensor,
        doc_ids_BT: torch.Tensor | None,
    ) -> torch.Tensor:
        """Sliding, chunked or sparse attention by the block-wise kernels (equal to the mask)."""
        cfg = self.attn_cfg
        T = q_BHTC.shape[2]
        if cfg.kind in ("sliding", "sparse") and T <= MASKED_MAX_T:
            return self._masked(q_BHTC, k_BGTC, v_BGTC, doc_ids_BT)
        if cfg.kind == "sliding":
            assert cfg.window is not None
            return sliding_attention(q_BHTC, k_BGTC, v_BGTC, cfg.window, doc_ids_BT)
        if cfg.kind == "chunked":
            assert cfg.chunk_size is not None
            return chunked_attention(q_BHTC, k_BGTC, v_BGTC, cfg.chunk_size, doc_ids_BT)
        return sparse_attention(
            q_BHTC, k_BGTC, v_BGTC, cfg.block_size, cfg.top_k_blocks, cfg.local_blocks, doc_ids_BT
        )

    def _masked(
        self,
        q_BHTC: torch.Tensor,
        k_BGTC: torch.Tensor,
        v_BGTC: torch.Tensor,
        doc_ids_BT: torch.Tensor | None,
    ) -> torch.Tensor:
        """The same visibility as an explicit mask and one SDPA call (short sequences)."""
        cfg, T = self.attn_cfg, q_BHTC.shape[2]
        if cfg.kind == "sparse":
            idx_BHTK = select_blocks(
                q_BHTC, k_BGTC, cfg.block_size, cfg.top_k_blocks, cfg.local_blocks, doc_ids_BT
            )
            mask = sparse_mask(idx_BHTK, cfg.block_size, cfg.local_blocks, doc_ids_BT)
        else:
            mask = attention_mask(cfg, T, doc_ids_BT, device=q_BHTC.device)
        return _sdpa(q_BHTC, k_BGTC, v_BGTC, mask)

    def _sparse_decode(
        self,
        q_BHTC: torch.Tensor,
        k_BGSC: torch.Tensor,
        v_BGSC: torch.Tensor,
        pos_BT: torch.Tensor,
        pos_BS: torch.Tensor,
    ) -> torch.Tensor:
        """The T newest queries against every cached key (the sparse cache keeps them all).

        A query's output depends only on itself and the keys up to it (its block choice uses
        complete older blocks), so padding the earlier query rows with zeros and keeping the
        last T rows gives exactly the full forward's outputs. Rows of different lengths (or
        with padding) run one at a time on their own keys, positions 0..n-1.
        """
        B, H, T, C = q_BHTC.shape
        S = k_BGSC.shape[2]
        if bool((pos_BS >= 0).all()) and bool((pos_BT >= 0).all()):
            q_BHSC = torch.cat([q_BHTC.new_zeros(B, H, S - T, C), q_BHTC], dim=2)
            return self._efficient(q_BHSC, k_BGSC, v_BGSC, None)[:, :, S - T :]
        out_BHTC = torch.zeros_like(q_BHTC)
        for b in range(B):
            keys_S, queries_T = pos_BS[b] >= 0, pos_BT[b] >= 0
            n, t = int(keys_S.sum()), int(queries_T.sum())
            if t == 0:
                continue
            q_1HnC = q_BHTC.new_zeros(1, H, n, C)
            q_1HnC[:, :, n - t :] = q_BHTC[b : b + 1, :, queries_T]
            k_1GnC, v_1GnC = k_BGSC[b : b + 1, :, keys_S], v_BGSC[b : b + 1, :, keys_S]
            y_1HnC = self._efficient(q_1HnC, k_1GnC, v_1GnC, None)
            out_BHTC[b, :, queries_T] = y_1HnC[0, :, n - t :]
        return out_BHTC
