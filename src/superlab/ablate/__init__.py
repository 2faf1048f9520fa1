"""Ablation grids: a base recipe and axes, expanded into runs of equal budget and compared.

The shape: ``expand(grid.yaml) -> runs`` (``superlab.ablate.grid``), ``ablate(grid.yaml,
runs_dir)`` runs them one after another through the ordinary runner (resumable) and
writes ``<runs-dir>/<grid>/ablation.json`` and ``report.html`` (``table``, ``report``).
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("ablate", "expand"):
        import importlib

        module = "superlab.ablate.run" if name == "ablate" else "superlab.ablate.grid"
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'superlab.ablate' has no attribute {name!r}")


__all__ = ["ablate", "expand"]
