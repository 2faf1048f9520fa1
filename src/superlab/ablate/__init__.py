"""Ablation grids: a base recipe and axes, expanded into runs of equal budget and compared.

The shape: ``expand(grid.yaml) -> runs`` (``superlab.ablate.grid``), ``ablate(grid.yaml,
runs_dir)`` runs them one after another through the ordinary runner (resumable) and
writes ``<runs-dir>/<grid>/ablation.json`` and ``report.html`` (``table``, ``report``).
"""

from __future__ import annotations

from superlab.common.lazy import lazy_exports

__getattr__ = lazy_exports(
    __name__, {"ablate": "superlab.ablate.run", "expand": "superlab.ablate.grid"}
)


__all__ = ["ablate", "expand"]
