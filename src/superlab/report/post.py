"""The post-training section: the sft and pref stages' rows of ``metrics.jsonl``.

Post-training rows carry ``"stage"`` (``sft``, ``pref``); the training section shows the
rows without one. SFT: loss and held-out chat loss (assistant tokens only) over steps.
Preference optimisation: loss, reward accuracy, reward margin, and the chosen and
rejected log-probabilities over steps, under TRL's metric names.
"""

from __future__ import annotations

from typing import Any

from superlab.common import RunDir
from superlab.report.html import Section, kv_table, missing
from superlab.report.sections import read_metrics
from superlab.report.svg import line_chart

POST_STAGES = ("sft", "pref")


def _series(rows: list[dict[str, Any]], key: str) -> list[tuple[Any, Any]]:
    return [(r["step"], r[key]) for r in rows if isinstance(r.get(key), int | float)]


def _last(rows: list[dict[str, Any]], key: str) -> Any:
    return next((r[key] for r in reversed(rows) if key in r), None)


def post_training_section(run: RunDir) -> Section:
    """Charts of every post-training stage that logged a row."""
    rows, _ = read_metrics(run.metrics) if run.metrics.is_file() else ([], 0)
    by_stage = {s: [r for r in rows if r.get("stage") == s] for s in POST_STAGES}
    if not any(by_stage.values()):
        return Section("post-training", "Post-training", missing("an sft or pref row"), False)
    body = ""
    sft = by_stage["sft"]
    if sft:
        body += "<h3>SFT</h3>" + kv_table(
            {
                "last step": _last(sft, "step"),
                "last loss": _last(sft, "loss"),
                "last held-out chat loss": _last(sft, "heldout_loss"),
            }
        )
        chart = line_chart(
            {"loss": _series(sft, "loss"), "held-out chat loss": _series(sft, "heldout_loss")},
            title="SFT loss (assistant tokens)",
            x_label="step",
            y_label="loss",
        )
        body += f'<div class="charts">{chart}</div>'
    pref = by_stage["pref"]
    if pref:
        body += "<h3>Preference optimisation</h3>" + kv_table(
            {
                "last step": _last(pref, "step"),
                "last loss": _last(pref, "loss"),
                "reward accuracy": _last(pref, "rewards/accuracies"),
                "reward margin": _last(pref, "rewards/margins"),
            }
        )
        charts = [
            line_chart(
                {"loss": _series(pref, "loss"), "held-out": _series(pref, "heldout_loss")},
                title="Preference loss",
                x_label="step",
                y_label="loss",
            ),
            line_chart(
                {"rewards/accuracies": _series(pref, "rewards/accuracies")},
                title="Reward accuracy",
                x_label="step",
                y_label="share of pairs",
            ),
            line_chart(
                {"rewards/margins": _series(pref, "rewards/margins")},
                title="Reward margin",
                x_label="step",
                y_label="margin",
            ),
            line_chart(
                {
                    "logps/chosen": _series(pref, "logps/chosen"),
                    "logps/rejected": _series(pref, "logps/rejected"),
                },
                title="Log-probabilities: chosen vs rejected",
                x_label="step",
                y_label="log p",
            ),
        ]
        body += f'<div class="charts">{"".join(charts)}</div>'
    return Section("post-training", "Post-training", body)
