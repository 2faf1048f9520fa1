"""The ``superlab`` command. Thin: it parses arguments and calls the packages."""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from superlab import __version__
from superlab.config import Recipe, RecipeError, load_recipe

app = typer.Typer(
    help="superlab: build a frontier-style language model end to end, from web pages to a "
    "served model and its cost. Start with `superlab run recipes/tiny.yaml`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect and validate recipes.", no_args_is_help=True)
app.add_typer(config_app, name="config")


def _add_plan_commands() -> None:
    from superlab.cli_plan import plan_app  # no torch: `superlab plan` stays fast

    app.add_typer(plan_app, name="plan")


_add_plan_commands()

err = Console(stderr=True)
out = Console()

RecipeArg = Annotated[Path, typer.Argument(help="Recipe YAML file, e.g. recipes/tiny.yaml.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a recipe field, e.g. --set train.steps=50 (repeatable).",
        metavar="FIELD=VALUE",
    ),
]
RunsDirOpt = Annotated[
    Path, typer.Option("--runs-dir", help="Where run directories go: <runs-dir>/<name>/.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or log lines.")]


AGAIN = "run the same command again to resume"  # after Ctrl-C, unless a command says more


def _fail(e: object, code: int) -> typer.Exit:
    """Say ``error: e`` on stderr; returns the exit to raise with ``code``."""
    err.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _interrupted(again: str = AGAIN) -> typer.Exit:
    """Say how to go on after Ctrl-C; returns the exit to raise (130)."""
    err.print(f"[yellow]interrupted[/]: {again}.")
    return typer.Exit(130)


def _load(path: Path, overrides: list[str] | None) -> Recipe:
    try:
        return load_recipe(path, overrides)
    except RecipeError as e:
        raise _fail(e, 2) from None


def _run(
    recipe: Recipe,
    runs_dir: Path,
    stages: list[str] | None,
    quiet: bool,
    again: str = AGAIN,
) -> None:
    from superlab.run import RunError, run_recipe
    from superlab.run.display import Display
    from superlab.run.runner import StageFailed
    from superlab.run.summary import summary_table

    display = Display(console=err, quiet=quiet)
    try:
        result = run_recipe(recipe, runs_dir, stages, display)
    except RunError as e:
        raise _fail(e, 2) from None
    except StageFailed as e:
        raise _fail(e, 1) from None
    except KeyboardInterrupt:
        raise _interrupted(again) from None
    out.print(summary_table(result))
    if result.nothing_to_do:
        out.print(f"Run '{recipe.name}' is already complete: nothing to do ({result.run.root}).")
    elif result.run.report.exists():
        out.print(f"Report: {result.run.report}")


