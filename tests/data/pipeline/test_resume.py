"""A run killed with SIGKILL mid-shard resumes to exactly the outputs of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from superlab.data.dedup.sharded import DELAY_ENV as LSH_DELAY_ENV
from superlab.data.pipeline.shards import DELAY_ENV
from superlab.data.stage import run

from .corpus import STAGE, context, make_inputs, outputs, recipe


def test_sigkill_then_resume_is_byte_identical(tmp_path: Path) -> None:
    rec = recipe(make_inputs(tmp_path / "src"), workers=1)
    run(context(tmp_path / "ref", rec))

    killed = tmp_path / "killed"
    # Each shard sleeps after writing its outputs, before its marker: the kill lands
    # there, leaving a shard with outputs but no marker, which must be redone.
    env = {**os.environ, DELAY_ENV: "1.5"}
    proc = subprocess.Popen([sys.executable, "-c", STAGE, json.dumps(rec), str(killed)], env=env)
    filtered = killed / "data" / "work" / "filtered"
    deadline = time.monotonic() + 60
    while not list(filtered.glob("*.done")):
        assert proc.poll() is None, "the stage ended before any shard finished"
        assert time.monotonic() < deadline, "no shard finished within 60 s"
        time.sleep(0.05)
    time.sleep(0.5)  # into the next shard's delay: its outputs written, its marker not
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in filtered.glob("*.done"))
    assert done == ["00000.done"]
    assert (filtered / "00001.jsonl").exists()  # written, but not marked complete

    run(context(killed, rec))
    stats = json.loads((killed / "data" / "work" / "clean.done.json").read_text())
    assert stats["shards_reused"] == 1
    assert outputs(killed) == outputs(tmp_path / "ref")


def test_sigkill_in_sharded_dedup_then_resume_is_byte_identical(tmp_path: Path) -> None:
    src = make_inputs(tmp_path / "src")
    rec = recipe(src, workers=1, dedup={"sharded_above_docs": 0, "bucket_shards": 3})
    run(context(tmp_path / "ref", recipe(src, workers=1)))  # the single-process path

    killed = tmp_path / "killed"
    # Each sharded-dedup task sleeps between its outputs and its marker: the kill lands
    # in the edges phase, after one bucket's edges are marked done.
    env = {**os.environ, LSH_DELAY_ENV: "1.0"}
    proc = subprocess.Popen([sys.executable, "-c", STAGE, json.dumps(rec), str(killed)], env=env)
    lsh = killed / "data" / "work" / "minhash" / "lsh"
    deadline = time.monotonic() + 90
    while not (lsh / "edges" / "00000.done").exists():
        assert proc.poll() is None, "the stage ended before the edges phase"
        assert time.monotonic() < deadline, "no edges task finished within 90 s"
        time.sleep(0.05)
    time.sleep(0.5)  # into the next task's delay: its outputs written, its marker not
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (lsh / "buckets.done").exists() and not (lsh / "edges.done").exists()
    assert sorted(p.name for p in (lsh / "edges").glob("*.done")) == ["00000.done"]

    run(context(killed, rec))
    assert outputs(killed) == outputs(tmp_path / "ref")
    assert not lsh.exists()
