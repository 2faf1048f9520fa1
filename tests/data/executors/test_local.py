"""The local executor's workers, fork server and resource tracker die with the main process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from superlab.data.pipeline.shards import DELAY_ENV

from ..pipeline.corpus import STAGE, make_inputs, recipe

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def _processes() -> dict[int, tuple[str, int, str]]:
    """Every process: pid -> (state, parent pid, start time), from /proc/<pid>/stat."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        out[int(entry)] = (fields[0], int(fields[1]), fields[19])
    return out


def _descendants(root: int) -> dict[int, str]:
    """Every process below ``root``: pid -> start time (to tell a reused pid apart)."""
    procs, found = _processes(), {root}
    grew = True
    while grew:
        grew = False
        for pid, (_, ppid, _) in procs.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grew = True
    return {pid: procs[pid][2] for pid in found - {root}}


def _alive(started: dict[int, str]) -> list[int]:
    """Those of ``started`` still running (zombies waiting for a reaper count as gone)."""
    procs = _processes()
    return [p for p, t in started.items() if p in procs and procs[p][2] == t and procs[p][0] != "Z"]


def test_sigkill_of_main_process_leaves_no_pool_process(tmp_path: Path) -> None:
    rec = recipe(make_inputs(tmp_path / "src", files=4, per_file=5), workers=2)
    # Each shard sleeps after writing its outputs: both workers are busy when the kill lands.
    env = {**os.environ, DELAY_ENV: "60"}
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", STAGE, json.dumps(rec), str(run_dir)], env=env)
    started: dict[int, str] = {}
    try:
        filtered = run_dir / "data" / "work" / "filtered"
        deadline = time.monotonic() + 60
        while len(list(filtered.glob("0000[01].jsonl"))) < 2:
            assert proc.poll() is None, "the stage ended before both workers started"
            assert time.monotonic() < deadline, "two shards did not start within 60 s"
            time.sleep(0.05)
        started = _descendants(proc.pid)
        # the fork server and two workers at least (the resource tracker too, usually)
        assert len(started) >= 3, started
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10  # seconds; before the fix they lived on for good
        while _alive(started) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _alive(started) == [], "pool processes outlived the killed main process"
    finally:
        proc.kill()
        for pid in _alive(started):
            os.kill(pid, signal.SIGKILL)
