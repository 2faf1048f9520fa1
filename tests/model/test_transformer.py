import math

import pytest
import torch

from superlab.config.recipe import AttentionConfig, ModelConfig, MoEConfig
from superlab.model import ModelOutput, Transformer


def tiny_cfg(**kw) -> ModelConfig:
    base = dict(
        d_model=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        vocab_size=64,
        max_seq_len=32,
        moe=MoEConfig(num_experts=4, top_k=2, every=2),
    )
    return ModelConfig(**{**base, **kw})


def test_forward_shapes_and_initial_loss():
    torch.manual_seed(0)
    model = Transformer(tiny_cfg())
    idx_BT = torch.randint(0, 64, (3, 16))
    out = model(idx_BT, torch.randint(0, 64, (3, 16)))
    assert isinstance(out, ModelOutput)
    assert out.logits_BTV.shape == (3, 16, 64)
    # Small init: logits near zero, so the loss starts near ln V.
    assert abs(out.loss.item() - math.log(64)) < 0.1
    assert len(out.moe_stats) == 1 and out.aux_loss.item() > 0
    assert model(idx_BT).loss is None


def test_dense_model_has_zero_aux_loss():
    out = Transformer(tiny_cfg(moe=None))(torch.randint(0, 64, (1, 8)))
    assert out.aux_loss.item() == 0.0 and out.moe_stats == []


def test_tied_and_untied_embeddings():
    tied, untied = Transformer(tiny_cfg()), Transformer(tiny_cfg(tie_embeddings=False))
    assert tied.lm_head is None
    assert untied.num_params() - tied.num_params() == 64 * 32


def test_residual_projections_get_scaled_init():
    torch.manual_seed(0)
    model = Transformer(tiny_cfg(d_model=256, n_heads=4, n_layers=8, moe=None))
    assert model.blocks[0].attn.wq.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.blocks[0].attn.wo.weight.std().item() == pytest.approx(0.005, rel=0.05)


def test_doc_ids_isolate_documents():
    torch.manual_seed(0)
    model = Transformer(tiny_cfg())
    a = torch.randint(0, 64, (1, 12))
    b = a.clone()
    b[0, :5] = torch.randint(0, 64, (5,))  # change document 0 only
    doc_ids_BT = torch.tensor([[0] * 5 + [1] * 7])
    la = model(a, doc_ids_BT=doc_ids_BT).logits_BTV
    lb = model(b, doc_ids_BT=doc_ids_BT).logits_BTV
    torch.testing.assert_close(la[0, 5:], lb[0, 5:])


@pytest.mark.parametrize(
    "attn",
    [AttentionConfig(), AttentionConfig(kind="sliding", window=8)],
    ids=["full", "sliding"],
)
def test_golden_overfits_one_batch(attn):
    torch.manual_seed(0)
    model = Transformer(tiny_cfg(attention=attn))
    batch_BT = torch.randint(0, 64, (4, 33))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(60):
        out = model(batch_BT[:, :-1], batch_BT[:, 1:])
        opt.zero_grad()
        (out.loss + out.aux_loss).backward()
        opt.step()
    # From ln 64 = 4.16 to memorised.
    assert out.loss.item() < 0.3
