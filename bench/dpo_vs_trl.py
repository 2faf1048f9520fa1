"""DPO: superlab's pref stage against TRL's ``DPOTrainer``, same model, pairs, batch, steps.

One tiny random Llama-shaped model (``trl_common.hf_folder``) is exported to a Hugging Face
folder; superlab starts from that folder (``pref.init``) and TRL loads it with
``AutoModelForCausalLM``. Both train DPO (sigmoid, β = 0.1) in fp32 on CPU on the same
conversational pairs in the same order (no shuffling on either side), batch 8, constant
lr 1e-3, AdamW (0.9, 0.999), no weight decay, clipping at 1.0, for 20 steps (``--quick``:
10). TRL's per-step loss is taken from its ``compute_loss`` before any rounding.

- ``RESULT dpo_loss_max_abs_diff_vs_trl``: the largest |ours - TRL| per-step loss, target
  <= 1e-4.
- ``RESULT dpo_speedup_vs_trl``: tokens/s, ours over TRL's, target >= 1.5. Tokens are the
  real (non-pad) tokens of the chosen and rejected sequences of every batch, the same
  count on both sides; ours is timed from building the stage (tokenizing and the
  reference pass included) to the last step, TRL's ``trainer.train()`` with its reference
  forward at every step (its default); model loading is outside both.

    .venv/bin/python bench/dpo_vs_trl.py --quick
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from trl_common import OUR_LOOP, InOrder, arithmetic_texts, fp32_cpu_args, loss_and_speed, timed

from superlab.common import RunDir, StageContext
from superlab.common.deps import require
from superlab.config.recipe import Recipe
from superlab.post.pref import PrefStage
from superlab.train.metrics import read_rows
from superlab.train.trainer import Trainer

BATCH, LR, BETA = 8, 1e-3, 0.1


def pairs_file(path: Path, n: int) -> list[dict]:
    rows = [
        {
            "prompt": [{"role": "user", "content": q}],
            "chosen": [{"role": "assistant", "content": right}],
            "rejected": [{"role": "assistant", "content": wrong}],
        }
        for q, right, wrong in arithmetic_texts(n, seed=1)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def ours(root: Path, hf: Path, data: Path, steps: int) -> tuple[list[float], int, float]:
    recipe = Recipe.model_validate(
        {
            "name": "dpo-bench",
            "model": {"max_seq_len": 64},
            "train": {"seq_len": 64},
            "pref": {
                "init": str(hf),
                "data": [str(data)],
                "loss": "dpo",
                "beta": BETA,
                "heldout_every": 0,
                "train": {
                    "steps": steps,
                    "batch_size": BATCH,
                    "seq_len": 64,
                    "lr": LR,
                    **OUR_LOOP,
                },
            },
        }
    )
    run = RunDir(root / "ours")
    ctx = StageContext(recipe=recipe, run=run, log=logging.getLogger("bench"))
    summary, seconds = timed(
        lambda: Trainer(recipe, run, ctx, post=InOrder(PrefStage(recipe, run, ctx.log))).train()
    )
    losses = [r["loss"] for r in read_rows(run.metrics) if "loss" in r]
    return losses, summary["tokens"], seconds


def trl(hf: Path, rows: list[dict], steps: int) -> tuple[list[float], float]:
    require("trl", "bench/dpo_vs_trl.py", extra="bench")
    from datasets import Dataset
    from torch.utils.data import SequentialSampler
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    losses: list[float] = []

    class Recorded(DPOTrainer):
        def _get_train_sampler(self, train_dataset=None):
            return SequentialSampler(train_dataset or self.train_dataset)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            if model.training:
                losses.append(float((out[0] if return_outputs else out).detach()))
            return out

    model = AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(hf)
    args = DPOConfig(
        output_dir=str(hf.parent / "trl"),
        beta=BETA,
        loss_type=["sigmoid"],
        per_device_train_batch_size=BATCH,
        **fp32_cpu_args(LR, steps),
    )
    trainer = Recorded(
        model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok
    )
    _, seconds = timed(trainer.train)
    return losses, seconds


def main() -> None:
    loss_and_speed("dpo", __doc__, pairs_file, BATCH, ours, trl)


if __name__ == "__main__":
    main()
