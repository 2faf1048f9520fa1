"""``superlab plan ...``: training, serving and fleet numbers. Thin: parses, calls the package.

Numeric options take a number (``0.4``), a uniform range (``0.38:0.43``), a
triangular ``low:mode:high`` or ``lognormal:p10:p90``; every output is then
reported as p10/p50/p90 over Monte Carlo draws. Every input has a valid range
(``superlab.plan.inputs``): a value outside it, or a distribution that can draw
outside it, is refused in one line naming the option, exit code 2.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from superlab.plan import commands, render
from superlab.plan.catalog import UnknownAcceleratorError
from superlab.plan.estimate import attention_flops_per_token
from superlab.plan.inputs import (
    AT_LEAST_1,
    COUNT,
    DRAWS,
    FRACTION,
    NONNEGATIVE,
    POSITIVE,
    PUE,
    SEED,
    SHARE,
    SHARE_BELOW_1,
    PlanInputError,
    Range,
    accelerator_peak,
    choice,
    integer,
    number,
)
from superlab.plan.montecarlo import Input, quantile, support
from superlab.plan.scenario import ScenarioError
from superlab.plan.serving import DECODE_MBU, PREFILL_MFU
from superlab.plan.sources import sources
from superlab.plan.validation import check_fleet, validate_all

plan_app = typer.Typer(
    help="Compute, power, cost and finance: what a lab can train and serve.", no_args_is_help=True
)
out, err = Console(), Console(stderr=True)

SEQ_LEN_DEFAULT = 8192  # context for attention FLOPs and activations without a recipe's
ZERO_STAGE = Range(low=0, high=3, integer=True)  # ZeRO/FSDP: 0 replicates, 3 shards all


@dataclass(frozen=True)
class Numeric:
    """An ``N`` or ``Int`` option's valid range, and the value it reads as when not given."""

    range: Range
    default: str | None = None
    integer: bool = False

    def read(self, text: str | None, name: str) -> Input | None:
        """``text``, else the default, parsed and checked against the range; None if neither."""
        text = self.default if text is None else text
        return (integer if self.integer else number)(text, name, self.range)


def N(what: str, rng: Range | None = None, default: str | None = None) -> Any:
    """A numeric option that also takes a range or a distribution, valid in ``rng`` (None:
    the command checks it, as --tflops against the peak); ``default`` is shown and used."""
    shown = escape(f" [default: {default}]") if default else ""
    help_ = f"{what} (number, lo:hi, lo:mode:hi or lognormal:p10:p90){shown}"
    spec = () if rng is None else (Numeric(rng, default),)
    return Annotated[str | None, typer.Option(help=help_), *spec]


def Int(what: str, rng: Range, default: int | None = None) -> Any:
    """A whole-number option in ``rng`` (read and range-checked here, so errors are one
    line); ``default`` is shown and used."""
    shown = escape(f" [default: {default:,}]") if default is not None else ""
    spec = Numeric(rng, None if default is None else str(default), integer=True)
    return Annotated[str | None, typer.Option(help=what + shown, metavar="INTEGER"), spec]


def Opt(what: str) -> Any:
    """A plain option with help text."""
    return typer.Option(help=what)


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
SeedOpt = Int("Random seed >= 0 (same seed = same output).", SEED, 0)
SvgOpt = Annotated[Path | None, typer.Option(help="Write the tornado chart as SVG here.")]
HtmlOpt = Annotated[
    Path | None, typer.Option(help="Write a self-contained HTML page (tables, charts) here.")
]


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Any input, scenario or output-file error: one line on stderr, exit code 2."""
    try:
        yield
    except (PlanInputError, ScenarioError, UnknownAcceleratorError) as e:
        err.print(f"[red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _exclusive(given: dict[str, Any]) -> None:
    """At most one of these options may be given."""
    names = [f"--{k.replace('_', '-')}" for k, v in given.items() if v is not None]
    if len(names) > 1:
        raise PlanInputError(names[1], f"give {names[0]} or {names[1]}, not both")


def _numeric(params: Iterable[inspect.Parameter]) -> dict[str, Numeric]:
    """The ``N`` and ``Int`` options among ``params``: name -> range and default."""
    return {
        p.name: m
        for p in params
        for m in getattr(p.annotation, "__metadata__", ())
        if isinstance(m, Numeric)
    }


def _inputs(command: Callable[..., None]) -> dict[str, Numeric]:
    """A ``_command``'s own ``N`` and ``Int`` options, not the shared ones it adds."""
    return _numeric(inspect.signature(inspect.unwrap(command), eval_str=True).parameters.values())


