"""``superlab plan ...``: training, serving and fleet numbers. Thin: parses, calls the package.

Numeric options take a number (``0.4``), a uniform range (``0.38:0.43``), a
triangular ``low:mode:high`` or ``lognormal:p10:p90``; every output is then
reported as p10/p50/p90 over Monte Carlo draws.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from superlab.plan import charts, commands, render
from superlab.plan.montecarlo import Input, parse
from superlab.plan.scenario import ScenarioError
from superlab.plan.sources import sources
from superlab.plan.validation import check_fleet, validate_all

plan_app = typer.Typer(
    help="Compute, power, cost and finance: what a lab can train and serve.", no_args_is_help=True
)
out, err = Console(), Console(stderr=True)

R = Annotated[str | None, typer.Option(help="number, lo:hi, lo:mode:hi or lognormal:p10:p90")]


def N(what: str) -> Any:
    """A numeric option that also takes a range or a distribution."""
    return Annotated[
        str | None, typer.Option(help=f"{what} (number, lo:hi, lo:mode:hi or lognormal:p10:p90)")
    ]


def Opt(what: str) -> Any:
    """A plain option with help text."""
    return typer.Option(help=what)


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
DrawsOpt = Annotated[int, typer.Option(help="Monte Carlo draws.")]
SeedOpt = Annotated[int, typer.Option(help="Random seed (same seed = same output).")]
SvgOpt = Annotated[Path | None, typer.Option(help="Write the tornado chart as SVG here.")]
HtmlOpt = Annotated[
    Path | None, typer.Option(help="Write a self-contained HTML page (tables, charts) here.")
]


def _num(text: str | None, name: str) -> Input | None:
    if text is None:
        return None
    try:
        return parse(text)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint=f"--{name.replace('_', '-')}") from None


def _emit(
    result: dict[str, Any],
    as_json: bool,
    tables: list[Any],
    svg: Path | None,
    tornado: tuple[str, list[dict[str, Any]]] | None,
    html: Path | None = None,
    command: str = "",
    sources: dict[str, str] | None = None,
) -> None:
    if svg is not None and tornado is not None:
        svg.write_text(charts.tornado_svg(*tornado), "utf-8")
    if html is not None:
        from superlab.report.plan_page import write_plan_page

        write_plan_page(html, command, result, sources)
    if as_json:
        out.print_json(json.dumps(result, default=float))
        return
    for t in tables:
        out.print(t)


@plan_app.command()
def train(
    recipe: Annotated[Path | None, typer.Argument(help="Recipe YAML (model shape).")] = None,
    params: N("Total parameters") = None,
    active_params: N("Active parameters per token (MoE); default: --params") = None,
    tokens: N("Training tokens") = None,
    attn_flops: N("Attention training FLOPs per token; default: from the recipe, else 0") = None,
    accelerator: Annotated[
        str, Opt("Catalog name (superlab.plan catalog), e.g. h100-sxm, b200.")
    ] = "h100-sxm",
    precision: Annotated[
        str, Opt("bf16 or fp8: which dense peak MFU is measured against.")
    ] = "bf16",
    gpus: Annotated[int, Opt("Number of accelerators.")] = 1024,
    mfu: N("Model FLOPs utilisation against the dense peak") = None,
    tflops: N("Achieved TFLOP/s per GPU (instead of --mfu)") = None,
    goodput: N("Fraction of wall-clock that is productive training") = "0.9",
    pue: N("Facility power usage effectiveness") = "1.2",
    price: N("Rented $ per GPU-hour; default: the catalog's") = None,
    capex_per_gpu: N("Owned: $ per accelerator, amortised over --life-years") = None,
    life_years: N("Depreciation life of owned accelerators, years") = "5",
    price_per_mwh: N("Electricity $ per MWh (owned cost)") = "80",
    seq_len: Annotated[
        int | None, Opt("Context length for attention FLOPs and activations.")
    ] = None,
    tp: Annotated[int, Opt("Tensor-parallel degree (memory check).")] = 1,
    pp: Annotated[int, Opt("Pipeline-parallel degree (memory check).")] = 1,
    ep: Annotated[int, Opt("Expert-parallel degree (memory check).")] = 1,
    zero: Annotated[int, Opt("ZeRO/FSDP stage 0-3: what is sharded across data parallel.")] = 1,
    micro_batch: Annotated[int, Opt("Sequences per GPU per micro-batch (activations).")] = 1,
    recompute: Annotated[
        str, Opt("Activation recomputation: none, selective or full.")
    ] = "selective",
    layers: Annotated[int | None, Opt("Layers (activations; default: the recipe's).")] = None,
    d_model: Annotated[int | None, Opt("Model width (activations; default: the recipe's).")] = None,
    heads: Annotated[
        int | None, Opt("Attention heads (activations; default: the recipe's).")
    ] = None,
    expert_params: Annotated[float, Opt("Parameters in routed experts (sharded by --ep).")] = 0.0,
    draws: DrawsOpt = 100_000,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
    svg: SvgOpt = None,
    html: HtmlOpt = None,
) -> None:
    """FLOPs, GPU-hours, days, power, energy, cost and memory of a training run."""
    shape = commands.recipe_shape(recipe, seq_len) if recipe else {}
    active = _num(active_params, "active_params") or _num(params, "params")
    active = active if active is not None else shape.get("params_active")
    if active is None or tokens is None:
        raise typer.BadParameter("give RECIPE or --params/--active-params, and --tokens")
    attn = _num(attn_flops, "attn_flops")
    memory = commands.memory_spec(
        params=_num(params, "params") or shape.get("params") or active,
        expert_params=expert_params,
        layers=layers or shape.get("layers"),
        d_model=d_model or shape.get("d_model"),
        n_heads=heads or shape.get("n_heads"),
        seq_len=seq_len or shape.get("seq_len", 8192),
        gpus=gpus,
        tp=tp,
        pp=pp,
        ep=ep,
        zero=zero,
        micro_batch=micro_batch,
        recompute=recompute,
    )
    result = commands.plan_train(
        params_active=active,
        tokens=_num(tokens, "tokens"),
        accelerator=accelerator,
        precision=precision,
        num_gpus=gpus,
        mfu=_num(mfu, "mfu"),
        tflops_per_gpu=_num(tflops, "tflops"),
        goodput=_num(goodput, "goodput"),
        attn_flops_per_token=attn if attn is not None else shape.get("attn_flops_per_token", 0.0),
        pue=_num(pue, "pue"),
        price_per_gpu_hour=_num(price, "price"),
        capex_per_gpu=_num(capex_per_gpu, "capex_per_gpu"),
        life_years=_num(life_years, "life_years"),
        price_per_mwh=_num(price_per_mwh, "price_per_mwh"),
        memory=memory,
        draws=draws,
        seed=seed,
    )
    tables: list[Any] = [
        render.quantile_table(
            f"training on {gpus} x {accelerator} ({precision})",
            result["outputs"],
            render.TRAIN_KEYS,
        ),
        render.tornado_table("what moves GPU-hours", result["tornado"]["gpu_hours"]),
    ]
    if "memory" in result:
        tables.append(render.memory_table(result["memory"]))
    tornado = ("GPU-hours: tornado", result["tornado"]["gpu_hours"])
    _emit(result, as_json, tables, svg, tornado, html, "train")


@plan_app.command()
def serve(
    daily_users: N("Daily active users") = "1e8",
    queries: N("Queries per user per day") = "5",
    input_tokens: N("Input (prompt) tokens per query") = "1000",
    output_tokens: N("Output tokens per query") = "500",
    peak_to_average: N("Peak load over average load") = "2",
    params: N("Total parameters (weights in memory)") = "70e9",
    active_params: N("Active parameters per token; default: --params") = None,
    layers: N("Layers (KV cache size)") = "80",
    kv_heads: N("KV heads (KV cache size)") = "8",
    head_dim: N("Head dimension (KV cache size)") = "128",
    gpus_per_replica: N("Accelerators per model replica") = "8",
    accelerator: Annotated[str, Opt("Catalog name, e.g. h100-sxm.")] = "h100-sxm",
    precision: Annotated[str, Opt("bf16 or fp8 weights and compute.")] = "bf16",
    prefill_mfu: N("Prefill FLOPs utilisation; default: the catalog's") = None,
    decode_mbu: N("Decode memory-bandwidth utilisation; default: the catalog's") = None,
    prefill_tok_s: N("Prefill tokens/s per GPU (instead of --prefill-mfu)") = None,
    decode_tok_s: N("Decode tokens/s per GPU (instead of --decode-mbu)") = None,
    price: N("$ per GPU-hour; default: the catalog's") = None,
    pue: N("Facility power usage effectiveness") = "1.2",
    draws: DrawsOpt = 100_000,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
    svg: SvgOpt = None,
    html: HtmlOpt = None,
) -> None:
    """Accelerators, power and cost to serve D daily users at Q queries each."""
    raw = dict(locals())
    skip = ("accelerator", "precision", "draws", "seed", "as_json", "svg", "html")
    n = {k: _num(v, k) for k, v in raw.items() if k not in skip}
    result = commands.plan_serve(
        accelerator=accelerator,
        precision=precision,
        draws=draws,
        seed=seed,
        daily_users=n["daily_users"],
        queries_per_user=n["queries"],
        input_tokens=n["input_tokens"],
        output_tokens=n["output_tokens"],
        peak_to_average=n["peak_to_average"],
        params_total=n["params"],
        params_active=n["active_params"] or n["params"],
        layers=n["layers"],
        kv_heads=n["kv_heads"],
        head_dim=n["head_dim"],
        gpus_per_replica=n["gpus_per_replica"],
        prefill_mfu=n["prefill_mfu"],
        decode_mbu=n["decode_mbu"],
        prefill_tok_s_per_gpu=n["prefill_tok_s"],
        decode_tok_s_per_gpu=n["decode_tok_s"],
        price_per_gpu_hour=n["price"],
        pue=n["pue"],
    )
    tables = [
        render.quantile_table(f"serving on {accelerator}", result["outputs"], render.SERVE_KEYS),
        render.tornado_table("what moves the GPU count", result["tornado"]["gpus"]),
    ]
    _emit(result, as_json, tables, svg, ("GPUs: tornado", result["tornado"]["gpus"]), html, "serve")


@plan_app.command()
def fleet(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML, e.g. scenarios/meta-2025.yaml.")],
    draws: DrawsOpt = 20_000,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
    svg: SvgOpt = None,
    html: HtmlOpt = None,
) -> None:
    """A multi-year build-out by quarter: chips, GW, capex, depreciation, tax, cash, runway."""
    try:
        result = commands.plan_fleet(scenario, draws, seed)
    except ScenarioError as e:
        err.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    o = result["outputs"]
    checks = check_fleet(o) if result["scenario"] == "meta-2025" else []
    result["checks"] = checks
    tables: list[Any] = []
    if checks:
        tables.append(
            render.checks_table(f"{result['scenario']}: reproduced public figures", checks)
        )
    tables += [render.quantile_table(t, o, keys) for t, keys in render.fleet_tables(o)]
    first = next(iter(result["tornado"].items()), None)
    if first:
        tables.append(render.tornado_table(f"what moves {first[0]}", first[1]))
    _emit(result, as_json, tables, svg, first, html, "fleet", sources(scenario) if html else None)


@plan_app.command()
def validate(draws: DrawsOpt = 100_000, seed: SeedOpt = 0, as_json: JsonOpt = False) -> None:
    """Reproduce published training runs from their published inputs."""
    rows = validate_all(draws, seed)
    _emit({"runs": rows}, as_json, [render.validation_table(rows)], None, None)
    if not all(r["pass"] for r in rows):
        raise typer.Exit(1)
