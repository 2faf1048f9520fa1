"""Token shift (``model.token_shift``): previous-token mixing before attention.

Decoding with a KV cache (also rows of different lengths, joining and leaving) is tested
equal to the full forward in test_cache.py and test_cache_batched.py.
"""

import pytest
import torch
from tests.model.reach import positions_reached

from superlab.config.recipe import AttentionConfig, ModelConfig, MoEConfig
from superlab.model.counts import flops_per_token, param_count
from superlab.model.hf import config_to_hf
from superlab.model.token_shift import previous
from superlab.model.transformer import Transformer


def _cfg(shift: bool, **kw) -> ModelConfig:
    return ModelConfig(
        d_model=32, n_layers=2, n_heads=4, vocab_size=50, max_seq_len=32, token_shift=shift, **kw
    )


def test_previous_is_the_token_before_within_its_document():
    x_BTD = torch.arange(1.0, 7.0).reshape(1, 6, 1)  # tokens 1..6
    assert previous(x_BTD).flatten().tolist() == [0, 1, 2, 3, 4, 5]
    doc_ids_BT = torch.tensor([[0, 0, 1, 1, 1, 2]])  # documents start at 0, 2 and 5
    got = previous(x_BTD, doc_ids_BT).flatten().tolist()
    assert got == [0, 1, 0, 3, 4, 0]


@torch.no_grad()
def test_each_attention_input_gets_the_gain_times_the_previous_input():
    torch.manual_seed(0)
    model = Transformer(_cfg(True)).eval()
    block = model.blocks[0]
    block.shift_D.normal_()
    seen = {}

    def keep(_module, args):
        seen["h"] = args[0]

    block.attn.register_forward_pre_hook(keep)
    idx_BT = torch.randint(0, 50, (2, 9))
    model(idx_BT)
    h_BTD = block.norm1(model.tok_emb(idx_BT))
    want = h_BTD.clone()
    want[:, 1:] += block.shift_D * h_BTD[:, :-1]
    torch.testing.assert_close(seen["h"], want)


@torch.no_grad()
def test_a_zero_gain_is_the_model_without_shift():
    torch.manual_seed(0)
    shifted = Transformer(_cfg(True, moe=MoEConfig(num_experts=4, top_k=2))).eval()
    plain = Transformer(_cfg(False, moe=MoEConfig(num_experts=4, top_k=2))).eval()
    state = {k: v for k, v in shifted.state_dict().items() if not k.endswith("shift_D")}
    plain.load_state_dict(state)
    idx_BT = torch.randint(0, 50, (2, 12))
    assert not torch.allclose(shifted(idx_BT).logits_BTV, plain(idx_BT).logits_BTV)
    for block in shifted.blocks:
        block.shift_D.zero_()
    torch.testing.assert_close(shifted(idx_BT).logits_BTV, plain(idx_BT).logits_BTV)


@pytest.mark.parametrize(("layers", "reach"), [(1, [7, 8, 9, 10]), (2, [3, 4, 5, 6, 7, 8, 9, 10])])
def test_under_chunked_attention_the_shift_reaches_back_through_the_chunk_edge(layers, reach):
    """Each layer's shift carries the previous chunk's last token into the next chunk.

    So with token shift a chunked model is no longer sealed at chunk edges: one position
    per layer crosses (a one-vector channel), and through it what that position attended
    to in an earlier layer.
    """
    chunked = AttentionConfig(kind="chunked", chunk_size=4)
    torch.manual_seed(0)
    model = Transformer(_cfg(True, attention=chunked).model_copy(update={"n_layers": layers}))
    idx_BT = torch.randint(0, 50, (1, 12))
    # position 10 sits in chunk 2 (positions 8..11)
    assert positions_reached(model, idx_BT, at=10) == reach
    assert model.blocks[0].shift_D.grad is not None


def test_counts_include_the_gain_and_no_flops():
    with_shift, without = _cfg(True), _cfg(False)
    assert param_count(with_shift)["total"] == Transformer(with_shift).num_params()
    assert param_count(with_shift)["total"] - param_count(without)["total"] == 2 * 32
    assert flops_per_token(with_shift, 32) == flops_per_token(without, 32)


def test_export_refuses_token_shift():
    with pytest.raises(ValueError, match="token_shift is set: llama has no equivalent"):
        config_to_hf(_cfg(True), "llama", torch.float32)
