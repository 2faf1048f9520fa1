"""Rich tables for the dicts that ``plan.commands`` returns (charts: ``report.plan_charts``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

TRAIN_KEYS = (
    "total_flops",
    "mfu",
    "effective_tflops_per_gpu",
    "gpu_hours",
    "wall_clock_days",
    "it_power_mw",
    "facility_power_mw",
    "energy_mwh",
    "cost_usd",
    "cost_owned_usd",
)
SERVE_KEYS = (
    "queries_per_s_peak",
    "input_tok_s_avg",
    "computed_input_tok_s_avg",
    "output_tok_s_avg",
    "kv_gb_per_sequence",
    "kv_fits",
    "batch_per_replica",
    "prefill_tok_s_per_gpu",
    "decode_tok_s_per_gpu",
    "prefill_gpus_avg",
    "decode_gpus_avg",
    "gpus_avg",
    "nodes_avg",
    "replicas",
    "prefill_replicas",
    "decode_replicas",
    "gpus",
    "nodes",
    "it_power_mw",
    "facility_power_mw",
    "energy_mwh_per_year",
    "rented_cost_usd_per_day_avg",
    "rented_cost_usd_per_year",
    "cost_per_million_output_tokens",
)


def periods(outputs: dict[str, Any]) -> tuple[list[str], list[str]]:
    """A fleet's years (``2025``) and quarters (``2025Q1``), sorted, from its output names."""
    heads = {k.split(".")[0] for k in outputs if k[:4].isdigit()}
    return sorted(h for h in heads if "Q" not in h), sorted(h for h in heads if "Q" in h)


def fleet_tables(outputs: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """The fleet's output tables as (title, keys): one per year, cash by quarter, financing."""
    years, quarters = periods(outputs)
    specs = [(y, sorted(k for k in outputs if k.startswith(y + "."))) for y in years]
    cash = [f"{q}.cash_b" for q in quarters] + [f"{q}.months_of_capex_in_cash" for q in quarters]
    specs.append(("cash by quarter ($B)", cash))
    # Reported cash against the model's, what the named uses leave unexplained.
    recon = [q for q in quarters if f"{q}.cash_unexplained_b" in outputs]
    uses = (
        "ocf_b",
        "ocf_model_gap_b",
        "capex_b",
        "buybacks_b",
        "dividends_b",
        "investments_b",
        "financing_b",
        "cash_modelled_b",
        "cash_b",
        "cash_unexplained_b",
    )
    specs.append(("cash reconciliation ($B)", [f"{q}.{k}" for q in recon for k in uses]))
    # Physical accelerators and H100-equivalents side by side, at the end of each year
    # with purchases (the counts stay flat after the last one).
    bought = {y for y in years if f"{y}.new_h100e" in outputs}
    ends = [q for q in quarters if q.endswith("Q4") and q[:4] in bought] or quarters[-1:]
    units = ("fleet_chips", "fleet_h100e", "h100e_per_chip")
    specs.append(
        (
            "fleet at year end: physical accelerators, H100e",
            [f"{q}.{k}" for q in ends for k in units],
        )
    )
    specs.append(("financing", sorted(k for k in outputs if k.startswith("financing."))))
    return specs


def num(v: Any) -> str:
    """A compact number: 3 significant digits, thousands separators for big ones."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, str):
        return v
    x = float(v)
    if x != 0 and (abs(x) >= 1e7 or abs(x) < 1e-2):
        return f"{x:.3g}"
    return f"{x:,.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def quantile_table(title: str, outputs: dict[str, dict[str, float]], keys: Sequence[str]) -> Table:
    """One row per output: p10, p50, p90."""
    t = Table(title=title)
    for col in ("output", "p10", "p50", "p90"):
        t.add_column(col, justify="left" if col == "output" else "right")
    for k in keys:
        if k in outputs:
            q = outputs[k]
            t.add_row(k, num(q["p10"]), num(q["p50"]), num(q["p90"]))
    return t


def tornado_table(title: str, rows: list[dict[str, Any]], top: int = 8) -> Table:
    """The inputs that move an output most, widest swing first."""
    t = Table(title=title)
    for col in ("input", "input p10..p90", "output at p10", "output at p90", "swing"):
        t.add_column(col, justify="left" if col == "input" else "right")
    for r in rows[:top]:
        t.add_row(
            r["input"],
            f"{num(r['input_p10'])}..{num(r['input_p90'])}",
            num(r["output_at_p10"]),
            num(r["output_at_p90"]),
            num(r["swing"]),
        )
    return t


def memory_table(mem: dict[str, Any]) -> Table:
    """Per-GPU training memory by kind, and whether it fits."""
    layout = " ".join(f"{k}={v}" for k, v in mem["layout"].items())
    t = Table(title=f"memory per GPU ({layout})")
    t.add_column("kind")
    t.add_column("GB", justify="right")
    for k in ("weights_gb", "gradients_gb", "optimizer_gb", "activations_gb", "total_gb"):
        t.add_row(k.removesuffix("_gb"), num(mem[k]))
    t.add_row("usable HBM", num(mem["usable_gb"]))
    t.add_row("fits", num(mem["fits"]))
    t.caption = mem["formula"]
    return t


def validation_table(rows: list[dict[str, Any]]) -> Table:
    """Published vs ours for every validation run."""
    t = Table(title="published training and serving runs, reproduced from published inputs")
    for col in (
        "run",
        "metric",
        "published",
        "ours p10",
        "p50",
        "p90",
        "error",
        "implied TFLOP/s",
        "result",
    ):
        t.add_column(col, justify="left" if col in ("run", "metric") else "right")
    for r in rows:
        status = ("PASS" if r["pass"] else "FAIL") + (" (known gap)" if r["kind"] == "gap" else "")
        nodes = r["metric"] == "nodes_avg"  # published to 2 decimals (226.75)

        def fmt(v: Any, nodes: bool = nodes) -> str:
            return f"{v:,.2f}" if nodes else num(v)

        t.add_row(
            r["name"],
            r["metric"],
            fmt(r["published"]),
            fmt(r["p10"]),
            fmt(r["p50"]),
            fmt(r["p90"]),
            f"{r['rel_error']:+.2%}" if nodes else f"{r['rel_error']:+.1%}",
            num(r.get("implied_tflops_per_gpu")),
            status,
        )
    return t


def checks_table(title: str, rows: list[dict[str, Any]]) -> Table:
    """Scenario outputs against the range the sources give."""
    t = Table(title=title)
    for col in ("check", "p10", "p50", "p90", "sources' range", "result", "source"):
        t.add_column(col, justify="right" if col in ("p10", "p50", "p90") else "left")
    for r in rows:
        t.add_row(
            r["check"],
            num(r["p10"]),
            num(r["p50"]),
            num(r["p90"]),
            f"{num(r['low'])}-{num(r['high'])}",
            "PASS" if r["pass"] else "FAIL",
            r["source"],
        )
    return t
