"""Time and peak memory of causal attention forward+backward, per kind, as T grows.

Kinds: ``full_mask`` (reference: materialised T×T boolean mask + SDPA), ``full_causal``
(SDPA ``is_causal=True``), ``sliding``, ``chunked`` and ``sparse`` (superlab's block-wise
and block-sparse paths). B=1, H=G=4, C=64, float32, CPU.

Memory is measured in a fresh subprocess per (kind, T), because torch's CPU allocations are
invisible to ``tracemalloc``: **peak** = ``ru_maxrss`` after the measured forward+backward;
**baseline** = ``ru_maxrss`` of the same process just before it (after importing torch,
building q/k/v and one warm-up call at T=128, so library and kernel set-up is excluded).
We report ``peak - baseline``: the working memory of attention itself. The child runs with
``MALLOC_MMAP_THRESHOLD_=131072``: glibc otherwise raises its mmap threshold after the first
large free and then keeps freed 16-32 MiB buffers (sparse's per-block K/V gathers) on the
heap, so RSS would count allocator retention rather than live tensors.

``RESULT <kind>_mem_growth_1k_to_<Tmax>`` is that memory at Tmax over that at 1k; linear
growth passes when the ratio is <= 1.5 × Tmax/1k (quadratic growth would be ~(Tmax/1k)²).

    .venv/bin/python bench/attention_memory.py --quick   # T up to 4k
    .venv/bin/python bench/attention_memory.py           # T up to 16k
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

B, H, G, C = 1, 4, 4, 64
WINDOW, CHUNK = 256, 256  # sliding window and chunk, tokens
BLOCK, TOP_K, LOCAL = 64, 4, 1  # sparse: AttentionConfig defaults
KINDS = ["full_mask", "full_causal", "sliding", "chunked", "sparse"]
LINEAR_KINDS = ["sliding", "chunked", "sparse"]


def _attend(kind: str):
    """The attention function for one kind, taking (q, k, v)."""
    import torch.nn.functional as F

    from superlab.config.recipe import AttentionConfig
    from superlab.model.attention import attention_mask
    from superlab.model.attention_blockwise import chunked_attention, sliding_attention
    from superlab.model.attention_sparse import sparse_attention

    if kind == "full_mask":
        cfg = AttentionConfig(kind="full")
        return lambda q, k, v: F.scaled_dot_product_attention(
            q, k, v, attn_mask=attention_mask(cfg, q.shape[2])
        )
    return {
        "full_causal": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        "sliding": lambda q, k, v: sliding_attention(q, k, v, WINDOW),
        "chunked": lambda q, k, v: chunked_attention(q, k, v, CHUNK),
        "sparse": lambda q, k, v: sparse_attention(q, k, v, BLOCK, TOP_K, LOCAL),
    }[kind]


def _maxrss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(kind: str, T: int) -> None:
    """Measure one (kind, T) in this fresh process and print one JSON line."""
    import torch

    torch.manual_seed(0)
    attend = _attend(kind)

    def step(T: int) -> None:
        q, k, v = (torch.randn(B, n, T, C, requires_grad=True) for n in (H, G, G))
        attend(q, k, v).sum().backward()

    step(128)  # warm-up (small, so its peak hides little): kernels, threads, imports
    q, k, v = (torch.randn(B, n, T, C, requires_grad=True) for n in (H, G, G))
    baseline = _maxrss_mib()
    start = time.perf_counter()
    attend(q, k, v).sum().backward()
    seconds = time.perf_counter() - start
    print(json.dumps({"kind": kind, "T": T, "s": seconds, "mib": _maxrss_mib() - baseline}))


def measure(kind: str, T: int) -> dict | None:
    """Run ``child`` in a subprocess; None if it failed (e.g. out of memory)."""
    cmd = [sys.executable, __file__, "--child", kind, str(T)]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        print(f"  {kind} T={T} failed (rc {proc.returncode}): {proc.stderr[-300:]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="T up to 4k (< 3 min)")
    parser.add_argument("--max-full-mask", type=int, default=8192, help="largest T for full_mask")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "T"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return

    lengths = [1024, 2048, 4096] if args.quick else [1024, 2048, 4096, 8192, 16384]
    print(f"B={B} H={H} G={G} C={C} window={WINDOW} chunk={CHUNK} sparse={BLOCK}/{TOP_K}/{LOCAL}")
    print(f"{'kind':<12} {'T':>6} {'fwd+bwd s':>10} {'peak-base MiB':>14}")
    rows: dict[str, dict[int, dict]] = {kind: {} for kind in KINDS}
    for kind in KINDS:
        for length in lengths:
            if kind == "full_mask" and length > args.max_full_mask:
                continue
            row = measure(kind, length)
            if row is not None:
                rows[kind][length] = row
                print(f"{kind:<12} {length:>6} {row['s']:>10.3f} {row['mib']:>14.1f}", flush=True)

    for kind in KINDS:
        got = rows[kind]
        if len(got) < 2:
            continue
        t_lo, t_hi = min(got), max(got)
        ratio = got[t_hi]["mib"] / max(got[t_lo]["mib"], 1e-3)
        bound = 1.5 * t_hi / t_lo
        name = f"{kind}_mem_growth_{t_lo // 1024}k_to_{t_hi // 1024}k"
        if kind in LINEAR_KINDS:
            verdict = "PASS" if ratio <= bound else "FAIL"
            print(f"RESULT {name} {ratio:.2f} target <= {bound:.1f} {verdict}")
        else:
            print(
                f"info   {name} {ratio:.2f} (T ratio {t_hi // t_lo}, squared {(t_hi // t_lo) ** 2})"
            )


if __name__ == "__main__":
    main()
