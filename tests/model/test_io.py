import json

import torch

from superlab.config.recipe import ModelConfig, MoEConfig
from superlab.model import Transformer, load_model, save_model


def test_round_trip_gives_identical_logits(tmp_path):
    for tied in (True, False):
        cfg = ModelConfig(
            d_model=32,
            n_layers=2,
            n_heads=4,
            n_kv_heads=2,
            vocab_size=64,
            max_seq_len=32,
            tie_embeddings=tied,
            moe=MoEConfig(num_experts=4, top_k=2, num_shared_experts=1, every=1),
        )
        torch.manual_seed(0)
        model = Transformer(cfg)
        save_model(model, tmp_path / str(tied))
        assert json.loads((tmp_path / str(tied) / "model_config.json").read_text()) == (
            cfg.model_dump(mode="json")
        )
        loaded = load_model(tmp_path / str(tied))
        idx_BT = torch.randint(0, 64, (2, 16))
        assert torch.equal(model(idx_BT).logits_BTV, loaded(idx_BT).logits_BTV)
