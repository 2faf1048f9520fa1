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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from trl_common import OUR_LOOP, arithmetic_texts, loss_and_speed, run_ours, run_trl

from superlab.common.deps import require
from superlab.config.recipe import Recipe
from superlab.post.pref import PrefStage

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
    # Building the stage is timed: it holds the reference pass, TRL's per-step reference
    # forward is in its loop.
    return run_ours(root, recipe, PrefStage, time_build=True)


def trl(hf: Path, rows: list[dict], steps: int) -> tuple[list[float], float]:
    require("trl", "bench/dpo_vs_trl.py", extra="bench")
    from trl import DPOConfig, DPOTrainer

    return run_trl(
        DPOTrainer,
        DPOConfig,
        hf,
        rows,
        steps,
        LR,
        beta=BETA,
        loss_type=["sigmoid"],
        per_device_train_batch_size=BATCH,
    )


def main() -> None:
    loss_and_speed("dpo", __doc__, pairs_file, BATCH, ours, trl)


if __name__ == "__main__":
    main()