def _not_above(small: Input | None, big: Input | None, small_opt: str, big_opt: str) -> None:
    """``small`` can never exceed ``big`` (active parameters and total parameters)."""
    if small is not None and big is not None and support(small)[0] > support(big)[1]:
        raise PlanInputError(small_opt, f"cannot exceed {big_opt}")


@dataclass(frozen=True)
class Shared:
    """The options every command takes: Monte Carlo ``draws`` and ``seed`` (checked), and
    where the result goes (``--json``, ``--svg``, ``--html``)."""

    draws: int
    seed: int
    as_json: bool
    svg: Path | None = None
    html: Path | None = None

    def emit(
        self,
        result: dict[str, Any],
        tables: list[Any],
        tornado: tuple[str, list[dict[str, Any]]] | None = None,
        command: str = "",
        sources: dict[str, str] | None = None,
    ) -> None:
        """Write the SVG and HTML files asked for, then print JSON or the tables."""
        svg, html = self.svg, self.html
        try:
            if svg is not None and tornado is not None:
                from superlab.report.plan_charts import tornado_svg

                svg.write_text(tornado_svg(*tornado), "utf-8")
        except OSError as e:
            raise PlanInputError("--svg", f"cannot write {svg}: {e.strerror or e}") from None
        if html is not None:
            from superlab.report.plan_page import write_plan_page

            try:
                write_plan_page(html, command, result, sources)
            except OSError as e:
                raise PlanInputError("--html", f"cannot write {html}: {e.strerror or e}") from None
        if self.as_json:
            out.print_json(json.dumps(result, default=float))
            return
        for t in tables:
            out.print(t)


def _command(draws: int, charts: bool = True) -> Callable[[Callable[..., None]], Any]:
    """Register a command taking ``Shared``'s options after its own (``--svg`` and ``--html``
    only with ``charts``); it gets them checked as ``shared``, and its input errors exit 2."""
    options = [
        ("draws", Int("Monte Carlo draws, 1 to 10,000,000.", DRAWS, draws), None),
        ("seed", SeedOpt, None),
        ("as_json", JsonOpt, False),
        *([("svg", SvgOpt, None), ("html", HtmlOpt, None)] if charts else []),
    ]
    kw_only = inspect.Parameter.KEYWORD_ONLY
    added = [inspect.Parameter(n, kw_only, annotation=a, default=d) for n, a, d in options]
    numeric = _numeric(added)  # draws and seed

    def register(fn: Callable[..., None]) -> Any:
        own = inspect.signature(fn, eval_str=True)

        @functools.wraps(fn)
        def command(**kw: Any) -> None:
            given = {name: kw.pop(name) for name, _, _ in options}
            with _one_line_errors():
                given.update({k: spec.read(given[k], k) for k, spec in numeric.items()})
                fn(**kw, shared=Shared(**given))

        mine = [p for p in own.parameters.values() if p.name != "shared"]
        command.__signature__ = own.replace(parameters=[*mine, *added])  # type: ignore[attr-defined]
        return plan_app.command()(command)

    return register


