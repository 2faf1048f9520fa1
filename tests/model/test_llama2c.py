"""The real stories260K llama2.c model, imported into our Transformer: golden greedy text."""

import hashlib
import struct
from pathlib import Path

import pytest
import torch

from superlab.model.llama2c import BOS, Llama2cTokenizer, interleaved_to_half, load_llama2c
from superlab.model.rope import RotaryEmbedding, apply_rope

SHA256 = {  # from ../shared/data/README.md
    "stories260K.bin": "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696",
    "tok512.bin": "037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312",
}
GOLDEN = (
    "Once upon a time, there was a little girl named Lily. She loved to play outside in "
    "the park. One day, she saw a big, red ball."
)


def _stories(shared_data: Path) -> Path:
    d = shared_data / "models" / "stories260K"
    for name, digest in SHA256.items():
        assert hashlib.sha256((d / name).read_bytes()).hexdigest() == digest, name
    return d


def _greedy(model: torch.nn.Module, steps: int) -> tuple[list[int], torch.Tensor]:
    """Greedy ids from BOS with the KV cache, and the logits of each step ``(steps, V)``."""
    cache, ids, step_logits = model.new_cache(), [BOS], []
    for _ in range(steps):
        logits_V = model(torch.tensor([ids[-1:]]), cache=cache).logits_BTV[0, -1]
        step_logits.append(logits_V)
        ids.append(int(logits_V.argmax()))
    return ids, torch.stack(step_logits)


@torch.no_grad()
def test_greedy_from_bos_gives_the_reference_story(shared_data):
    d = _stories(shared_data)
    model, tok = load_llama2c(d / "stories260K.bin", d / "tok512.bin")
    assert tok is not None and tok.vocab_size == model.cfg.vocab_size == 512
    cfg = model.cfg
    assert (cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.kv_heads, cfg.hidden) == (64, 5, 8, 4, 172)
    ids, cached_TV = _greedy(model.eval(), 200)
    assert tok.decode(ids).startswith(GOLDEN)
    # KV-cache decoding equals re-running the whole context. float32 (|logits| <= 22):
    # the two paths sum in different orders, measured max gap 1.9e-5; float64: 1.4e-14.
    full_TV = model(torch.tensor([ids[:-1]])).logits_BTV[0]
    torch.testing.assert_close(cached_TV, full_TV, atol=1e-4, rtol=0)
    model.double()
    ids64, cached64_TV = _greedy(model, 200)
    assert ids64 == ids
    full64_TV = model(torch.tensor([ids[:-1]])).logits_BTV[0]
    torch.testing.assert_close(cached64_TV, full64_TV, atol=1e-10, rtol=0)


def test_rope_permutation_matches_interleaved_rotation():
    torch.manual_seed(0)
    H, C, T, D = 2, 8, 5, 16
    w_OD, x_TD = torch.randn(H * C, D), torch.randn(T, D)
    # llama2.c: rotate pairs (2i, 2i+1) by angle pos * theta^(-2i/C).
    q_THc2 = (x_TD @ w_OD.t()).view(T, H, C // 2, 2)
    angle_Tc = torch.arange(T)[:, None] * 10_000.0 ** (-torch.arange(0, C, 2) / C)
    cos, sin = angle_Tc.cos()[:, None], angle_Tc.sin()[:, None]
    a, b = q_THc2[..., 0], q_THc2[..., 1]
    ref_THc2 = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1)
    # Ours: half-split rotation of the permuted projection, then undo the permutation.
    ours_HTC = (x_TD @ interleaved_to_half(w_OD, H).t()).view(T, H, C).transpose(0, 1)
    ours_HTC = apply_rope(ours_HTC, *RotaryEmbedding(C, T)(T))
    ours_THc2 = ours_HTC.transpose(0, 1).reshape(T, H, 2, C // 2).transpose(-1, -2)
    torch.testing.assert_close(ours_THc2, ref_THc2, atol=1e-5, rtol=0)


def test_short_and_bad_files_name_the_file(tmp_path):
    short = tmp_path / "short.bin"
    short.write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match=r"short\.bin"):
        load_llama2c(short)
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(struct.pack("<7i", 8, 16, 1, 2, 2, 32, 8) + b"\x00" * 100)
    with pytest.raises(ValueError, match=r"truncated\.bin.*implies"):
        load_llama2c(truncated)
    tok = tmp_path / "tok.bin"
    tok.write_bytes(struct.pack("<ifi", 4, 0.0, 3) + b"ab")
    with pytest.raises(ValueError, match=r"tok\.bin"):
        Llama2cTokenizer(tok)


def test_decode_strips_space_after_bos_and_reads_byte_tokens(tmp_path):
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n", b"<0x41>", b" Once", b" upon"]
    path = tmp_path / "tok.bin"
    path.write_bytes(
        struct.pack("<i", 6) + b"".join(struct.pack("<fi", 0.0, len(p)) + p for p in pieces)
    )
    tok = Llama2cTokenizer(path)
    assert tok.decode([BOS, 4, 5, 3]) == "Once uponA"
    assert tok.decode([4, 5]) == " Once upon"
