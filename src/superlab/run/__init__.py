"""Run a recipe's stages in order into ``runs/<name>/``, skipping finished ones.

``run_recipe(recipe, runs_dir, stages)`` is the one entry point; the CLI calls it.
"""

from superlab.run.runner import RunError, RunResult, run_recipe
from superlab.run.stages import STAGES, Stage

__all__ = ["STAGES", "RunError", "RunResult", "Stage", "run_recipe"]
