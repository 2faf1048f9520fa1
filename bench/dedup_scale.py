"""Near-dedup at scale: the sharded path (``dedup.sharded``) against the single-process one.

Corpus: synthetic MinHash signatures (``superlab.data.dedup.synthetic``: 10% of documents are
copies of an earlier base with 5-40% of their signature entries redrawn, so clusters of one
to several documents and chains occur), written as signature files of ``SHARD_DOCS``
documents each, exactly what the data stage's signature step leaves. The bench measures the
clustering (banding, buckets, union-find), the stage that grew with the corpus; signatures
and the per-shard text work are per shard already. For each size it runs, each in a fresh
process: (a) the anchor, ``lsh.near_duplicates`` in one process (today's path); (b) the
sharded path on a process pool of 1 worker and (c) of 2 workers, one fresh process per task
(``max_tasks_per_child=1``), so a task's peak RSS is its own. Driver RSS is the peak RSS of the
process that plans the tasks and loads the result (``getrusage(RUSAGE_SELF)``), task RSS the
largest peak any task reports. The result (removed documents, survivors, cluster ids and the
counters) of every sharded run is compared with the anchor's.

    .venv/bin/python bench/dedup_scale.py --quick   # 100k, 300k, 1M documents (< 3 min)
    .venv/bin/python bench/dedup_scale.py           # 1M, 3M, 10M documents
    .venv/bin/python bench/dedup_scale.py --quick --ray   # + the largest size on Ray

With ``--ray`` the largest size also runs on Ray: on the cluster ``RAY_ADDRESS`` names (for
example a head and a second ``ray start --address`` node, each with its own ``--temp-dir``;
set ``RAY_AUTH_MODE=disabled`` on both and here with ray 2.60), else on a local Ray. Task RSS
there is what each task reports of its (reused) worker process.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import multiprocessing as mp
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from superlab.config.recipe import MinHashConfig
from superlab.data.dedup.lsh import NearDupResult
from superlab.data.dedup.minhash_store import save_array, signature_path
from superlab.data.dedup.synthetic import synthetic_signatures

CFG = MinHashConfig()  # 14 bands x 8 rows, FineWeb's
SHARD_DOCS = 100_000


def _write_shard(task: tuple[str, int, int, int]) -> None:
    out, s, lo, hi = task
    save_array(signature_path(Path(out), s), synthetic_signatures(lo, hi, CFG.bands * CFG.rows))


def build(n_docs: int, out: Path, workers: int) -> list[Path]:
    """The signature files of an ``n_docs`` corpus under ``out`` (reused when present)."""
    bounds = [*range(0, n_docs, SHARD_DOCS), n_docs]
    tasks = [(str(out), s, lo, hi) for s, (lo, hi) in enumerate(itertools.pairwise(bounds))]
    paths = [signature_path(out, s) for s in range(len(tasks))]
    todo = [t for t, p in zip(tasks, paths, strict=True) if not p.exists()]
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("forkserver")) as pool:
        list(pool.map(_write_shard, todo))
    return paths


def digest(res: NearDupResult) -> str:
    """A hash of everything the result says: removed, survivors, clusters, counters."""
    h = hashlib.sha256()
    for arr in (res.removed, res.survivor, res.cluster, res.shard_offsets):
        h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
    h.update(json.dumps(res.stats(), sort_keys=True).encode())
    return h.hexdigest()


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(mode: str, sig_dir: Path, work: Path, workers: int) -> dict[str, Any]:
    """One measured run in this (fresh) process."""
    paths = sorted(sig_dir.glob("*.sig.npy"))
    t0 = time.perf_counter()
    task_mib = 0.0
    phases: dict[str, Any] = {}
    if mode == "single":
        from superlab.data.dedup import near_duplicates

        res = near_duplicates(paths, work, CFG)
    elif mode == "ray":  # joins RAY_ADDRESS if set, else starts a local Ray of `workers` CPUs
        from superlab.data.dedup.sharded import sharded_near_duplicates
        from superlab.data.executors.ray import RayExecutor

        with RayExecutor(workers) as ray_ex:
            res, phases = sharded_near_duplicates(paths, work, CFG, ray_ex.map)
        task_mib = max(p["task_rss_mib"] for p in phases.values())
    else:
        from superlab.data.dedup.sharded import sharded_near_duplicates

        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["numpy", "superlab.data.dedup.sharded"])

        def pool_map(fn: Any, items: Any) -> list[Any]:
            with ProcessPoolExecutor(workers, mp_context=ctx, max_tasks_per_child=1) as pool:
                return list(pool.map(fn, items))

        res, phases = sharded_near_duplicates(paths, work, CFG, pool_map)
        task_mib = max(p["task_rss_mib"] for p in phases.values())
    return {
        "wall_s": time.perf_counter() - t0,
        "driver_mib": _peak_mib(),
        "task_mib": task_mib,
        "digest": digest(res),
        "stats": res.stats(),
        "phases": phases,
    }


def measure(mode: str, sig_dir: Path, work: Path, workers: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", mode, str(sig_dir), str(work), str(workers)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


def result(name: str, value: float, op: str, target: float) -> None:
    ok = {"<=": value <= target, "==": value == target}[op]
    print(f"RESULT {name} {value:.4g} target {op} {target:g} {'PASS' if ok else 'FAIL'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="100k, 300k, 1M documents")
    ap.add_argument(
        "--ray",
        action="store_true",
        help="also run the largest size on Ray (RAY_ADDRESS's cluster, else a local one)",
    )
    ap.add_argument("--dir", type=Path, help="work directory (default: a temporary one)")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        mode, sig_dir, work, workers = a.child
        print(json.dumps(child(mode, Path(sig_dir), Path(work), int(workers))))
        return
    sizes = [100_000, 300_000, 1_000_000] if a.quick else [1_000_000, 3_000_000, 10_000_000]
    root = a.dir or Path(tempfile.mkdtemp(prefix="dedup_scale."))
    t_start = time.perf_counter()
    rows: dict[int, dict[str, Any]] = {}
    print(f"{'docs':>6} {'run':>10} {'wall s':>8} {'driver MiB':>11} {'task MiB':>9}  removed")
    for n in sizes:
        sig_dir = root / f"sig-{label(n)}"
        build(n, sig_dir, workers=2)
        runs = {
            "single": measure("single", sig_dir, root / "work", 1),
            "sharded-1": measure("sharded", sig_dir, root / "work", 1),
            "sharded-2": measure("sharded", sig_dir, root / "work", 2),
        }
        if a.ray and n == sizes[-1]:
            runs["ray-2"] = measure("ray", sig_dir, root / "work", 2)
        rows[n] = runs
        for name, r in runs.items():
            print(
                f"{label(n):>6} {name:>10} {r['wall_s']:8.1f} {r['driver_mib']:11.0f} "
                f"{r['task_mib']:9.0f}  {r['stats']['removed']:,}"
            )
    lo, hi = sizes[0], sizes[-1]
    growth = rows[hi]["sharded-2"]["driver_mib"] / rows[lo]["sharded-2"]["driver_mib"]
    anchor = rows[hi]["single"]["driver_mib"] / rows[lo]["single"]["driver_mib"]
    print(f"single-process RSS growth {label(lo)} -> {label(hi)}: {anchor:.2f}x (the anchor)")
    equal = all(
        runs[s]["digest"] == runs["single"]["digest"] for runs in rows.values() for s in runs
    )
    print(f"total wall time {time.perf_counter() - t_start:.0f} s; work in {root}")
    (root / "results.json").write_text(json.dumps({str(n): r for n, r in rows.items()}, indent=1))
    result(f"dedup_driver_rss_growth_{label(lo)}_to_{label(hi)}", growth, "<=", 1.5)
    task_gib = max(r["task_mib"] for r in rows[hi].values()) / 1024
    result(f"dedup_task_rss_gib_{label(hi)}", task_gib, "<=", 2)
    result("dedup_sharded_equals_single", float(equal), "==", 1)


if __name__ == "__main__":
    main()