@_command(draws=100_000)
def train(
    recipe: Annotated[Path | None, typer.Argument(help="Recipe YAML (model shape).")] = None,
    params: N("Total parameters, > 0", POSITIVE) = None,
    active_params: N("Active parameters per token (MoE), > 0; default: --params", POSITIVE) = None,
    tokens: N("Training tokens, > 0", POSITIVE) = None,
    attn_flops: N(
        "Attention training FLOPs per token, >= 0; default: the recipe's, else counted "
        "from --layers, --d-model and --seq-len (causal full attention), else 0",
        NONNEGATIVE,
    ) = None,
    accelerator: Annotated[
        str, Opt("Catalog name (superlab.plan catalog), e.g. h100-sxm, b200.")
    ] = "h100-sxm",
    precision: Annotated[
        str, Opt("bf16 or fp8: which dense peak MFU is measured against.")
    ] = "bf16",
    gpus: Int("Number of accelerators, >= 1.", COUNT, 1024) = None,
    mfu: N(
        "Model FLOPs utilisation against the dense peak, in (0, 1]; default 0.4", FRACTION
    ) = None,
    tflops: N("Achieved TFLOP/s per GPU, in (0, peak] (instead of --mfu)") = None,
    goodput: N("Fraction of wall-clock that is productive training, in (0, 1]", FRACTION) = "0.9",
    pue: N("Facility power usage effectiveness, >= 1", PUE) = "1.2",
    price: N("Rented $ per GPU-hour, >= 0; default: the catalog's", NONNEGATIVE) = None,
    capex_per_gpu: N(
        "Owned: $ per accelerator, >= 0, amortised over --life-years", NONNEGATIVE
    ) = None,
    life_years: N("Depreciation life of owned accelerators, years, > 0", POSITIVE) = "5",
    price_per_mwh: N("Electricity $ per MWh (owned cost), >= 0", NONNEGATIVE) = "80",
    seq_len: Int(
        f"Context length for attention FLOPs and activations, >= 1 (default: the recipe's, "
        f"else {SEQ_LEN_DEFAULT:,}).",
        COUNT,
    ) = None,
    tp: Int("Tensor-parallel degree (memory check), >= 1.", COUNT, 1) = None,
    pp: Int("Pipeline-parallel degree (memory check), >= 1.", COUNT, 1) = None,
    ep: Int("Expert-parallel degree (memory check), >= 1, divides DP.", COUNT, 1) = None,
    zero: Int("ZeRO/FSDP stage 0-3: what is sharded across data parallel.", ZERO_STAGE, 1) = None,
    micro_batch: Int("Sequences per GPU per micro-batch (activations), >= 1.", COUNT, 1) = None,
    recompute: Annotated[
        str, Opt("Activation recomputation: none, selective or full.")
    ] = "selective",
    layers: Int(
        "Layers, >= 1 (attention FLOPs, activations; default: the recipe's).", COUNT
    ) = None,
    d_model: Int(
        "Model width (attention FLOPs, activations; default: the recipe's).", COUNT
    ) = None,
    heads: Int(
        "Attention heads, divide --d-model (activations; default: the recipe's).", COUNT
    ) = None,
    expert_params: N(
        "Parameters in routed experts (sharded by --ep), in [0, --params]", NONNEGATIVE
    ) = None,
    *,
    shared: Shared,
) -> None:
    """FLOPs, GPU-hours, days, power, energy, cost and memory of a training run."""
    result, tables = _train(**locals())
    shared.emit(result, tables, ("GPU-hours: tornado", result["tornado"]["gpu_hours"]), "train")


TRAIN_INPUTS = _inputs(train)  # plan train's numeric options: name -> range and default


