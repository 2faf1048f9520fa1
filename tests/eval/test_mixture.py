"""Per-source held-out evaluation and the planned vs realised shares of a mixture run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from superlab.config import Recipe
from superlab.config.recipe import ModelConfig
from superlab.eval.mixture import heldout_by_source, mixture_usage, source_names, source_stream
from superlab.eval.perplexity import perplexity
from superlab.model import Transformer

V = 64
CFG = ModelConfig(d_model=32, n_layers=1, n_heads=4, n_kv_heads=2, vocab_size=V, max_seq_len=32)


def shards(tmp_path, sizes: dict[str, list[int]]):
    """Held-out shards tagged by source; source a's tokens are all 5, b's random."""
    rng = np.random.default_rng(0)
    root = tmp_path / "shards"
    entries, streams = [], {}
    for name, parts in sizes.items():
        (root / name).mkdir(parents=True)
        got = []
        for k, n in enumerate(parts):
            tokens = (np.full(n, 5) if name == "a" else rng.integers(0, V, n)).astype("<u2")
            tokens.tofile(root / name / f"heldout-{k}.bin")
            entries.append({"file": f"{name}/heldout-{k}.bin", "tokens": n, "text_bytes": 4 * n,
                            "docs": 1, "source": name})  # fmt: skip
            got.append(tokens)
        streams[name] = np.concatenate(got).astype(np.int64)
    index = {"dtype": "uint16", "vocab_size": V, "eos_id": 0, "sources": list(sizes),
             "splits": {"train": [], "heldout": entries}}  # fmt: skip
    (root / "index.json").write_text(json.dumps(index))
    return root, streams


def test_each_source_is_scored_on_its_own_heldout_tokens(tmp_path):
    root, streams = shards(tmp_path, {"a": [40, 25], "b": [70], "c": [1]})
    assert source_names(root) == ["a", "b", "c"]
    tokens, text_bytes = source_stream(root, "a")
    assert np.array_equal(tokens, streams["a"]) and text_bytes == 4 * 65
    torch.manual_seed(0)
    model = Transformer(CFG)
    got = heldout_by_source(model, root, seq_len=16, max_batches=None)
    assert got["c"] is None  # one token: nothing to predict
    for name in ("a", "b"):
        want = perplexity(model, streams[name], 4 * len(streams[name]), 16, 8, None)
        assert got[name] == want
        assert got[name]["tokens_scored"] == len(streams[name]) - 1
    assert got["a"]["loss"] != got["b"]["loss"]


def test_planned_and_realised_shares_and_epochs_from_the_checkpoint_state():
    recipe = Recipe.model_validate({"name": "m", "train": {"seq_len": 8}, "data": {"sources": [
        {"name": "a", "weight": 3.0}, {"name": "b", "weight": 1.0, "max_epochs": 2},
        {"name": "z", "weight": 0.0}]}})  # fmt: skip
    state = {"loader": {"draws": 40, "seq_len": 8, "sources": {
        "a": {"epoch": 1, "index": 10, "windows": 20},
        "b": {"epoch": 0, "index": 10, "windows": 40},
    }}}  # fmt: skip
    got = mixture_usage(recipe, state)
    assert got["a"] == {"weight": 3.0, "planned_share": 0.75, "realised_share": 0.75,
                        "windows": 30, "tokens": 240, "epochs": 1.5, "max_epochs": 4.0}  # fmt: skip
    assert got["b"]["realised_share"] == 0.25 and got["b"]["epochs"] == 0.25
    assert got["z"]["windows"] == 0 and got["z"]["planned_share"] == 0.0
    assert math.isclose(sum(g["realised_share"] for g in got.values()), 1.0)
    assert pytest.approx(1.0) == sum(g["planned_share"] for g in got.values())
