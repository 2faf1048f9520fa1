"""The stage table: order, what each needs first, and where its code lives."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from superlab.common import StageContext


@dataclass(frozen=True)
class Stage:
    """One stage: its name, the stages that must be complete first, and its module."""

    name: str
    needs: tuple[str, ...]
    module: str
    about: str
    # Re-run whenever another stage ran in the same invocation, selected or not
    # (the report must show what the run holds now).
    refresh: bool = False
    # The module has ``check(ctx)``, called on every invocation that selects the stage or
    # runs one that needs it, complete or not; it raises StageError if the stage's work
    # no longer matches its inputs (the data stage's manifest).
    checked: bool = False

    def load(self) -> Callable[[StageContext], dict[str, Any]]:
        """Import the stage's ``run`` function (heavy imports happen only here)."""
        return importlib.import_module(self.module).run

    def load_check(self) -> Callable[[StageContext], None]:
        """Import the stage's ``check`` function (only for a ``checked`` stage)."""
        return importlib.import_module(self.module).check


STAGES: tuple[Stage, ...] = (
    Stage(
        "data",
        (),
        "superlab.data.stage",
        "clean, dedup, train tokenizer, pack shards",
        checked=True,
    ),
    Stage("train", ("data",), "superlab.train.stage", "train the model, checkpoint, resume"),
    Stage(
        "eval",
        ("train",),
        "superlab.eval.stage",
        "held-out perplexity and bits per byte; probes, HLE file, contamination if configured",
    ),
    Stage("serve", ("train",), "superlab.serve.stage", "answer the recipe's sample prompts"),
    Stage("plan", (), "superlab.plan.stage", "GPUs, time, power and cost at scale"),
    Stage("report", (), "superlab.report.stage", "write report.html", refresh=True),
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
