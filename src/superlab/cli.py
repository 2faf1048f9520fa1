"""The ``superlab`` command. Thin: it parses arguments and calls the packages."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

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


def _load(path: Path, overrides: list[str] | None) -> Recipe:
    try:
        return load_recipe(path, overrides)
    except RecipeError as e:
        err.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _run(recipe: Recipe, runs_dir: Path, stages: list[str] | None, quiet: bool) -> None:
    from superlab.run import RunError, run_recipe
    from superlab.run.display import Display
    from superlab.run.runner import StageFailed
    from superlab.run.summary import summary_table

    display = Display(console=err, quiet=quiet)
    try:
        result = run_recipe(recipe, runs_dir, stages, display)
    except RunError as e:
        err.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except StageFailed as e:
        err.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]: run the same command again to resume.")
        raise typer.Exit(130) from None
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
            "data,train,eval,serve,plan,report (default: all)."
        ),
    ] = None,
    runs_dir: RunsDirOpt = Path("runs"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Run a recipe's stages into <runs-dir>/<name>/, skipping finished ones (resumable)."""
    names = [s.strip() for s in stages.split(",") if s.strip()] if stages else None
    _run(_load(recipe, set_), runs_dir, names, quiet)


def _single_stage(name: str, about: str) -> None:
    def command(
        recipe: RecipeArg,
        runs_dir: RunsDirOpt = Path("runs"),
        set_: SetOpt = None,
        quiet: QuietOpt = False,
    ) -> None:
        _run(_load(recipe, set_), runs_dir, [name], quiet)

    command.__doc__ = f"Run only the {name} stage ({about}); same as run --stages {name}."
    app.command(name=name)(command)


_single_stage("data", "clean, dedup, tokenizer, shards")
_single_stage("train", "resumes from the newest checkpoint")
_single_stage("eval", "on the newest checkpoint")


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


@app.command()
def version() -> None:
    """Print superlab's version."""
    out.print(f"superlab {__version__}")


def main() -> None:
    """Entry point of the ``superlab`` console script."""
    app()
