"""Smeared keys (``model.smear_keys``): each key is a learned mix of its token's and the previous.

Decoding with a KV cache (also rows of different lengths, joining and leaving) is tested
equal to the full forward in test_cache.py and test_cache_batched.py.
"""

import pytest
import torch
from tests.model.reach import positions_reached

from superlab.config.recipe import AttentionConfig, ModelConfig, MoEConfig
from superlab.model.counts import flops_per_token, param_count
from superlab.model.hf import config_to_hf
from superlab.model.positions import Positions
from superlab.model.transformer import Transformer


def _cfg(smear: bool, **kw) -> ModelConfig:
    return ModelConfig(
        d_model=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        vocab_size=50,
        max_seq_len=32,
        smear_keys=smear,
        **kw,
    )


def _keys(model: Transformer, idx_BT: torch.Tensor, doc_ids_BT: torch.Tensor):
    """Layer 0's keys before and after smearing (both before RoPE), (B, T, G * C)."""
    attn, seen = model.blocks[0].attn, {}
    hook = attn.wk.register_forward_hook(lambda _m, _a, out: seen.setdefault("raw", out))
    smear = attn._smear

    def spy(*args):
        seen["smeared"] = smear(*args)
        return seen["smeared"]

    attn._smear = spy  # type: ignore[method-assign]
    model(idx_BT, doc_ids_BT=doc_ids_BT)
    hook.remove()
    return seen["raw"], seen["smeared"]


@torch.no_grad()
def test_each_key_mixes_its_token_and_the_previous_by_a_learned_share():
    torch.manual_seed(0)
    model = Transformer(_cfg(True)).eval()
    attn = model.blocks[0].attn
    assert torch.sigmoid(attn.smear_G).tolist() == [0.5, 0.5]  # equal shares at init
    attn.smear_G.copy_(torch.tensor([-2.0, 1.0]))
    idx_BT = torch.randint(0, 50, (2, 9))
    doc_ids_BT = torch.tensor([[0] * 4 + [1] * 5, [0] * 9])  # row 0: a document starts at 4
    raw, smeared = _keys(model, idx_BT, doc_ids_BT)
    s_D = torch.sigmoid(attn.smear_G).repeat_interleave(8)  # per key head, C = 8
    prev = torch.zeros_like(raw)
    prev[:, 1:] = raw[:, :-1]
    prev[0, 4] = 0  # nothing from the document before
    torch.testing.assert_close(smeared, s_D * raw + (1 - s_D) * prev)


@torch.no_grad()
def test_a_share_of_one_is_the_model_without_smearing():
    torch.manual_seed(0)
    smeared = Transformer(_cfg(True, moe=MoEConfig(num_experts=4, top_k=2))).eval()
    plain = Transformer(_cfg(False, moe=MoEConfig(num_experts=4, top_k=2))).eval()
    state = {k: v for k, v in smeared.state_dict().items() if not k.endswith("smear_G")}
    plain.load_state_dict(state)
    idx_BT = torch.randint(0, 50, (2, 12))
    assert not torch.allclose(smeared(idx_BT).logits_BTV, plain(idx_BT).logits_BTV)
    for block in smeared.blocks:
        block.attn.smear_G.fill_(40.0)  # sigmoid = 1 in fp32
    torch.testing.assert_close(smeared(idx_BT).logits_BTV, plain(idx_BT).logits_BTV)


@pytest.mark.parametrize("layers", [1, 2])
def test_chunked_attention_stays_sealed_at_chunk_edges(layers):
    """No key takes anything from the chunk before its own: what a position computes
    depends on its own chunk only, through any number of layers (token shift, by
    contrast, crosses the edge: test_token_shift.py)."""
    chunked = AttentionConfig(kind="chunked", chunk_size=4)
    torch.manual_seed(0)
    model = Transformer(_cfg(True, attention=chunked).model_copy(update={"n_layers": layers}))
    idx_BT = torch.randint(0, 50, (1, 12))
    # position 10 sits in chunk 2 (positions 8..11)
    assert positions_reached(model, idx_BT, at=10) == [8, 9, 10]
    assert model.blocks[0].attn.smear_G.grad is not None


def test_under_full_attention_a_key_carries_the_token_before_it():
    torch.manual_seed(0)
    model = Transformer(_cfg(True).model_copy(update={"n_layers": 1}))
    idx_BT = torch.randint(0, 50, (1, 8))
    emb_BTD = model.tok_emb(idx_BT).detach().requires_grad_(True)
    attn = model.blocks[0].attn
    k = attn._smear(attn.wk(emb_BTD), Positions(*model.rope(8)))
    k[0, 5].sum().backward()
    reached_T = emb_BTD.grad[0].abs().sum(dim=1) > 0
    assert reached_T.nonzero().flatten().tolist() == [4, 5]


def test_counts_include_one_share_per_key_head_and_no_flops():
    with_smear, without = _cfg(True), _cfg(False)
    assert param_count(with_smear)["total"] == Transformer(with_smear).num_params()
    assert param_count(with_smear)["total"] - param_count(without)["total"] == 2 * 2
    assert flops_per_token(with_smear, 32) == flops_per_token(without, 32)


def test_export_refuses_smeared_keys():
    with pytest.raises(ValueError, match="smear_keys is set: llama has no equivalent"):
        config_to_hf(_cfg(True), "llama", torch.float32)