@app.command()
def run(
    recipe: RecipeArg,
    stages: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated subset of stages to run, in pipeline order: "
            "data,train,sft,pref,rl,eval,serve,plan,report (default: all)."
        ),
    ] = None,
    runs_dir: RunsDirOpt = Path("runs"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Run a recipe's stages into <runs-dir>/<name>/, skipping finished ones (resumable)."""
    names = [s.strip() for s in stages.split(",") if s.strip()] if stages else None
    _run(_load(recipe, set_), runs_dir, names, quiet)


@app.command()
def data(
    recipe: RecipeArg,
    runs_dir: RunsDirOpt = Path("runs"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Run only the data stage (clean, dedup, tokenizer, shards); same as run --stages data."""
    _run(_load(recipe, set_), runs_dir, ["data"], quiet)


def _resumable(recipe: Recipe, runs_dir: Path, stage: str, quiet: bool, resume: bool) -> None:
    """Run one training stage (train, sft, pref, rl) alone. Without ``resume``, a stage that
    left checkpoints is refused (exit 2). Under torchrun, rank 0 runs the stage through the
    runner and every other rank trains in step with it, writing nothing."""
    from superlab.common import RunDir
    from superlab.post import launch as post_launch
    from superlab.train import launch as train_launch

    run_dir = RunDir(runs_dir / recipe.name)
    try:
        if stage == "train":
            train_launch.check_resume(run_dir, resume)
        else:
            post_launch.check_resume(run_dir, stage, resume)
        if train_launch.rank() != 0:
            if stage == "train":
                train_launch.train_worker(recipe, run_dir)
            else:
                post_launch.worker(recipe, run_dir, stage)
            return
    except (train_launch.ResumeRefused, post_launch.PostResumeRefused) as e:
        raise _fail(e, 2) from None
    _run(recipe, runs_dir, [stage], quiet, "run the same command with --resume to continue")


@app.command()
def train(
    recipe: RecipeArg,
    runs_dir: RunsDirOpt = Path("runs"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue from the newest complete checkpoint (ckpt/step-N/ with its "
            "state.json; half-written ones are ignored). Without it a run that already "
            "has checkpoints is refused, not overwritten.",
        ),
    ] = False,
) -> None:
    """Run only the train stage (as run --stages train, plus --resume). Under torchrun
    (torchrun --nproc-per-node N -m superlab train RECIPE) every rank trains with
    train.distributed (ddp or fsdp) and rank 0 writes."""
    _resumable(_load(recipe, set_), runs_dir, "train", quiet, resume)


PostResumeOpt = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Continue from the stage's newest complete ckpt/<stage>/step-N. Without it a "
        "stage that already has checkpoints is refused, not overwritten.",
    ),
]


def _post_stage(name: str, about: str) -> None:
    def command(
        recipe: RecipeArg,
        runs_dir: RunsDirOpt = Path("runs"),
        set_: SetOpt = None,
        quiet: QuietOpt = False,
        resume: PostResumeOpt = False,
    ) -> None:
        r = _load(recipe, set_)
        if getattr(r, name) is None:
            err.print(f"[red]error:[/] {recipe} has no {name} section", highlight=False)
            raise typer.Exit(2)
        _resumable(r, runs_dir, name, quiet, resume)

    command.__doc__ = (
        f"Run only the {name} stage ({about}); as run --stages {name}, plus --resume. "
        f"Checkpoints go to <run>/ckpt/{name}/step-N."
    )
    app.command(name=name)(command)


_post_stage("sft", "supervised fine-tuning on chat rows")
_post_stage("pref", "preference optimisation: DPO, IPO or SimPO")
_post_stage("rl", "GRPO with verifiable rewards")


@app.command("eval")
def eval_(
    recipe: RecipeArg,
    runs_dir: RunsDirOpt = Path("runs"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Evaluate a trained run's newest checkpoint as the recipe's eval section says (held-out
    perplexity, long-context probes, HLE file, contamination audit); writes <run>/eval.json.
    The eval section may differ from the one the run was trained with."""
    from superlab.common import StageError
    from superlab.eval.stage import eval_context
    from superlab.eval.stage import run as run_eval
    from superlab.run.display import Display

    display = Display(console=err, quiet=quiet)
    try:
        ctx = eval_context(_load(recipe, set_), runs_dir)
        with display.logging_to_console(ctx.log), display.stage("eval", ctx):
            summary = run_eval(ctx)
    except (StageError, OSError, ValueError) as e:
        raise _fail(e, 1) from None
    table = Table("figure", "value")
    for key, value in summary.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    out.print(table)
    out.print(f"Results: {ctx.run.eval}")


@app.command()
def compare(
    results: Annotated[
        list[Path],
        typer.Argument(
            help="Two or more eval.json files or run directories; or one run directory, "
            "to compare its base, SFT and preference checkpoints."
        ),
    ],
) -> None:
    """Compare eval results side by side; refuse (exit 2, saying what differs) when their
    settings differ: eval data, prompt format, decoding, seeds. Given one run directory,
    evaluate its newest base, SFT and preference checkpoints on the same held-out chat rows
    and sums (held-out chat loss, pass@1, pass@k)."""
    from superlab.eval.compare import IncomparableError, load_result
    from superlab.eval.compare import compare as compare_results

    if len(results) == 1:
        _compare_checkpoints(results[0])
        return
    names = [p.name if p.is_dir() else p.parent.name or str(p) for p in results]
    try:
        table = compare_results([load_result(p) for p in results], names)
    except (IncomparableError, OSError, ValueError) as e:
        raise _fail(e, 2) from None
    shown = Table("figure", *names)
    for label, values in table.rows:
        shown.add_row(label, *(f"{v:.4g}" if isinstance(v, float) else str(v) for v in values))
    out.print(shown)
    for section, absent in table.missing.items():
        out.print(f"{section}: not in {', '.join(absent)}, left out")


def _compare_checkpoints(run_path: Path) -> None:
    from superlab.common import RunDir, StageError
    from superlab.post.compare import compare_checkpoints

    try:
        if not (run_path / "recipe.yaml").is_file():
            raise StageError(f"{run_path}: not a run directory (no recipe.yaml); give two or more")
        figures = compare_checkpoints(load_recipe(run_path / "recipe.yaml"), RunDir(run_path))
    except (StageError, RecipeError, OSError) as e:
        raise _fail(e, 2) from None
    labels = list(figures)
    shown = Table("figure", *labels)
    first = figures[labels[0]]
    k = first["arithmetic"]["samples"]

    def where(f: dict[str, Any]) -> str:  # relative to the run directory
        path = Path(f["checkpoint"])
        return str(path.relative_to(run_path)) if path.is_relative_to(run_path) else str(path)

    rows = [("checkpoint", where)]
    if "heldout_chat_loss" in first:
        rows.append(("held-out chat loss", lambda f: f"{f['heldout_chat_loss']:.4f}"))
    rows += [
        ("sums pass@1", lambda f: f"{f['arithmetic']['pass@1']:.3f}"),
        (f"sums pass@{k}", lambda f: f"{f['arithmetic'][f'pass@{k}']:.3f}"),
    ]
    for name, cell in rows:
        shown.add_row(name, *(cell(figures[label]) for label in labels))
    out.print(shown)


# `superlab serve`'s flags: the serve setting each overrides, and what it does. A flag has
# the setting's type (a path for the policy); one not given keeps the run recipe's value.
SERVE_FLAGS = {
    "host": "Address to bind.",
    "port": "TCP port.",
    "policy": "Safety policy YAML (None: built in).",
    "max_batch": "Sequences decoded together.",
    "prefill_tokens": "Prompt tokens prefilled per engine step.",
    "prefill_share": "Prefill time per step, times the decode time, while sequences decode.",
    "kv_block_size": "Positions per KV cache block.",
    "kv_cache_blocks": "KV cache blocks per layer group.",
    "prefix_caching": "Reuse KV blocks of prompt prefixes seen before.",
    "queue_size": "Waiting requests before 429.",
    "max_body_bytes": "Larger bodies get 413.",
    "max_tokens_limit": "Largest max_tokens.",
    "max_n": "Largest n.",
    "request_timeout_s": "Per request, then 408.",
    "drain_timeout_s": "On SIGTERM, time for requests in flight.",
    "log_user_text": "Refusal logs carry the user's text.",
    "docs": "Serve /docs and /openapi.json.",
}


def _with_serve_flags(command: Callable[..., None]) -> Callable[..., None]:
    """``command(..., **settings)`` with an option ``--<setting>`` (None when not given) for
    every ``SERVE_FLAGS`` entry, after its own parameters; the help says the default."""
    from superlab.config.recipe import ServeConfig

    default = ServeConfig()

    def flag(field: str, what: str) -> inspect.Parameter:
        kind = Path if field == "policy" else ServeConfig.model_fields[field].annotation
        help_ = f"{what} (default: the run recipe's serve.{field}, else {getattr(default, field)})"
        option = typer.Option(help=help_, show_default=False)
        return inspect.Parameter(
            field,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[kind | None, option],
        )

    own = list(inspect.signature(command, eval_str=True).parameters.values())[:-1]
    flags = [flag(field, what) for field, what in SERVE_FLAGS.items()]
    command.__signature__ = inspect.Signature([*own, *flags])  # type: ignore[attr-defined]
    return command


@app.command()
@_with_serve_flags
def serve(
    path: Annotated[
        Path,
        typer.Argument(help="Run directory, ckpt/ or step-N directory, or a Hugging Face dir."),
    ],
    api_keys_file: Annotated[
        Path | None,
        typer.Option(
            help="API keys, one per line: KEY, then rpm=N and tokens=N if wanted (or "
            "SUPERLAB_API_KEYS)."
        ),
    ] = None,
    checkpoint: Annotated[
        str | None,
        typer.Option(
            help="With a run directory: base, sft, pref or rl (that stage's newest checkpoint), "
            "or step-N / STAGE/step-N. Default: the newest post-trained, else base."
        ),
    ] = None,
    **settings: Any,
) -> None:
    """Serve a model over an OpenAI-compatible HTTP API (see docs/serve.md). Settings come
    from the run's recipe.yaml (its serve section) when PATH is in a run; a flag overrides
    it. SIGTERM drains (serve.drain_timeout_s) and exits 0; if the engine dies the server
    exits 70 for a supervisor to restart it."""
    from superlab.serve.load import named_checkpoint, serve_config
    from superlab.serve.load import serve as serve_model

    policy = settings["policy"]
    overrides = {**settings, "policy": str(policy) if policy else None}
    try:
        if checkpoint is not None:
            path = named_checkpoint(path, checkpoint)
        cfg, sources = serve_config(path, overrides)
        for name, source in sorted(sources.items()):
            err.print(f"serve.{name} = {getattr(cfg, name)!r} (from {source})", highlight=False)
        code = serve_model(path, cfg, api_keys_file)
    except (FileNotFoundError, ValueError) as e:  # RecipeError and pydantic's are ValueErrors
        raise _fail(e, 2) from None
    raise typer.Exit(code)


@app.command()
def ablate(
    grid: Annotated[
        Path, typer.Argument(help="Ablation grid YAML, e.g. recipes/ablate-llama4.yaml.")
    ],
    runs_dir: RunsDirOpt = Path("runs"),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the runs the grid expands to; run nothing.")
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Runs at once, each in its own process (default: the grid's `jobs`, else 1).",
        ),
    ] = None,
    seeds: Annotated[
        str | None,
        typer.Option("--seeds", help="Only these of the grid's seeds, comma-separated (e.g. 0)."),
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Run an ablation grid (base recipe x axes x seeds, plus a dense baseline), resumably,
    then write <runs-dir>/<grid>/ablation.json and report.html."""
    from superlab.ablate.grid import GridError, expand
    from superlab.ablate.run import ablate as run_grid
    from superlab.run import RunError
    from superlab.run.display import Display
    from superlab.run.runner import StageFailed

    try:
        config, runs = expand(grid)
        chosen = None
        if seeds is not None:
            try:
                chosen = [int(x) for x in seeds.split(",") if x.strip()]
            except ValueError:
                raise GridError(f"--seeds {seeds!r}: give integers separated by commas") from None
            runs = [r for r in runs if r.seed in chosen]
        if dry_run:
            for spec in runs:
                out.print(f"{spec.name}  ({spec.config}, seed {spec.seed})")
            return
        display = Display(console=err, quiet=quiet)
        jobs = jobs or config.jobs
        if jobs > 1:
            err.print(f"{len(runs)} runs, {jobs} at a time; each run logs to its run.log")
        result = run_grid(
            grid,
            runs_dir,
            display,
            lambda k, n, spec: err.print(f"[bold]run {k + 1}/{n}[/]: {spec.name}"),
            jobs=jobs,
            on_done=lambda k, n, name: err.print(f"[bold]done {k}/{n}[/]: {name}"),
            seeds=chosen,
        )
    except (GridError, RunError, StageFailed) as e:
        raise _fail(e, 2 if isinstance(e, GridError | RunError) else 1) from None
    except KeyboardInterrupt:
        raise _interrupted() from None
    shown = Table("configuration", "seeds", "held-out loss", "recall same", "recall cross")
    for c in result["configs"]:
        cells = [c[f]["mean"] for f in ("heldout_loss", "recall_same", "recall_cross")]
        shown.add_row(
            c["config"], str(c["seeds"]), *("-" if v is None else f"{v:.4g}" for v in cells)
        )
    out.print(shown)
    out.print(f"Report: {runs_dir / config.name / 'report.html'}")


@app.command("export")
def export(
    path: Annotated[Path, typer.Argument(help="A run directory, its ckpt/ or a ckpt/step-N/.")],
    out_dir: Annotated[Path, typer.Argument(help="Where the Hugging Face folder goes.")],
    arch: Annotated[
        str, typer.Option(help="Hugging Face architecture: llama, mixtral, llama4, qwen3_moe.")
    ] = "llama",
) -> None:
    """Export a run's newest checkpoint as a Hugging Face folder: config.json, safetensors,
    and the tokenizer with the chat template (transformers' apply_chat_template gives our ids)."""
    from superlab.data.chat.export import export_run

    try:
        ckpt = export_run(path, out_dir, arch)  # type: ignore[arg-type]  # export_hf checks it
    except (OSError, ValueError) as e:
        raise _fail(e, 1) from None
    out.print(f"Exported {ckpt} to {out_dir}")


@app.command()
def mix(
    grid: Annotated[Path, typer.Argument(help="Mixture grid YAML, e.g. recipes/mix-search.yaml.")],
    runs_dir: RunsDirOpt = Path("runs"),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the runs the search makes; run nothing.")
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", min=1, help="Runs at once (default: the grid's `jobs`)."),
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Search data mixtures (RegMix proxies + regression, or leave-one-source-out) on one
    shared data stage, then write <runs-dir>/<grid>/mix.json and report.html."""
    from superlab.ablate.grid import GridError
    from superlab.mix.run import mix as run_mix
    from superlab.mix.run import plan
    from superlab.run import RunError
    from superlab.run.display import Display
    from superlab.run.runner import StageFailed

    try:
        if dry_run:
            for r in plan(grid, runs_dir):
                w = r["weights"]
                shown = (
                    "weights drawn later"
                    if w is None
                    else ", ".join(f"{k}={v:.3f}" for k, v in w.items())
                )
                out.print(f"{r['run']}  ({r['kind']}; {shown})", highlight=False)
            return
        display = Display(console=err, quiet=quiet)
        result = run_mix(
            grid,
            runs_dir,
            display,
            jobs,
            lambda k, n, spec: err.print(f"[bold]run {k + 1}/{n}[/]: {spec.name}"),
            lambda k, n, name: err.print(f"[bold]done {k}/{n}[/]: {name}"),
        )
    except (GridError, RunError, StageFailed, ValueError) as e:
        raise _fail(e, 1 if isinstance(e, StageFailed) else 2) from None
    except KeyboardInterrupt:
        raise _interrupted() from None
    shown = Table("mixture", "target (mean ± 95% CI)")
    for role, s in result["by_role"].items():
        ci = "" if s["ci95"] is None else f" ± {s['ci95']:.4g}"
        shown.add_row(role, "-" if s["mean"] is None else f"{s['mean']:.4g}{ci}")
    out.print(shown)
    if result["mode"] == "regmix":
        out.print(f"Spearman (cross-validated): {result['regression']['spearman_cv']:.3f}")
    out.print(f"Report: {runs_dir / result['grid'] / 'report.html'}")


@app.command()
def stages() -> None:
    """List the stages of a run, what each does and what it needs first."""
    from superlab.run import STAGES

    table = Table("stage", "does", "needs")
    for s in STAGES:
        table.add_row(s.name, s.about, ", ".join(s.needs) or "-")
    out.print(table)


@config_app.command("show")
def config_show(
    recipe: RecipeArg,
    set_: SetOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="yaml or json.")] = "yaml",
) -> None:
    """Print the resolved recipe: every field, defaults filled in."""
    resolved = _load(recipe, set_).resolved()
    if fmt == "json":
        sys.stdout.write(json.dumps(resolved, indent=2) + "\n")
    elif fmt == "yaml":
        sys.stdout.write(yaml.safe_dump(resolved, sort_keys=False))
    else:
        err.print(f"[red]error:[/] --format must be yaml or json, got {fmt!r}")
        raise typer.Exit(2)


@config_app.command("check")
def config_check(recipe: RecipeArg, set_: SetOpt = None) -> None:
    """Validate a recipe; exit 0 when it is usable, 2 with a one-line reason when not."""
    r = _load(recipe, set_)
    out.print(f"{recipe}: ok (run '{r.name}')")


safety_app = typer.Typer(help="Evaluate the serving safety policy.", no_args_is_help=True)
app.add_typer(safety_app, name="safety")


@safety_app.command("eval")
def safety_eval(
    set_file: Annotated[
        Path, typer.Argument(help="Labelled JSONL set (prompt or messages, label, category).")
    ],
    policy: Annotated[
        Path | None, typer.Option(help="Safety policy YAML (default: the built-in policy).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Refusal rate per category, false-refusal rate and confusion matrix of a policy."""
    from superlab.serve.safety.evaluate import SetError, eval_set
    from superlab.serve.safety.policy import PolicyError

    try:
        text = eval_set(set_file, policy, as_json)
    except (SetError, PolicyError, OSError, yaml.YAMLError) as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    sys.stdout.write(text + "\n")


@app.command()
def version() -> None:
    """Print superlab's version."""
    out.print(f"superlab {__version__}")


def main() -> None:
    """Entry point of the ``superlab`` console script."""
    app()
