"""RegMix on the five offline sources of recipes/mix.yaml: does the predicted mixture win?

The anchors are the mixtures a lab would use without a search: the natural one (each
source's share of the clean train tokens) and the uniform one. Ours is the RegMix
mixture: ``superlab mix`` draws ``proxies`` mixtures from a Dirichlet around the natural
distribution, trains a small proxy run on each (one shared data stage), fits a ridge
regression on weights and pairwise products (scikit-learn), scores 100,000 simulated
mixtures and averages the 100 best. Then the predicted, natural, uniform and best-proxy
mixtures are each trained twice (seeds 0 and 1) at the confirmation size. All runs on the
same data stage, tokenizer and token budget; the target is the mean held-out bits per byte
over the five sources (lower is better).

Figures:
- ``regmix_spearman``: Spearman rank correlation of the regression's predicted and the
  actual target on held-out proxies (5-fold cross-validation). Target >= 0.8.
- ``regmix_gain_vs_natural`` / ``_vs_uniform``: the anchor's target minus the predicted
  mixture's, paired by seed, mean over the two seeds (with the 95% interval printed).
  Target > 0.

    .venv/bin/python bench/regmix.py --quick   # 24 proxies, small data
    .venv/bin/python bench/regmix.py           # 48 proxies, the full recipe's data

Runs are resumable: the same command again reuses finished runs (``--runs-dir``).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def grid(quick: bool, jobs: int) -> dict:
    base = yaml.safe_load((REPO / "recipes" / "mix.yaml").read_text())
    base = copy.deepcopy(base)
    base["data"]["workers"] = jobs
    if quick:  # fewer documents per source
        caps = {"web": ("max_articles", 500), "intl": ("max_docs", 500),
                "code": ("max_docs", 120), "docs": ("max_docs", 250),
                "chat": ("max_docs", 150)}  # fmt: skip
        for src in base["data"]["sources"]:
            key, n = caps[src["name"]]
            src[key] = n
    base["tokenizer"]["vocab_size"] = 1024  # small models: most parameters not in embeddings
    size = {"model.d_model": 48, "model.n_layers": 2, "model.n_heads": 4, "model.n_kv_heads": 2,
            "train.batch_size": 8, "train.seq_len": 64, "train.warmup_steps": 10,
            "train.lr": 6e-3, "train.threads": 1, "train.tensorboard": False,
            "train.log_every": 25, "eval.batches": 16}  # fmt: skip
    # --quick confirms at the proxies' size and length; the full run trains them 2x longer.
    proxy_steps, confirm_steps = (150, 150) if quick else (300, 600)
    return {
        "name": "regmix-quick" if quick else "regmix",
        "base": base,
        "proxies": 24 if quick else 48,
        "proxy": {
            **size,
            "train.steps": proxy_steps,
            "train.eval_every": proxy_steps,
            "train.ckpt_every": proxy_steps,
        },
        # confirmation runs: the proxies' model
        "confirm": {
            **size,
            "train.steps": confirm_steps,
            "train.eval_every": confirm_steps,
            "train.ckpt_every": confirm_steps,
        },
        "confirm_seeds": [0, 1],
        "target": {"metric": "bits_per_byte"},
        "search_samples": 100_000,
        "top_k": 100,
        "jobs": jobs,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="24 proxies on less data")
    ap.add_argument("--runs-dir", type=Path, default=Path("/tmp/superlab-bench-regmix"))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    from superlab.mix.run import mix

    args.runs_dir.mkdir(parents=True, exist_ok=True)
    g = grid(args.quick, args.jobs)
    path = args.runs_dir / f"{g['name']}.yaml"
    path.write_text(yaml.safe_dump(g, sort_keys=False))
    t0 = time.perf_counter()
    result = mix(path, args.runs_dir, jobs=args.jobs)
    wall = time.perf_counter() - t0
    print(f"grid {g['name']}: {len(result['proxies'])} proxies + "
          f"{len(result['confirmations'])} confirmation runs, {wall:.0f} s wall "
          f"({args.jobs} jobs, {os.cpu_count()} cores)")  # fmt: skip
    names = result["sources"]
    print("| mixture | " + " | ".join(names) + " | target (mean ± 95% CI) | predicted |")
    print("|---|" + "---|" * len(names) + "---|---|")
    for role, w in result["mixtures"].items():
        stat = result["by_role"][role]
        ci = "" if stat["ci95"] is None else f" ± {stat['ci95']:.4f}"
        preds = [c["predicted"] for c in result["confirmations"] if c["role"] == role]
        print(f"| {role} | " + " | ".join(f"{w[s]:.3f}" for s in names)
              + f" | {stat['mean']:.4f}{ci} | {preds[0]:.4f} |")  # fmt: skip
    for role, why in result["left_out"].items():
        print(f"left out: {role}: {why}")
    rho = result["regression"]["spearman_cv"]
    ok = rho >= 0.8
    print(f"RESULT regmix_spearman {rho:.3f} target >= 0.8 {'PASS' if ok else 'FAIL'}")
    for other in ("natural", "uniform"):
        gain = result["gain_vs"].get(other)
        if gain is None or gain["mean"] is None:
            print(f"RESULT regmix_gain_vs_{other} nan target > 0 FAIL")
            ok = False
            continue
        passed = gain["mean"] > 0
        ok &= passed
        ci = "" if gain["ci95"] is None else f" (± {gain['ci95']:.4f}, seeds {gain['values']})"
        print(f"# gain vs {other}: {gain['mean']:.4f}{ci} bits per byte")
        print(f"RESULT regmix_gain_vs_{other} {gain['mean']:.4f} target > 0 "
              f"{'PASS' if passed else 'FAIL'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
