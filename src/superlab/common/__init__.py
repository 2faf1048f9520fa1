"""Plumbing shared by every package: the run directory, atomic writes, the stage context.

A stage is ``run(ctx: StageContext) -> dict[str, Any]``: it reads and writes
only under ``ctx.run`` and returns a small summary (numbers and short strings)
for the run's summary table and its completion marker.
"""

from superlab.common.atomic import (
    atomic_dir,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)
from superlab.common.rundir import RunDir
from superlab.common.stage import ProgressHandle, StageContext, StageError

__all__ = [
    "ProgressHandle",
    "RunDir",
    "StageContext",
    "StageError",
    "atomic_dir",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
]
