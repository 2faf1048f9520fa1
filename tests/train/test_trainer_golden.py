"""Golden loss curve: the tiny recipe's first 20 training steps, pinned (as torchtitan does).

The input is tinyshakespeare (``../shared/data/text``), one document per blank-line-separated
speech, tokenized by the data path (``train_tokenizer`` at the recipe's vocabulary, then
``pack``), so the test is offline; it takes about 20 s on one CPU thread. The model and the training
settings are ``recipes/tiny.yaml``'s, on one CPU thread in fp32; only ``steps`` is cut to
20, which leaves the schedule unchanged (the 50 warmup steps outlast it, and warmup does
not depend on the total; the test checks that the logged learning rates are the 500-step
run's).

A change that alters training numerics (model, initialisation, optimizer, loader,
schedule, tokenizer) fails this test and must say so by regenerating the curve:

    SUPERLAB_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/train/test_trainer_golden.py

and committing ``tests/train/golden/tiny_loss.json`` with the change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from superlab.common import RunDir
from superlab.config.recipe import Recipe
from superlab.data.document import Document
from superlab.data.pack import pack
from superlab.data.split import HeldoutSplit
from superlab.data.tokenizer import train_tokenizer
from superlab.train.metrics import read_rows
from superlab.train.schedule import lr_for
from superlab.train.trainer import Trainer

GOLDEN = Path(__file__).parent / "golden" / "tiny_loss.json"
STEPS = 20
# Tolerance, from measurements on an AVX-512 Xeon (torch 2.13 CPU): two runs in one
# process, runs in separate processes, and 1 vs 2 threads agree bit for bit (max |diff|
# 0.0); forcing other kernels (ATEN_CPU_CAPABILITY=default or avx2, MKL and oneDNN
# limited to AVX2) moves a step's loss by at most 9.5e-7 (2 float32 ulps at a loss of
# 7-8). Real changes move it far more: beta2 0.95 -> 0.951 by 1.1e-3, lr x 1.01 by 9.7e-3.
# So 1e-5: ten times the rounding drift, a hundred times below the smallest real change.
ATOL = 1e-5


def tiny_recipe(repo: Path) -> Recipe:
    """``recipes/tiny.yaml`` cut to 20 steps, on one CPU thread in fp32, no side outputs."""
    recipe = Recipe.load(repo / "recipes" / "tiny.yaml")
    recipe.train = recipe.train.model_copy(
        update={
            "steps": STEPS,
            "device": "cpu",
            "precision": "fp32",
            "threads": 1,
            "log_every": 1,
            "eval_every": STEPS,
            "eval_batches": 1,  # held-out loss does not touch training
            "ckpt_every": STEPS,
            "tensorboard": False,
        }
    )
    return recipe


def shakespeare_run(text: str, recipe: Recipe, root: Path) -> RunDir:
    """A run directory holding tinyshakespeare's shards, as the data stage would write them."""
    run = RunDir(root)
    speeches = [s.strip() for s in text.split("\n\n") if s.strip()]
    docs = [Document(id=f"tinyshakespeare-{i:05d}", text=s) for i, s in enumerate(speeches)]
    tok = train_tokenizer((d.text for d in docs), recipe.tokenizer, root / "tokenizer.json")
    pack(docs, tok, HeldoutSplit(recipe.data.heldout_fraction), 1 << 20, run.shards)
    return run


def train_rows(repo: Path, text: str, root: Path) -> list[dict[str, Any]]:
    """The per-step metrics rows (loss, lr, ...) of the first 20 steps."""
    recipe = tiny_recipe(repo)
    run = shakespeare_run(text, recipe, root)
    threads = torch.get_num_threads()
    torch.set_num_threads(recipe.train.threads)
    try:
        Trainer(recipe, run).train()
    finally:
        torch.set_num_threads(threads)
    return [r for r in read_rows(run.metrics) if "loss" in r]


def test_tiny_recipe_matches_golden_loss_curve(repo: Path, shared_data: Path, tmp_path: Path):
    text = (shared_data / "text" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    rows = train_rows(repo, text, tmp_path)
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    full = Recipe.load(repo / "recipes" / "tiny.yaml").train
    assert [r["lr"] for r in rows] == [lr_for(full, s) for s in range(STEPS)]
    losses = [r["loss"] for r in rows]
    if os.environ.get("SUPERLAB_REGEN_GOLDEN") == "1":
        golden = {
            "what": "train loss per step, recipes/tiny.yaml on tinyshakespeare, 1 CPU thread, fp32",
            "regenerate": "SUPERLAB_REGEN_GOLDEN=1 pytest tests/train/test_trainer_golden.py",
            "torch": torch.__version__,
            "loss": losses,
        }
        GOLDEN.write_text(json.dumps(golden, indent=1) + "\n")
        pytest.skip(f"regenerated {GOLDEN}")
    expected = json.loads(GOLDEN.read_text())["loss"]
    torch.testing.assert_close(
        torch.tensor(losses, dtype=torch.float64),
        torch.tensor(expected, dtype=torch.float64),
        rtol=0.0,
        atol=ATOL,
        msg=lambda m: f"{m}\nloss curve moved; if intended, regenerate it (see module docstring)",
    )
