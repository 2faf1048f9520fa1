"""The ``ray`` executor joins a running cluster whatever ``data.workers`` says."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..pipeline.corpus import STAGE, make_inputs, outputs, recipe

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="ray not installed (superlab[ray])"
)

# Tasks that record when they run, to count how many were in flight at once.
OVERLAP = """
import json, os, sys, time
from superlab.data.executors.ray import RayExecutor

def task(i):
    t0 = time.time()
    time.sleep(0.4)
    return (t0, time.time())

with RayExecutor(int(sys.argv[1])) as ex:
    spans = ex.map(task, list(range(6)))
    print(json.dumps({"started": ex._started, "spans": spans}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """A running single-node Ray cluster on loopback, as `ray start --head` leaves one."""
    ray_bin = shutil.which("ray", path=os.path.dirname(sys.executable))
    if ray_bin is None:
        pytest.skip("the `ray` command is not installed beside this Python")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    tmp = Path("/tmp") / f"superlab-ray-{os.getpid()}"  # short: Ray's socket paths are capped
    env = _env(address)
    head = subprocess.Popen(
        [ray_bin, "start", "--head", "--block", "--num-cpus", "2", f"--port={port}",
         "--node-ip-address=127.0.0.1", "--include-dashboard=false", f"--temp-dir={tmp}",
         "--disable-usage-stats"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while subprocess.run(
            [ray_bin, "status", f"--address={address}"], env=env, capture_output=True
        ).returncode:
            assert head.poll() is None, "ray start --head exited"
            assert time.monotonic() < deadline, "the Ray head did not come up in 90 s"
            time.sleep(1)
        yield address
    finally:
        os.killpg(head.pid, signal.SIGTERM)  # --block: ends the node's processes with it
        try:
            head.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def _env(address: str) -> dict[str, str]:
    # Recent Ray turns token authentication on for `ray start` once a token file exists;
    # head and clients here agree to leave it off (this is about joining, not auth).
    return {**os.environ, "RAY_ADDRESS": address, "RAY_AUTH_MODE": "disabled"}


def test_data_stage_joins_a_running_cluster_with_workers_set(cluster, tmp_path: Path) -> None:
    inputs = make_inputs(tmp_path / "src", files=3, per_file=5)
    joined, alone = tmp_path / "joined", tmp_path / "local"
    for run_dir, rec in (
        (joined, recipe(inputs, executor="ray", workers=2)),  # failed: num_cpus when joining
        (alone, recipe(inputs, executor="local", workers=1)),
    ):
        done = subprocess.run(
            [sys.executable, "-c", STAGE, json.dumps(rec), str(run_dir)],
            env=_env(cluster), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
    assert outputs(joined) == outputs(alone)


def test_workers_caps_tasks_in_flight_on_a_joined_cluster(cluster) -> None:
    done = subprocess.run(
        [sys.executable, "-c", OVERLAP, "1"],
        env=_env(cluster), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["started"] is False  # joined, not a Ray of its own
    spans = sorted(result["spans"])
    # The cluster has 2 CPUs, but workers=1: no task starts before the previous one ended.
    assert all(b[0] >= a[1] - 0.01 for a, b in itertools.pairwise(spans))


@pytest.fixture(scope="module")
def two_nodes(cluster):
    """The cluster with a second node joined (`ray start --address`), its own temp dir."""
    ray_bin = shutil.which("ray", path=os.path.dirname(sys.executable))
    tmp = Path("/tmp") / f"superlab-ray2-{os.getpid()}"
    node = subprocess.Popen(
        [ray_bin, "start", f"--address={cluster}", "--block", "--num-cpus", "1",
         "--node-ip-address=127.0.0.1", f"--temp-dir={tmp}", "--disable-usage-stats"],
        env=_env(cluster), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while _alive_nodes(cluster) < 2:
            assert node.poll() is None, "ray start --address exited"
            assert time.monotonic() < deadline, "the second node did not join in 90 s"
            time.sleep(1)
        yield cluster
    finally:
        os.killpg(node.pid, signal.SIGTERM)
        try:
            node.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait()
        shutil.rmtree(tmp, ignore_errors=True)


NODES = """
import ray
ray.init()
print(sum(n["Alive"] for n in ray.nodes()))
"""


def _alive_nodes(address: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", NODES], env=_env(address), capture_output=True, text=True
    )
    return int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else 0


def test_sharded_dedup_on_two_nodes_matches_local(two_nodes, tmp_path: Path) -> None:
    inputs = make_inputs(tmp_path / "src", files=3, per_file=5)
    sharded = {"sharded_above_docs": 0, "bucket_shards": 3}
    joined, alone = tmp_path / "joined", tmp_path / "local"
    for run_dir, rec in (
        # 3 tasks in flight on 2 + 1 CPUs: both nodes take work.
        (joined, recipe(inputs, executor="ray", workers=3, dedup=sharded)),
        (alone, recipe(inputs, executor="local", workers=1)),  # the single-process path
    ):
        done = subprocess.run(
            [sys.executable, "-c", STAGE, json.dumps(rec), str(run_dir)],
            env=_env(two_nodes), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
    assert outputs(joined) == outputs(alone)
