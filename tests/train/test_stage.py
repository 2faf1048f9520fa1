import logging

import torch

from superlab.common import StageContext
from superlab.train.stage import run

from .conftest import tiny_recipe


def test_stage_trains_and_is_a_no_op_when_done(run_dir):
    ctx = StageContext(recipe=tiny_recipe(steps=3, threads=1), run=run_dir, log=logging.getLogger())
    threads = torch.get_num_threads()
    try:
        summary = run(ctx)
        again = run(ctx)  # resumes from step-3: nothing left to do, same summary
    finally:
        torch.set_num_threads(threads)
    assert set(summary) == {
        "steps",
        "final_loss",
        "heldout_loss",
        "tokens",
        "tokens_per_s",
        "params_total",
        "params_active",
    }
    assert summary["steps"] == 3 and summary["tokens_per_s"] > 0
    assert again["final_loss"] == summary["final_loss"] and again["steps"] == 3
