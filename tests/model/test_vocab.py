from __future__ import annotations

import pytest
import torch

from superlab.config.recipe import ModelConfig
from superlab.model.transformer import Transformer
from superlab.model.vocab import resize_vocab


def tiny(tied: bool) -> Transformer:
    torch.manual_seed(0)
    cfg = ModelConfig(
        d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=32, vocab_size=50,
        tie_embeddings=tied,
    )  # fmt: skip
    return Transformer(cfg).eval()


@pytest.mark.parametrize("tied", [True, False])
def test_new_rows_are_the_mean_and_old_logits_are_unchanged(tied: bool) -> None:
    model = tiny(tied)
    idx = torch.randint(0, 50, (2, 12), generator=torch.Generator().manual_seed(1))
    before = model(idx).logits_BTV
    emb = model.tok_emb.weight.detach().clone()
    head = emb if tied else model.lm_head.weight.detach().clone()
    resize_vocab(model, 55)
    assert model.cfg.vocab_size == 55 and model.tok_emb.weight.shape == (55, 32)
    torch.testing.assert_close(model.tok_emb.weight[:50], emb, rtol=0, atol=0)
    torch.testing.assert_close(model.tok_emb.weight[50:], emb.mean(0).expand(5, -1))
    if tied:
        assert model.lm_head is None
    else:
        assert model.lm_head.weight.shape == (55, 32)
        torch.testing.assert_close(model.lm_head.weight[50:], head.mean(0).expand(5, -1))
    after = model(idx).logits_BTV
    torch.testing.assert_close(after[..., :50], before, rtol=0, atol=0)
    assert after.shape[-1] == 55
    # a new token is usable as input and its row trains
    out = model.train()(torch.tensor([[3, 52, 54]]), targets_BT=torch.tensor([[52, 54, 1]]))
    out.loss.backward()
    assert model.tok_emb.weight.grad[52].abs().sum() > 0


def test_resize_to_the_same_size_is_a_no_op_and_shrinking_is_refused() -> None:
    model = tiny(True)
    w = model.tok_emb.weight
    resize_vocab(model, 50)
    assert model.tok_emb.weight is w
    with pytest.raises(ValueError, match="new_vocab 49 < the model's 50"):
        resize_vocab(model, 49)
