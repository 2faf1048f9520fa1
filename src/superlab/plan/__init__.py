"""Pure-number planning: accelerator catalog and training-run estimates. Imports no torch.

The shape: ``estimate_training(...)`` takes plain numbers and an accelerator
name (or ``Accelerator``) and returns a frozen ``TrainingEstimate`` holding every
input and derived number; ``superlab.plan.stage.run(ctx)`` is the ``plan`` stage.
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
