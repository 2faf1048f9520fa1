import json
import math

import numpy as np
import pytest
import torch

from superlab.common import RunDir, StageContext
from superlab.config import Recipe
from superlab.config.recipe import ModelConfig
from superlab.eval import stage
from superlab.eval.perplexity import heldout_stream, perplexity
from superlab.model import Transformer, save_model

V = 64
CFG = ModelConfig(d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=V, max_seq_len=32)


def model() -> Transformer:
    torch.manual_seed(0)
    return Transformer(CFG)


def test_uniform_model_has_perplexity_v_and_exact_bits_per_byte():
    m = Transformer(CFG)
    with torch.no_grad():  # all weights zero: every logit 0, a uniform distribution over V
        for p in m.parameters():
            p.zero_()
    tokens = np.random.default_rng(0).integers(0, V, 16 * 8 + 1)
    r = perplexity(m, tokens, text_bytes=1000, seq_len=16, batch_size=4)
    assert r["loss"] == pytest.approx(math.log(V), rel=1e-5)
    assert r["perplexity"] == pytest.approx(V, rel=1e-4)
    assert r["tokens_scored"] == 128 and not r["bpb_estimated"]
    assert r["bits_per_byte"] == pytest.approx(128 * math.log2(V) / 1000, rel=1e-5)


def test_matches_the_models_own_loss_and_prorates_when_capped():
    m = model()
    tokens = np.random.default_rng(1).integers(0, V, 16 * 8 + 1)
    r = perplexity(m, tokens, text_bytes=1000, seq_len=16, batch_size=8)
    x = torch.from_numpy(tokens[:-1].reshape(8, 16))
    y = torch.from_numpy(tokens[1:].reshape(8, 16))
    with torch.no_grad():
        assert r["loss"] == pytest.approx(float(m(x, y).loss), rel=1e-5)
    capped = perplexity(m, tokens, text_bytes=1000, seq_len=16, batch_size=2, max_batches=1)
    assert capped["tokens_scored"] == 32 and capped["bpb_estimated"]


def test_too_short_split_is_a_clear_error():
    with pytest.raises(ValueError, match="fewer than seq_len"):
        perplexity(model(), np.arange(5), 10, seq_len=16)


def test_eval_stage_writes_results_with_checkpoint_identity(tmp_path):
    run = RunDir(tmp_path)
    shards = run.shards
    shards.mkdir(parents=True)
    tokens = np.random.default_rng(2).integers(0, V, 500).astype("<u2")
    tokens.tofile(shards / "heldout-00000.bin")
    entry = {
        "file": "heldout-00000.bin",
        "docs_file": "x",
        "tokens": 500,
        "docs": 1,
        "text_bytes": 1500,
    }
    index = {
        "dtype": "uint16",
        "vocab_size": V,
        "eos_id": 0,
        "splits": {"train": [], "heldout": [entry]},
    }
    (shards / "index.json").write_text(json.dumps(index))
    ckpt = run.ckpt / "step-7"
    save_model(model(), ckpt)
    (ckpt / "state.json").write_text(json.dumps({"step": 7}))
    stream, nbytes = heldout_stream(shards)
    assert nbytes == 1500 and stream.tolist() == tokens.tolist()

    recipe = Recipe.model_validate(
        {"name": "t", "model": {**CFG.model_dump(), "vocab_size": None}, "train": {"seq_len": 16}}
    )
    summary = stage.run(StageContext(recipe=recipe, run=run))
    result = json.loads(run.eval.read_text())
    assert result["step"] == 7 and summary["step"] == 7
    assert len(result["weights_sha256"]) == 64
    assert result["heldout"]["tokens_scored"] == 499  # 31 whole windows and the 3-target tail
    assert not result["heldout"]["bpb_estimated"]
    assert summary["loss"] == result["heldout"]["loss"]
