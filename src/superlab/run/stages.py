"""The stage table: order, what each needs first, and the function that runs it.

A stage's code is imported when the stage runs, not when the table is read, so the CLI
starts fast and a run of ``plan`` alone never imports torch. The small functions below
are those lazy imports, written out so that readers and tools can follow them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from superlab.common import StageContext


def _data(ctx: StageContext) -> dict[str, Any]:
    from superlab.data.stage import run

    return run(ctx)


def _data_check(ctx: StageContext) -> None:
    from superlab.data.stage import check

    check(ctx)


def _train(ctx: StageContext) -> dict[str, Any]:
    from superlab.train.stage import run

    return run(ctx)


def _sft(ctx: StageContext) -> dict[str, Any]:
    from superlab.post.sft import run

    return run(ctx)


def _pref(ctx: StageContext) -> dict[str, Any]:
    from superlab.post.pref import run

    return run(ctx)


def _rl(ctx: StageContext) -> dict[str, Any]:
    from superlab.post.rl import run

    return run(ctx)


def _eval(ctx: StageContext) -> dict[str, Any]:
    from superlab.eval.stage import run

    return run(ctx)


def _serve(ctx: StageContext) -> dict[str, Any]:
    from superlab.serve.stage import run

    return run(ctx)


def _plan(ctx: StageContext) -> dict[str, Any]:
    from superlab.plan.stage import run

    return run(ctx)


def _report(ctx: StageContext) -> dict[str, Any]:
    from superlab.report.stage import run

    return run(ctx)


@dataclass(frozen=True)
class Stage:
    """One stage: its name, the stages that must be complete first, and its ``run``."""

    name: str
    needs: tuple[str, ...]
    run: Callable[[StageContext], dict[str, Any]]
    about: str
    # Re-run whenever another stage ran in the same invocation, selected or not
    # (the report must show what the run holds now).
    refresh: bool = False
    # Called on every invocation that selects the stage or runs one that needs it,
    # complete or not; raises StageError if the stage's work no longer matches its
    # inputs (the data stage's manifest).
    check: Callable[[StageContext], None] | None = None


STAGES: tuple[Stage, ...] = (
    Stage("data", (), _data, "clean, dedup, train tokenizer, pack shards", check=_data_check),
    Stage("train", ("data",), _train, "train the model, checkpoint, resume"),
    # Post-training needs no stage of its own run: its init may be a Hugging Face folder.
    # With init 'run' or 'sft' it finds the checkpoint it starts from or says what to run.
    Stage("sft", (), _sft, "supervised fine-tuning on chat rows (recipe's sft section)"),
    Stage("pref", (), _pref, "preference optimisation: DPO, IPO or SimPO (pref section)"),
    Stage("rl", (), _rl, "GRPO with verifiable rewards (rl section)"),
    Stage(
        "eval",
        ("train",),
        _eval,
        "held-out perplexity and bits per byte; probes, HLE file, contamination if configured",
    ),
    Stage("serve", ("train",), _serve, "answer the recipe's sample prompts"),
    Stage("plan", (), _plan, "GPUs, time, power and cost at scale"),
    Stage("report", (), _report, "write report.html", refresh=True),
)


def select(names: list[str] | None, table: tuple[Stage, ...] = STAGES) -> list[Stage]:
    """The stages named (all when None), in pipeline order; unknown names raise ValueError."""
    if not names:
        return list(table)
    known = [s.name for s in table]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(
            f"unknown stage {', '.join(map(repr, unknown))}; stages are {', '.join(known)}"
        )
    return [s for s in table if s.name in names]
