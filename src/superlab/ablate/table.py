"""Per-run figures of an ablation and their mean and 95% interval over seeds.

Per run (from its ``metrics.jsonl`` and ``eval.json``): final training loss (the last
logged step), held-out loss, probe accuracy overall and split by chunk relation at
the chunk size every run was classified by (same, cross = adjacent + far, straddle)
with the context fault (same - cross), expert load CV and dropped-token fraction
(mean over MoE layers and over the last quarter of logged steps; none for dense
runs), and the curves the report plots.

Per configuration: each figure's mean over seeds and the half-width of its 95%
interval, ``t(0.975, n-1) * sd / sqrt(n)`` (Student's t; none for a single seed).
A run that has not finished is listed with ``complete: false`` and left out of the
means.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from superlab.ablate.grid import RunSpec, matmul_flops
from superlab.model.counts import flops_per_token

# Student's t, 97.5th percentile, by degrees of freedom (any statistics table).
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042}  # fmt: skip

FIGURES = (
    "final_loss",
    "heldout_loss",
    "recall_accuracy",
    "recall_same",
    "recall_cross",
    "recall_straddle",
    "context_fault",
    "multihop_accuracy",
    "load_cv",
    "dropped_fraction",
)


def t975(df: int) -> float:
    """Student's t 97.5th percentile for ``df`` degrees of freedom (the nearest lower df)."""
    if df >= 31:
        return 1.96
    return T975[max(k for k in T975 if k <= df)]


def _metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _common_chunk(results: list[dict[str, Any]]) -> int | None:
    sets = [set((r.get("probes") or {}).get("chunk_sizes", [])) for r in results]
    common = set.intersection(*sets) if sets else set()
    return min(common) if common else None


def collect(runs: list[RunSpec], runs_dir: Path) -> list[dict[str, Any]]:
    """One row per run, with its curves."""
    results = {}
    for spec in runs:
        path = runs_dir / spec.name / "eval.json"
        results[spec.name] = json.loads(path.read_text()) if path.is_file() else None
    chunk = _common_chunk([r for r in results.values() if r is not None])
    rows = []
    for spec in runs:
        res = results[spec.name]
        metrics = _metrics(runs_dir / spec.name / "metrics.jsonl")
        losses = [(m["step"], m["loss"]) for m in metrics if m.get("loss") is not None]
        moe = [(m["step"], m["moe"]) for m in metrics if m.get("moe")]
        tail = moe[-max(1, len(moe) // 4) :] if moe else []
        cfg = spec.recipe.model.model_copy(
            update={"vocab_size": spec.recipe.model.vocab_size or spec.recipe.tokenizer.vocab_size}
        )
        row: dict[str, Any] = {
            "name": spec.name,
            "config": spec.config,
            "values": spec.values,
            "seed": spec.seed,
            "complete": res is not None,
            "chunk_size": chunk,
            "matmul_flops_per_token": matmul_flops(spec.recipe),
            "attention_flops_per_token": flops_per_token(cfg, spec.recipe.train.seq_len)[
                "attention"
            ],
            "final_loss": losses[-1][1] if losses else None,
            "heldout_loss": (res or {}).get("heldout", {}).get("loss"),
            "load_cv": _mean([_mean([layer["load_cv"] for layer in m]) or 0.0 for _, m in tail])
            if tail
            else None,
            "dropped_fraction": _mean(
                [_mean([layer.get("dropped_fraction", 0.0) for layer in m]) or 0.0 for _, m in tail]
            )
            if tail
            else None,
            "curves": {
                "loss": losses,
                "load_cv": [(s, _mean([layer["load_cv"] for layer in m])) for s, m in moe],
            },
        }
        kinds = ((res or {}).get("probes") or {}).get("kinds", {})
        for kind in ("recall", "multihop"):
            row[f"{kind}_accuracy"] = (kinds.get(kind) or {}).get("accuracy")
        recall = kinds.get("recall") or {}
        split = (recall.get("by_chunk") or {}).get(str(chunk), {})
        row["recall_same"] = (split.get("same") or {}).get("accuracy")
        row["recall_cross"] = (split.get("cross") or {}).get("accuracy")
        row["recall_straddle"] = (split.get("straddle") or {}).get("accuracy")
        row["context_fault"] = split.get("context_fault")
        row["recall_chance"] = recall.get("chance")
        row["curves"]["recall_by_distance"] = [
            (int(b.split("-")[0].rstrip("+")), v["accuracy"])
            for b, v in (recall.get("by_distance") or {}).items()
        ]
        rows.append(row)
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per configuration, in first-seen order: n seeds, and mean and CI of each figure."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[r["config"]].append(r)
    out = []
    for config, members in groups.items():
        done = [r for r in members if r["complete"]]
        entry: dict[str, Any] = {
            "config": config,
            "values": members[0]["values"],
            "seeds": len(done),
            "runs": len(members),
        }
        for fig in FIGURES:
            xs = [r[fig] for r in done if r.get(fig) is not None]
            mean = _mean(xs)
            ci = (
                t975(len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))
                if len(xs) > 1
                else None
            )
            entry[fig] = {"mean": mean, "ci95": ci, "n": len(xs)}
        out.append(entry)
    return out