def _train(**a: Any) -> tuple[dict[str, Any], list[Any]]:
    """``plan train``'s inputs, checked, and its result and tables."""
    from superlab.config import RecipeError

    def read(name: str) -> Any:  # a numeric option, checked; its default when not given
        return TRAIN_INPUTS[name].read(a[name], name)

    peak = accelerator_peak(a["accelerator"], a["precision"])
    choice(a["recompute"], "recompute", ("none", "selective", "full"))
    ints = {k: read(k) for k in ("gpus", "tp", "pp", "ep", "micro_batch")}
    ints.update({k: read(k) for k in ("seq_len", "layers", "d_model", "heads")})
    gpus, tp, pp, ep, zero = ints["gpus"], ints["tp"], ints["pp"], ints["ep"], read("zero")
    if gpus % (tp * pp):
        raise PlanInputError(
            "--gpus", f"must be a multiple of --tp x --pp ({tp} x {pp} = {tp * pp}), got {gpus}"
        )
    dp = gpus // (tp * pp)
    if dp % ep:
        raise PlanInputError(
            "--ep", f"must divide the data-parallel degree {dp} (--gpus / (--tp x --pp))"
        )
    try:
        shape = commands.recipe_shape(a["recipe"], ints["seq_len"]) if a["recipe"] else {}
    except RecipeError as e:
        raise PlanInputError("RECIPE", str(e)) from None
    params = read("params")
    active = read("active_params")
    _not_above(active, params, "--active-params", "--params")
    active = active if active is not None else params
    active = active if active is not None else shape.get("params_active")
    tokens = read("tokens")
    if active is None or tokens is None:
        missing = "--tokens" if active is not None else "--params"
        raise PlanInputError(missing, "give RECIPE or --params (or --active-params), and --tokens")
    _exclusive({"mfu": a["mfu"], "tflops": a["tflops"]})
    layers = ints["layers"] or shape.get("layers")
    d_model = ints["d_model"] or shape.get("d_model")
    heads = ints["heads"] or shape.get("n_heads")
    seq_len = ints["seq_len"] or shape.get("seq_len", SEQ_LEN_DEFAULT)
    attn = read("attn_flops")
    if attn is None and "attn_flops_per_token" in shape:
        attn = shape["attn_flops_per_token"]
    elif attn is None and layers and d_model:  # no recipe: the shape given here
        try:
            attn = attention_flops_per_token(layers, d_model, seq_len, ints["heads"])
        except ValueError as e:
            raise PlanInputError("--heads" if ints["heads"] else "--d-model", str(e)) from None
    total = params if params is not None else shape.get("params") or active
    expert = read("expert_params")
    _not_above(expert, total, "--expert-params", "--params")
    memory = commands.memory_spec(
        params=total,
        expert_params=0.0 if expert is None else quantile(expert, 0.5),
        layers=layers,
        d_model=d_model,
        n_heads=heads,
        seq_len=seq_len,
        gpus=gpus,
        tp=tp,
        pp=pp,
        ep=ep,
        zero=zero,
        micro_batch=ints["micro_batch"],
        recompute=a["recompute"],
    )
    result = commands.plan_train(
        params_active=active,
        tokens=tokens,
        accelerator=a["accelerator"],
        precision=a["precision"],
        num_gpus=gpus,
        mfu=read("mfu"),
        tflops_per_gpu=number(a["tflops"], "tflops", Range(low=0, high=peak, low_open=True)),
        goodput=read("goodput"),
        attn_flops_per_token=0.0 if attn is None else attn,
        pue=read("pue"),
        price_per_gpu_hour=read("price"),
        capex_per_gpu=read("capex_per_gpu"),
        life_years=read("life_years"),
        price_per_mwh=read("price_per_mwh"),
        memory=memory,
        draws=a["shared"].draws,
        seed=a["shared"].seed,
    )
    tables: list[Any] = [
        render.quantile_table(
            f"training on {gpus} x {a['accelerator']} ({a['precision']})",
            result["outputs"],
            render.TRAIN_KEYS,
        ),
        render.tornado_table("what moves GPU-hours", result["tornado"]["gpu_hours"]),
    ]
    if "memory" in result:
        tables.append(render.memory_table(result["memory"]))
    return result, tables


