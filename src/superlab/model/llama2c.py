"""Import a llama2.c checkpoint (Karpathy's legacy ``.bin`` format) and its tokenizer.

Model file: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
seq_len; a negative vocab_size means an unshared classifier), then float32 arrays in
PyTorch (out, in) layout: token embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2,
w3 (each stacked over layers), rms_final, the freq_cis tables (unused: we compute
RoPE), and the classifier when unshared.

RoPE: llama2.c rotates adjacent pairs (2i, 2i+1); ``superlab.model.rope`` rotates
(i, i + C/2). We permute the rows of wq and wk per head on import (as Hugging Face's
``convert_llama_weights_to_hf.py`` does), which leaves every q.k product unchanged.

Tokenizer file (``tok512.bin``): int32 max_token_length, then per token float32 score,
int32 byte length, bytes. BOS = 1, EOS = 2.

Legend: O output rows (heads x head dim), V vocabulary, D model dim, F hidden dim,
L layers, H heads, C head dim.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch

from superlab.config.recipe import ModelConfig
from superlab.model.transformer import Transformer

BOS, EOS = 1, 2
_HEADER = struct.Struct("<7i")


def interleaved_to_half(w_OD: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Reorder each head's output rows from pairs (2i, 2i+1) to the halves (i, i + C/2)."""
    out, D = w_OD.shape
    return w_OD.view(n_heads, out // n_heads // 2, 2, D).transpose(1, 2).reshape(out, D)


def load_llama2c(
    model_path: str | Path, tokenizer_path: str | Path | None = None
) -> tuple[Transformer, Llama2cTokenizer | None]:
    """Build our ``Transformer`` from a llama2.c ``.bin``; read the tokenizer when given."""
    path = Path(model_path)
    data = path.read_bytes()
    if len(data) < _HEADER.size:
        raise ValueError(f"{path}: {len(data)} bytes, shorter than the 28-byte llama2.c header")
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = _HEADER.unpack_from(data)
    if min(dim, hidden, n_layers, n_heads, n_kv_heads, abs(vocab), seq_len) <= 0:
        raise ValueError(f"{path}: not a llama2.c checkpoint (header {_HEADER.unpack_from(data)})")
    shared, vocab = vocab > 0, abs(vocab)
    cfg = ModelConfig(
        d_model=dim,
        ffn_hidden=hidden,
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=n_kv_heads,
        vocab_size=vocab,
        max_seq_len=seq_len,
        rope_theta=10_000.0,
        norm_eps=1e-5,
        tie_embeddings=shared,
    )
    C, L = dim // n_heads, n_layers
    kv_dim = n_kv_heads * C
    shapes = {
        "tok_emb": (vocab, dim),
        "rms_att": (L, dim),
        "wq": (L, dim, dim),
        "wk": (L, kv_dim, dim),
        "wv": (L, kv_dim, dim),
        "wo": (L, dim, dim),
        "rms_ffn": (L, dim),
        "w1": (L, hidden, dim),
        "w2": (L, dim, hidden),
        "w3": (L, hidden, dim),
        "rms_final": (dim,),
        "freq_cis": (2, seq_len, C // 2),
    }
    if not shared:
        shapes["classifier"] = (vocab, dim)
    expected = _HEADER.size + 4 * sum(int(np.prod(s)) for s in shapes.values())
    if len(data) != expected:
        raise ValueError(
            f"{path}: {len(data)} bytes, but its header {_HEADER.unpack_from(data)} "
            f"implies {expected} (truncated, or not the legacy llama2.c format)"
        )
    flat = np.frombuffer(data, dtype="<f4", offset=_HEADER.size)
    w: dict[str, torch.Tensor] = {}
    offset = 0
    for name, shape in shapes.items():
        n = int(np.prod(shape))
        w[name] = torch.from_numpy(flat[offset : offset + n].copy()).view(shape)
        offset += n

    state = {"tok_emb.weight": w["tok_emb"], "norm.weight": w["rms_final"]}
    if not shared:
        state["lm_head.weight"] = w["classifier"]
    for i in range(L):
        p = f"blocks.{i}."
        state[p + "norm1.weight"] = w["rms_att"][i]
        state[p + "attn.wq.weight"] = interleaved_to_half(w["wq"][i], n_heads)
        state[p + "attn.wk.weight"] = interleaved_to_half(w["wk"][i], n_kv_heads)
        state[p + "attn.wv.weight"] = w["wv"][i]
        state[p + "attn.wo.weight"] = w["wo"][i]
        state[p + "norm2.weight"] = w["rms_ffn"][i]
        for name in ("w1", "w2", "w3"):
            state[p + f"mlp.{name}.weight"] = w[name][i]
    model = Transformer(cfg)
    model.load_state_dict(state, strict=True)
    tokenizer = None if tokenizer_path is None else Llama2cTokenizer(tokenizer_path)
    return model, tokenizer


class Llama2cTokenizer:
    """llama2.c's vocabulary file: pieces and scores; ``decode`` as ``run.c`` prints."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        data = path.read_bytes()
        if len(data) < 4:
            raise ValueError(f"{path}: {len(data)} bytes, too short for a llama2.c tokenizer")
        (self.max_token_length,) = struct.unpack_from("<i", data)
        self.pieces: list[bytes] = []
        self.scores: list[float] = []
        offset = 4
        while offset < len(data):
            if offset + 8 > len(data):
                raise ValueError(f"{path}: truncated at byte {offset} (token {len(self.pieces)})")
            score, n = struct.unpack_from("<fi", data, offset)
            offset += 8
            if n < 0 or n > self.max_token_length or offset + n > len(data):
                raise ValueError(
                    f"{path}: token {len(self.pieces)} claims {n} bytes at byte {offset}"
                    f" (max_token_length {self.max_token_length}, file {len(data)} bytes)"
                )
            self.pieces.append(data[offset : offset + n])
            self.scores.append(score)
            offset += n

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)

    def decode(self, ids: list[int]) -> str:
        """Concatenate pieces: BOS prints nothing and strips the next piece's leading space."""
        out, prev = bytearray(), None
        for i in ids:
            piece = self.pieces[i]
            if i == BOS:
                piece = b""
            elif prev == BOS and piece.startswith(b" "):
                piece = piece[1:]  # SentencePiece drops the space of the text's first word
            elif len(piece) == 6 and piece.startswith(b"<0x") and piece.endswith(b">"):
                piece = bytes([int(piece[3:5], 16)])  # raw byte fallback token
            out += piece
            prev = i
        return out.decode("utf-8", errors="replace")
