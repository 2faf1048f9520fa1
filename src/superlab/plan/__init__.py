"""Pure-number planning: catalog, training, serving, fleet, finance. Imports no torch.

The shape: ``estimate_training(...)`` takes plain numbers and an accelerator
name (or ``Accelerator``) and returns a frozen ``TrainingEstimate`` holding every
input and derived number; ``superlab.plan.stage.run(ctx)`` is the ``plan`` stage.
Every model (``training_outputs``, ``serving_outputs``, ``fleet_model(s)``) is a
function of keyword numpy arrays returning ``{output: array}``, so
``montecarlo.simulate`` gives p10/p50/p90 of every output and ``tornado`` the
inputs that matter. Modules: catalog, estimate, memory, serving, depreciation,
tax, scenario (schema/loader), fleet (quarters -> cash), montecarlo, inputs (the
valid range of every CLI input, one-line errors), published_runs (their figures and
sources, from published_runs.yaml), validation (reproducing them),
commands (what the CLI computes), render (tables; the SVG charts are ``report.plan_charts``).
"""

from superlab.plan.catalog import (
    CLUSTER_OVERHEAD,
    SERVER_OVERHEAD,
    Accelerator,
    UnknownAcceleratorError,
    get_accelerator,
    load_catalog,
)
from superlab.plan.estimate import EstimateError, TrainingEstimate, estimate_training

__all__ = [
    "CLUSTER_OVERHEAD",
    "SERVER_OVERHEAD",
    "Accelerator",
    "EstimateError",
    "TrainingEstimate",
    "UnknownAcceleratorError",
    "estimate_training",
    "get_accelerator",
    "load_catalog",
]
