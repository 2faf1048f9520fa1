"""One function per report section; each reads its file from the run dir, tolerating gaps.

A missing file gives a "not run yet" section; an unreadable one says why. Shapes
read (missing keys are skipped, never fatal): ``data/stats.json`` {steps: [{name,
docs_in, docs_out, seconds}], removed: {reason: n}, lines_removed: {reason: n},
tokens: {split: n}}; ``metrics.jsonl`` one object per logged step; ``eval.json``
any dict; ``samples.json`` [{prompt, completion}]; ``plan.json`` from ``superlab.plan``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

from superlab.common import RunDir
from superlab.config import Recipe
from superlab.report.html import Section, esc, fmt, kv_table, missing, table
from superlab.report.svg import line_chart

_MOE_KEY = re.compile(r"^moe/([^/]+)/(.+)$")


def _load_json(path: Path) -> tuple[Any, str | None]:
    """(data, None), or (None, HTML saying the file is missing or unreadable)."""
    if not path.is_file():
        return None, missing(path.name)
    try:
        return json.loads(path.read_text("utf-8")), None
    except (OSError, ValueError) as e:
        return None, f'<p class="missing">could not read {esc(path.name)}: {esc(e)}</p>'


def read_metrics(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The JSON objects in ``metrics.jsonl`` and how many lines were not objects (skipped)."""
    rows, bad = [], 0
    for line in path.read_text("utf-8").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:  # e.g. a half-written last line while training runs
            bad += 1
            continue
        if isinstance(row, dict):
            rows.append(_flatten_moe(row))
        else:
            bad += 1
    return rows, bad


def _flatten_moe(row: dict[str, Any]) -> dict[str, Any]:
    """Trainer rows hold ``"moe": [{"layer": i, stat: value}]``; chart as ``moe/layerI/stat``."""
    layers = row.pop("moe", None)
    for entry in layers if isinstance(layers, list) else []:
        if isinstance(entry, dict) and "layer" in entry:
            for stat, value in entry.items():
                if stat != "layer":
                    row[f"moe/layer{entry['layer']}/{stat}"] = value
    return row


def recipe_section(recipe: Recipe) -> Section:
    """The resolved recipe as a collapsible YAML block."""
    text = yaml.safe_dump(recipe.resolved(), sort_keys=False, allow_unicode=True)
    body = (
        f"<details><summary>resolved recipe ({len(text.splitlines())} lines)</summary>"
        f"<pre>{esc(text)}</pre></details>"
    )
    return Section("recipe", "Recipe", body)


def _reason_table(counts: Any, title: str) -> str:
    if not isinstance(counts, dict) or not counts:
        return ""
    rows = sorted(counts.items(), key=lambda kv: -kv[1] if isinstance(kv[1], int | float) else 0)
    total = sum(v for _, v in rows if isinstance(v, int | float))
    return f"<h3>{esc(title)}</h3>" + table(("reason", "count"), [*rows, ("total", total)])


def data_section(run: RunDir) -> Section:
    """Documents in and out of each data step, removal reasons, token counts."""
    stats, err = _load_json(run.data_stats)
    if err or not isinstance(stats, dict):
        return Section("data", "Data", err or missing("a stats object"), False)
    parts = []
    raw_steps = stats.get("steps") or []
    if isinstance(raw_steps, dict):  # the data stage writes {step name: {docs_in, ...}}
        raw_steps = [{"name": k, **v} for k, v in raw_steps.items() if isinstance(v, dict)]
    steps = [s for s in raw_steps if isinstance(s, dict)]
    if steps:
        rows = []
        for s in steps:
            n_in, n_out = s.get("docs_in"), s.get("docs_out")
            both = isinstance(n_in, int) and isinstance(n_out, int)
            kept = f"{100 * n_out / n_in:.1f}%" if both and n_in else "–"
            rows.append(
                (
                    s.get("name", "?"),
                    n_in,
                    n_out,
                    n_in - n_out if both else None,
                    kept,
                    _mb(s.get("bytes_in")),
                    _mb(s.get("bytes_out")),
                    s.get("seconds"),
                )
            )
        head = ("step", "docs in", "docs out", "removed", "kept", "MB in", "MB out", "seconds")
        parts.append("<h3>Funnel</h3>" + table(head, rows))
    parts.append(_reason_table(stats.get("removed"), "Documents removed, by reason"))
    parts.append(_reason_table(stats.get("lines_removed"), "Lines removed, by reason"))
    if isinstance(stats.get("tokens"), dict):
        parts.append("<h3>Tokens</h3>" + kv_table(stats["tokens"], ("split", "tokens")))
    body = "".join(parts) or '<p class="note">stats.json holds none of the known keys</p>'
    return Section("data", "Data", body)


