"""``last_only``: the logits of each row's last (valid) position, nothing else changed."""

import pytest
import torch

from superlab.config.recipe import ModelConfig
from superlab.model.transformer import Transformer


def _model() -> Transformer:
    torch.manual_seed(0)
    cfg = ModelConfig(
        d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=50, max_seq_len=32
    )
    return Transformer(cfg).eval()


def test_last_only_equals_the_full_logits_at_the_last_position() -> None:
    model = _model()
    idx_BT = torch.randint(0, 50, (3, 9))
    with torch.no_grad():
        full_BTV = model(idx_BT).logits_BTV
        last_B1V = model(idx_BT, last_only=True).logits_BTV
    assert last_B1V.shape == (3, 1, 50)
    torch.testing.assert_close(last_B1V[:, 0], full_BTV[:, -1])


def test_last_only_takes_each_rows_last_valid_position_in_a_cached_step() -> None:
    model = _model()
    idx_BT = torch.randint(0, 50, (2, 7))
    valid_BT = torch.ones(2, 7, dtype=torch.bool)
    valid_BT[1, 4:] = False  # row 1 holds 4 tokens, right-padded
    with torch.no_grad():
        full = model(idx_BT, cache=model.new_cache(), valid_BT=valid_BT).logits_BTV
        last = model(idx_BT, cache=model.new_cache(), valid_BT=valid_BT, last_only=True)
    torch.testing.assert_close(last.logits_BTV[0, 0], full[0, 6])
    torch.testing.assert_close(last.logits_BTV[1, 0], full[1, 3])
    with pytest.raises(ValueError, match="last_only"):
        model(idx_BT, targets_BT=idx_BT, last_only=True)
