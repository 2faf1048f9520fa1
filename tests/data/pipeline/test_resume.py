"""A run killed with SIGKILL mid-shard resumes to exactly the outputs of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
