"""SFT: superlab's sft stage against TRL's ``SFTTrainer``, same model, rows, batch, steps.

As ``dpo_vs_trl.py``: one tiny random Llama-shaped model exported to a Hugging Face folder
(``trl_common.hf_folder``), superlab starting from the folder and TRL loading it. Rows are
conversational prompt/completion (a user question, the assistant's answer); the loss is
on the completion's assistant tokens only (TRL's completion-only loss; superlab's targets
for prompt/completion rows), the mean over the batch's target tokens. fp32 on CPU, the
same order (no shuffling), no packing on either side (packing moves RoPE positions, so
losses would differ by design), batch 8, constant lr 1e-3, AdamW (0.9, 0.999), no weight
decay, clipping at 1.0, 20 steps (``--quick``: 10).

- ``RESULT sft_loss_max_abs_diff_vs_trl``: the largest |ours - TRL| per-step loss,
  target <= 1e-4.
- ``RESULT sft_speedup_vs_trl``: tokens/s (real, non-pad tokens of every batch, the same
  count on both sides), ours over TRL's, target >= 1.5. Both time their training loop:
  ours ``Trainer.train()`` (its final checkpoint write included), TRL's
  ``trainer.train()``; tokenizing and model loading happen before on both sides.

    .venv/bin/python bench/sft_vs_trl.py --quick
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
from superlab.post.sft import SFTStage
from superlab.train.metrics import read_rows
from superlab.train.trainer import Trainer

BATCH, LR = 8, 1e-3


def rows_file(path: Path, n: int) -> list[dict]:
    rows = [
        {
            "prompt": [{"role": "user", "content": q}],
            "completion": [{"role": "assistant", "content": right}],
        }
        for q, right, _ in arithmetic_texts(n, seed=2)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def ours(root: Path, hf: Path, data: Path, steps: int) -> tuple[list[float], int, float]:
    recipe = Recipe.model_validate(
        {
            "name": "sft-bench",
            "model": {"max_seq_len": 64},
            "train": {"seq_len": 64},
            "sft": {
                "init": str(hf),
                "data": [str(data)],
                "heldout_every": 0,
                "packing": False,
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
    # Building the stage (reading and tokenizing rows, loading the model) is left out, as
    # TRL's constructor (its tokenization) is: both sides time their training loop.
    trainer = Trainer(recipe, run, ctx, post=InOrder(SFTStage(recipe, run, ctx.log)))
    summary, seconds = timed(trainer.train)
    losses = [r["loss"] for r in read_rows(run.metrics) if "loss" in r]
    return losses, summary["tokens"], seconds


def trl(hf: Path, rows: list[dict], steps: int) -> tuple[list[float], float]:
    require("trl", "bench/sft_vs_trl.py", extra="bench")
    from datasets import Dataset
    from torch.utils.data import SequentialSampler
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    losses: list[float] = []

    class Recorded(SFTTrainer):
        def _get_train_sampler(self, train_dataset=None):
            return SequentialSampler(train_dataset or self.train_dataset)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            if model.training:
                losses.append(float((out[0] if return_outputs else out).detach()))
            return out

    model = AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(hf)
    args = SFTConfig(
        output_dir=str(hf.parent / "trl"),
        per_device_train_batch_size=BATCH,
        packing=False,
        **fp32_cpu_args(LR, steps),
    )
    trainer = Recorded(
        model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok
    )
    _, seconds = timed(trainer.train)
    return losses, seconds


def main() -> None:
    loss_and_speed("sft", __doc__, rows_file, BATCH, ours, trl)


if __name__ == "__main__":
    main()