def _mb(value: Any) -> Any:
    return round(value / 1e6, 2) if isinstance(value, int | float) else None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _series(rows: list[dict[str, Any]], key: str) -> list[tuple[Any, Any]]:
    return [(r.get("step"), r[key]) for r in rows if key in r]


def _moe_layers(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last value of every ``moe/<layer>/<stat>`` key, by layer in natural order."""
    last: dict[str, dict[str, Any]] = {}
    for row in rows:
        for key, value in row.items():
            if m := _MOE_KEY.match(key):
                last.setdefault(m.group(1), {})[m.group(2)] = value
    return {layer: last[layer] for layer in sorted(last, key=_natural)}


def _natural(name: str) -> list[tuple[int, str]]:
    """Sort key putting layer2 before layer10."""
    return [(int(t), "") if t.isdigit() else (-1, t) for t in re.split(r"(\d+)", name) if t]


def training_section(run: RunDir) -> Section:
    """Loss and held-out loss, learning rate, gradient norm and MoE expert load vs step."""
    if not run.metrics.is_file():
        return Section("training", "Training", missing(run.metrics.name), False)
    rows, bad = read_metrics(run.metrics)
    rows = [r for r in rows if "stage" not in r]  # post-training rows have their own section
    if not rows:
        return Section("training", "Training", missing("a metrics row"), False)
    last = rows[-1]
    heldout = [(r.get("step"), r["heldout_loss"]) for r in rows if "heldout_loss" in r]
    tps = [r["tokens_per_s"] for r in rows if _finite(r.get("tokens_per_s"))]
    summary: dict[str, Any] = {
        "rows logged": len(rows),
        "last step": last.get("step"),
        "last loss": next((r["loss"] for r in reversed(rows) if "loss" in r), None),
        "last held-out loss": heldout[-1][1] if heldout else None,
        "best held-out loss": min((v for _, v in heldout if _finite(v)), default=None),
        "mean tokens/s": sum(tps) / len(tps) if tps else None,
    }
    if bad:
        summary["unreadable lines skipped"] = bad
    charts = [
        line_chart(
            {"train loss": _series(rows, "loss"), "held-out loss": heldout},
            title="Loss",
            x_label="step",
            y_label="loss",
        ),
        line_chart(
            {"lr": _series(rows, "lr")}, title="Learning rate", x_label="step", y_label="lr"
        ),
    ]
    if any("grad_norm" in r for r in rows):
        charts.append(
            line_chart(
                {"grad norm": _series(rows, "grad_norm")},
                title="Gradient norm",
                x_label="step",
                y_label="norm",
            )
        )
    layers = _moe_layers(rows)
    moe = ""
    if layers:
        cv = {layer: _series(rows, f"moe/{layer}/load_cv") for layer in layers}
        charts.append(
            line_chart(
                cv,
                title="Expert load: CV of tokens per expert",
                x_label="step",
                y_label="CV (0 = balanced)",
            )
        )
        stats = sorted({k for v in layers.values() for k in v})
        moe = "<h3>MoE layers, last logged values</h3>" + table(
            ("layer", *stats),
            [(layer, *(_short(v.get(k)) for k in stats)) for layer, v in layers.items()],
        )
    body = kv_table(summary) + f'<div class="charts">{"".join(charts)}</div>' + moe
    return Section("training", "Training", body)


def _short(value: Any) -> Any:
    """Lists as a compact comma-separated string, other values unchanged."""
    if isinstance(value, list):
        return ", ".join(fmt(v) for v in value[:64]) + (" …" if len(value) > 64 else "")
    return value


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix or "value": _short(obj)}


def eval_section(run: RunDir) -> Section:
    """Every eval result, flattened to dotted keys."""
    results, err = _load_json(run.eval)
    if err:
        return Section("eval", "Eval", err, False)
    return Section("eval", "Eval", kv_table(_flatten(results), ("metric", "value")))


def samples_section(run: RunDir) -> Section:
    """The serve stage's prompts and completions."""
    samples, err = _load_json(run.samples)
    if isinstance(samples, dict):
        samples = samples.get("samples")
    if err or not isinstance(samples, list):
        return Section("samples", "Samples", err or missing("a list of samples"), False)
    parts = []
    for s in samples:
        s = s if isinstance(s, dict) else {"completion": s}
        parts.append(
            f'<div class="sample"><div class="prompt">{esc(s.get("prompt", ""))}</div>'
            f"<pre>{esc(s.get('completion', ''))}</pre></div>"
        )
    return Section("samples", "Samples", "".join(parts) or '<p class="note">no samples</p>')


_PLAN_ROWS = (
    ("tokens", "tokens"),
    ("tokens from", "tokens_source"),
    ("training FLOPs per token", "flops_per_token"),
    ("total FLOPs", "total_flops"),
    ("GPU-hours", "gpu_hours"),
    ("wall-clock days", "wall_clock_days"),
    ("IT power (MW)", "it_power_mw"),
    ("facility power (MW)", "facility_power_mw"),
    ("energy (MWh)", "energy_mwh"),
    ("rented cost ($)", "cost_usd"),
)
_PLAN_ASSUMPTIONS = (
    ("accelerator", "accelerator"),
    ("precision", "precision"),
    ("GPUs", "num_gpus"),
    ("peak TFLOP/s per GPU (dense)", "peak_tflops_per_gpu"),
    ("MFU", "mfu"),
    ("goodput", "goodput"),
    ("PUE", "pue"),
    ("all-in IT power per GPU (W)", "power_per_gpu_w"),
    ("price per GPU-hour ($)", "price_per_gpu_hour"),
)


def plan_section(run: RunDir) -> Section:
    """This run's and the scaled-up run's compute, time, power and cost, with assumptions."""
    plan, err = _load_json(run.plan)
    if err or not isinstance(plan, dict):
        return Section("plan", "Plan", err or missing("a plan object"), False)
    runs = [plan.get(k) if isinstance(plan.get(k), dict) else {} for k in ("this_run", "at_scale")]
    rows = [(label, *(r.get(key) for r in runs)) for label, key in _PLAN_ROWS]
    basis = runs[1] or runs[0]
    assumptions = {label: basis.get(key) for label, key in _PLAN_ASSUMPTIONS}
    inputs = plan.get("inputs") if isinstance(plan.get("inputs"), dict) else {}
    params = inputs.get("params") if isinstance(inputs.get("params"), dict) else {}
    assumptions["parameters (total / active)"] = f"{fmt(params.get('total'))} / " + fmt(
        params.get("active")
    )
    acc = inputs.get("accelerator") if isinstance(inputs.get("accelerator"), dict) else {}
    if acc:
        assumptions["hardware figures from"] = f"{acc.get('source')} ({acc.get('date')})"
    body = (
        table(("", "this run", "at scale"), rows) + "<h3>Assumptions</h3>" + kv_table(assumptions)
    )
    return Section("plan", "Plan", body)
