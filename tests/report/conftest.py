"""A fake run directory holding every file the report reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from superlab.common import RunDir


@pytest.fixture
def full_run(tmp_path: Path) -> RunDir:
    """A run directory with every file the report reads."""
    run = RunDir(tmp_path / "run")
    run.data.mkdir(parents=True)
    stats = {
        # The data stage's format: {sub-step name: {docs_in, docs_out, seconds, ...}}.
        "steps": {
            "clean": {
                "docs_in": 1000,
                "docs_out": 940,
                "seconds": 1.5,
                "bytes_in": 2_500_000,
                "bytes_out": 2_000_000,
            },
            "dedup": {"docs_in": 940, "docs_out": 812, "seconds": 2.25},
        },
        "removed": {"gopher:min_words": 100, "dedup:exact": 88},
        "lines_removed": {"c4:javascript": 17},
        "tokens": {"train": 123456, "heldout": 2345},
    }
    run.data_stats.write_text(json.dumps(stats))
    rows = []
    for step in range(0, 101, 10):
        row = {
            "step": step,
            "loss": 8.0 - step / 25,
            "lr": 3e-3 * min(1, (step + 1) / 20),
            "grad_norm": 1.0 + step / 100,
            "tokens_per_s": 5000.0,
            # The trainer's format: one dict per MoE layer.
            "moe": [
                {
                    "layer": 1,
                    "tokens_per_expert": [10, 20, 30, 40],
                    "load_cv": 0.5 - step / 1000,
                    "router_entropy": 1.2,
                },
                {"layer": 3, "load_cv": 0.4},
            ],
        }
        if step % 50 == 0:
            row["heldout_loss"] = 7.5 - step / 30
        rows.append(row)
    lines = [json.dumps(r) for r in rows] + ['{"step": 110, "loss": 3.']  # half-written
    run.metrics.write_text("\n".join(lines))
    run.eval.write_text(json.dumps({"heldout": {"loss": 3.9876, "perplexity": 53.91}, "bpb": 1.23}))
    samples = [{"prompt": "The history of", "completion": ' <b>Rome</b> & its "empire"'}]
    run.samples.write_text(json.dumps(samples))
    plan = {
        "inputs": {
            "params": {"total": 1_328_256, "active": 1_328_256},
            "accelerator": {"source": "NVIDIA H100 Tensor Core GPU datasheet", "date": "2023"},
        },
        "this_run": {"tokens": 819200.0, "gpu_hours": 5.59e-06, "tokens_source": "steps x"},
        "at_scale": {
            "tokens": 26565120.0,
            "gpu_hours": 58982.14,
            "cost_usd": 117964.27,
            "accelerator": "h100-sxm",
            "num_gpus": 1024,
            "mfu": 0.4,
            "energy_mwh": None,
        },
    }
    run.plan.write_text(json.dumps(plan))
    return run
