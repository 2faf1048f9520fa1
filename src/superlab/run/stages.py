"""The stage table: order, what each needs first, and the function that runs it.

A stage's code is imported when the stage runs, not when the table is read, so the CLI
starts fast and a run of ``plan`` alone never imports torch. ``_code`` below holds those
lazy imports, one per stage, written out so that readers and tools can follow them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from superlab.common import StageContext


def _code(stage: str) -> ModuleType:
    """The module that runs ``stage``, imported only now."""
    match stage:
        case "data":
            from superlab.data import stage as code
        case "train":
            from superlab.train import stage as code
        case "sft":
            from superlab.post import sft as code
        case "pref":
            from superlab.post import pref as code
        case "rl":
            from superlab.post import rl as code
        case "eval":
            from superlab.eval import stage as code
        case "serve":
            from superlab.serve import stage as code
        case "plan":
            from superlab.plan import stage as code
        case "report":
            from superlab.report import stage as code
        case _:
            raise ValueError(f"no code for stage {stage!r}")
    return code


def _runs(stage: str) -> Callable[[StageContext], dict[str, Any]]:
    """``stage``'s ``run``, importing its module when called, not before."""
    return lambda ctx: _code(stage).run(ctx)


def _data_check(ctx: StageContext) -> None:
    _code("data").check(ctx)


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
    Stage(
        "data", (), _runs("data"), "clean, dedup, train tokenizer, pack shards", check=_data_check
    ),
    Stage("train", ("data",), _runs("train"), "train the model, checkpoint, resume"),
    # Post-training needs no stage of its own run: its init may be a Hugging Face folder.
    # With init 'run' or 'sft' it finds the checkpoint it starts from or says what to run.
    Stage("sft", (), _runs("sft"), "supervised fine-tuning on chat rows (recipe's sft section)"),
    Stage("pref", (), _runs("pref"), "preference optimisation: DPO, IPO or SimPO (pref section)"),
    Stage("rl", (), _runs("rl"), "GRPO with verifiable rewards (rl section)"),
    Stage(
        "eval",
        ("train",),
        _runs("eval"),
        "held-out perplexity and bits per byte; probes, HLE file, contamination if configured",
    ),
    Stage("serve", ("train",), _runs("serve"), "answer the recipe's sample prompts"),
    Stage("plan", (), _runs("plan"), "GPUs, time, power and cost at scale"),
    Stage("report", (), _runs("report"), "write report.html", refresh=True),
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
