import logging

import torch

from superlab.common import StageContext
from superlab.train.stage import cpu_threads, run

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
        "skipped_steps",
        "params_total",
        "params_active",
        "precision",
        "world_size",
    }  # no "mfu": a CPU has no peak unless train.peak_tflops gives one
    assert summary["steps"] == 3 and summary["tokens_per_s"] > 0
    assert summary["precision"] == "fp32" and summary["world_size"] == 1
    assert again["final_loss"] == summary["final_loss"] and again["steps"] == 3


def test_cpu_threads_are_shared_among_local_ranks(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert cpu_threads(0) == 16 and cpu_threads(3) == 3
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert cpu_threads(0) == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "32")
    assert cpu_threads(0) == 1
