"""``metrics.jsonl``: one JSON object per line, appended; trimmed on resume.

``MetricsLog`` also writes every number of a row to TensorBoard (``tb/`` in the run
directory) when ``tensorboard`` is installed and ``train.tensorboard`` is on; MoE layer
fields appear as ``moe/layer<i>/<field>``. On resume the writer purges events after the
checkpoint's step (``SummaryWriter(purge_step=...)``), as the JSONL file drops its rows.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from superlab.common.atomic import atomic_write_text


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one row and flush it to disk."""
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def truncate_after(path: Path, step: int, stage: str = "train") -> int:
    """Drop ``stage``'s rows with ``step`` > ``step`` (and torn lines); return how many.

    Post-training rows carry ``"stage"`` (``sft``, ``pref``); rows without one are the
    ``train`` stage's, so resuming one stage never touches another's rows.
    """
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line torn by a crash mid-write
            dropped += 1
            continue
        if (
            isinstance(row, dict)
            and row.get("stage", "train") == stage
            and row.get("step", 0) > step
        ):
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        atomic_write_text(path, "".join(f"{line}\n" for line in kept))
    return dropped


def read_rows(path: Path) -> list[dict[str, Any]]:
    """All rows of a metrics file."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def scalars(row: dict[str, Any]) -> dict[str, float]:
    """The row's numbers under TensorBoard tags; per-expert lists and flags are left out."""
    out: dict[str, float] = {}
    for key, value in row.items():
        if key == "moe":
            for layer in value:
                for k, v in layer.items():
                    if k != "layer" and isinstance(v, int | float):
                        out[f"moe/layer{layer['layer']}/{k}"] = float(v)
        elif key != "step" and isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = float(value)
    if "stage" in row:  # a post-training stage's row: its own tags (sft/loss, pref/loss)
        return {f"{row['stage']}/{k}": v for k, v in out.items()}
    return out


class MetricsLog:
    """Rows to ``metrics.jsonl`` and, when available, to TensorBoard."""

    def __init__(
        self, path: Path, tb_dir: Path | None, resume_step: int, log: logging.Logger
    ) -> None:
        self.path = path
        self.tb: Any = None
        if tb_dir is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.info(
                "tensorboard is not installed: metrics go to %s only (pip install tensorboard)",
                path.name,
            )
            return
        self.tb = SummaryWriter(str(tb_dir), purge_step=resume_step + 1)
        log.info("TensorBoard events in %s", tb_dir)

    def write(self, row: dict[str, Any]) -> None:
        """Append ``row`` (it must have a ``step``)."""
        append_row(self.path, row)
        if self.tb is not None:
            for tag, value in scalars(row).items():
                self.tb.add_scalar(tag, value, row["step"])
            self.tb.flush()

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        if self.tb is not None:
            self.tb.close()
            self.tb = None
