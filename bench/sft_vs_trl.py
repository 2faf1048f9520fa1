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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from trl_common import OUR_LOOP, arithmetic_texts, loss_and_speed, run_ours, run_trl

from superlab.common.deps import require
from superlab.config.recipe import Recipe
from superlab.post.sft import SFTStage

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
    # Building the stage (reading and tokenizing rows, loading the model) is left out, as
    # TRL's constructor (its tokenization) is: both sides time their training loop.
    return run_ours(root, recipe, SFTStage, time_build=False)


def trl(hf: Path, rows: list[dict], steps: int) -> tuple[list[float], float]:
    require("trl", "bench/sft_vs_trl.py", extra="bench")
    from trl import SFTConfig, SFTTrainer

    return run_trl(
        SFTTrainer,
        SFTConfig,
        hf,
        rows,
        steps,
        LR,
        per_device_train_batch_size=BATCH,
        packing=False,
    )


def main() -> None:
    loss_and_speed("sft", __doc__, rows_file, BATCH, ours, trl)


if __name__ == "__main__":
    main()