@_command(draws=100_000)
def serve(
    daily_users: N("Daily active users, > 0", POSITIVE, "1e8") = None,
    queries: N("Queries per user per day, > 0", POSITIVE, "5") = None,
    input_tokens: N(
        "Input (prompt) tokens per query, >= 0; sets the KV cache", NONNEGATIVE, "1000"
    ) = None,
    output_tokens: N("Output tokens per query, > 0; sets the KV cache", POSITIVE, "500") = None,
    input_tokens_per_day: N(
        "Input tokens per day, >= 0 (with --output-tokens-per-day, instead of users x queries)",
        NONNEGATIVE,
    ) = None,
    output_tokens_per_day: N("Output tokens per day, > 0", POSITIVE) = None,
    cache_hit_rate: N(
        "Share of input tokens served from a prefix/KV cache, not computed, in [0, 1]", SHARE, "0"
    ) = None,
    peak_to_average: N("Peak load over average load, >= 1", AT_LEAST_1, "2") = None,
    params: N("Total parameters (weights in memory), > 0", POSITIVE, "70e9") = None,
    active_params: N(
        "Active parameters per token, in (0, --params]; default: --params", POSITIVE
    ) = None,
    layers: N("Layers (KV cache size), >= 1", AT_LEAST_1, "80") = None,
    kv_heads: N("KV heads (KV cache size), >= 1", AT_LEAST_1, "8") = None,
    head_dim: N("Head dimension (KV cache size), >= 1", AT_LEAST_1, "128") = None,
    gpus_per_replica: N("Accelerators per model replica, an integer >= 1", COUNT, "8") = None,
    disaggregated: Annotated[
        bool,
        typer.Option(
            "--disaggregated/--colocated",
            help="Separate prefill and decode pools (DeepSeek's), or replicas doing both.",
        ),
    ] = False,
    prefill_gpus_per_replica: N(
        "Accelerators per prefill replica (--disaggregated); default: --gpus-per-replica", COUNT
    ) = None,
    decode_gpus_per_replica: N(
        "Accelerators per decode replica (--disaggregated); default: --gpus-per-replica", COUNT
    ) = None,
    gpus_per_node: N("Accelerators per node (nodes_avg; per-node throughputs)", COUNT, "8") = None,
    accelerator: Annotated[str, Opt("Catalog name, e.g. h100-sxm.")] = "h100-sxm",
    precision: Annotated[str, Opt("bf16 or fp8 weights and compute.")] = "bf16",
    prefill_mfu: N(
        f"Prefill FLOPs utilisation, in (0, 1]; default: {PREFILL_MFU}", FRACTION
    ) = None,
    decode_mbu: N(
        f"Decode memory-bandwidth utilisation, in (0, 1]; default: {DECODE_MBU}", FRACTION
    ) = None,
    prefill_tok_s: N("Prefill tokens/s per GPU, > 0 (instead of --prefill-mfu)", POSITIVE) = None,
    decode_tok_s: N("Decode tokens/s per GPU, > 0 (instead of --decode-mbu)", POSITIVE) = None,
    prefill_tok_s_per_node: N(
        "Prefill input tokens/s per node, > 0 (instead of --prefill-mfu)", POSITIVE
    ) = None,
    decode_tok_s_per_node: N(
        "Decode output tokens/s per node, > 0 (instead of --decode-mbu)", POSITIVE
    ) = None,
    prefill_measured_hit_rate: N(
        "Share of cache hits among the input tokens a given prefill throughput counts, in "
        "[0, 1); DeepSeek's 73.7k/s per node includes its 56.3% hits. Default 0: the "
        "throughput counts computed tokens only",
        SHARE_BELOW_1,
    ) = None,
    price: N("$ per GPU-hour, >= 0; default: the catalog's", NONNEGATIVE) = None,
    pue: N("Facility power usage effectiveness, >= 1", PUE, "1.2") = None,
    *,
    shared: Shared,
) -> None:
    """Accelerators, power and cost to serve a day's tokens: users x queries, or tokens/day."""
    raw = dict(locals())
    accelerator_peak(accelerator, precision)
    for phase, rate in (("prefill", "mfu"), ("decode", "mbu")):  # one way to give each speed
        ways = (f"{phase}_{rate}", f"{phase}_tok_s", f"{phase}_tok_s_per_node")
        for a, b in itertools.combinations(ways, 2):
            _exclusive({a: raw[a], b: raw[b]})
    if prefill_measured_hit_rate is not None and not (prefill_tok_s or prefill_tok_s_per_node):
        raise PlanInputError(
            "--prefill-measured-hit-rate", "applies to --prefill-tok-s(-per-node): give one"
        )
    per_day = (input_tokens_per_day, output_tokens_per_day)
    if (per_day[0] is None) != (per_day[1] is None):
        missing = "--output-tokens-per-day" if per_day[1] is None else "--input-tokens-per-day"
        raise PlanInputError(
            missing, "give both --input-tokens-per-day and --output-tokens-per-day"
        )
    if per_day[0] is not None:
        _exclusive({"input_tokens_per_day": input_tokens_per_day, "daily_users": daily_users})
        _exclusive({"input_tokens_per_day": input_tokens_per_day, "queries": queries})
    if not disaggregated:
        for k in ("prefill_gpus_per_replica", "decode_gpus_per_replica"):
            if raw[k] is not None:
                raise PlanInputError(f"--{k.replace('_', '-')}", "applies to --disaggregated")
    n: dict[str, Input | None] = {}
    for k, spec in SERVE_INPUTS.items():
        if per_day[0] is not None and k in ("daily_users", "queries"):
            continue
        n[SERVE_NAMES.get(k, k)] = spec.read(raw[k], k)
    _not_above(n["params_active"], n["params_total"], "--active-params", "--params")
    n["params_active"] = n["params_active"] or n["params_total"]
    result = commands.plan_serve(
        accelerator=accelerator,
        precision=precision,
        disaggregated=disaggregated,
        draws=shared.draws,
        seed=shared.seed,
        **n,
    )
    mode = "disaggregated prefill/decode" if disaggregated else "co-located"
    tables = [
        render.quantile_table(
            f"serving on {accelerator} ({precision}, {mode})",
            result["outputs"],
            render.SERVE_KEYS,
        ),
        render.tornado_table("what moves the GPU count", result["tornado"]["gpus"]),
    ]
    tornado = ("GPUs: tornado", result["tornado"]["gpus"])
    shared.emit(result, tables, tornado, "serve")


SERVE_INPUTS = _inputs(serve)  # plan serve's numeric options: name -> range and default
# Names the serving model uses for the CLI's shorter ones.
SERVE_NAMES = {
    "queries": "queries_per_user",
    "params": "params_total",
    "active_params": "params_active",
    "prefill_tok_s": "prefill_tok_s_per_gpu",
    "decode_tok_s": "decode_tok_s_per_gpu",
    "price": "price_per_gpu_hour",
}


@_command(draws=20_000)
def fleet(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML, e.g. scenarios/meta-2025.yaml.")],
    *,
    shared: Shared,
) -> None:
    """A multi-year build-out by quarter: chips, GW, capex, depreciation, tax, cash, runway."""
    result = commands.plan_fleet(scenario, shared.draws, shared.seed)
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
    srcs = sources(scenario) if shared.html else None
    shared.emit(result, tables, first, "fleet", srcs)


@_command(draws=100_000, charts=False)
def validate(*, shared: Shared) -> None:
    """Reproduce published training and serving runs from their published inputs."""
    rows = validate_all(shared.draws, shared.seed)
    shared.emit({"runs": rows}, [render.validation_table(rows)])
    if not all(r["pass"] for r in rows):
        raise typer.Exit(1)
