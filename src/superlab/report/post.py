"""The post-training section: the sft and pref stages' rows of ``metrics.jsonl``.

Post-training rows carry ``"stage"`` (``sft``, ``pref``); the training section shows the
rows without one. SFT: loss and held-out chat loss (assistant tokens only) over steps.
Preference optimisation: loss, reward accuracy, reward margin, and the chosen and
rejected log-probabilities over steps, under TRL's metric names. RL (GRPO): reward and
its within-group spread, the share of groups with zero reward variance, KL and clip
fraction, entropy, completion length, and generation time against the whole loop.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from superlab.common import RunDir
from superlab.report.html import Section, kv_table, missing
from superlab.report.sections import read_metrics
from superlab.report.svg import line_chart


class Panel(NamedTuple):
    """A stage's part of the section: its heading, the last values shown (label: metric
    key) and its charts (title, y label, {legend: metric key})."""

    heading: str
    last: dict[str, str]
    charts: list[tuple[str, str, dict[str, str]]]


PANELS = {
    "sft": Panel(
        "SFT",
        {"last step": "step", "last loss": "loss", "last held-out chat loss": "heldout_loss"},
        [
            (
                "SFT loss (assistant tokens)",
                "loss",
                {"loss": "loss", "held-out chat loss": "heldout_loss"},
            )
        ],
    ),
    "pref": Panel(
        "Preference optimisation",
        {
            "last step": "step",
            "last loss": "loss",
            "reward accuracy": "rewards/accuracies",
            "reward margin": "rewards/margins",
        },
        [
            ("Preference loss", "loss", {"loss": "loss", "held-out": "heldout_loss"}),
            ("Reward accuracy", "share of pairs", {"rewards/accuracies": "rewards/accuracies"}),
            ("Reward margin", "margin", {"rewards/margins": "rewards/margins"}),
            (
                "Log-probabilities: chosen vs rejected",
                "log p",
                {"logps/chosen": "logps/chosen", "logps/rejected": "logps/rejected"},
            ),
        ],
    ),
    "rl": Panel(
        "RL (GRPO)",
        {
            "last step": "step",
            "reward": "reward",
            "groups with zero reward std": "frac_reward_zero_std",
            "KL": "kl",
            "generation seconds (total)": "time/generation_total_s",
            "loop seconds (total)": "elapsed",
        },
        [
            ("Reward", "mean reward", {"reward": "reward", "within-group std": "reward_std"}),
            ("Groups that teach nothing", "share", {"zero std": "frac_reward_zero_std"}),
            (
                "KL to the reference, clip",
                "value",
                {"kl": "kl", "clipped": "clip_ratio/region_mean"},
            ),
            ("Entropy", "nats per token", {"entropy": "entropy"}),
            (
                "Completion length",
                "tokens",
                {"mean": "completions/mean_length", "max": "completions/max_length"},
            ),
            (
                "Time: generation vs the whole loop",
                "seconds (cumulative)",
                {"generation": "time/generation_total_s", "loop": "elapsed"},
            ),
        ],
    ),
}
POST_STAGES = tuple(PANELS)


def _series(rows: list[dict[str, Any]], key: str) -> list[tuple[Any, Any]]:
    return [(r["step"], r[key]) for r in rows if isinstance(r.get(key), int | float)]


def _last(rows: list[dict[str, Any]], key: str) -> Any:
    return next((r[key] for r in reversed(rows) if key in r), None)


def _panel(panel: Panel, rows: list[dict[str, Any]]) -> str:
    charts = [
        line_chart(
            {legend: _series(rows, key) for legend, key in series.items()},
            title=title,
            x_label="step",
            y_label=y_label,
        )
        for title, y_label, series in panel.charts
    ]
    last = {label: _last(rows, key) for label, key in panel.last.items()}
    charts_html = "".join(charts)
    return f'<h3>{panel.heading}</h3>{kv_table(last)}<div class="charts">{charts_html}</div>'


def post_training_section(run: RunDir) -> Section:
    """Charts of every post-training stage that logged a row."""
    rows, _ = read_metrics(run.metrics) if run.metrics.is_file() else ([], 0)
    by_stage = {s: [r for r in rows if r.get("stage") == s] for s in POST_STAGES}
    if not any(by_stage.values()):
        return Section("post-training", "Post-training", missing("an sft or pref row"), False)
    body = "".join(_panel(PANELS[s], by_stage[s]) for s in POST_STAGES if by_stage[s])
    return Section("post-training", "Post-training", body)
