"""Data-mixture search (``superlab mix GRID.yaml``): many runs of one recipe, weights varied.

The shape: ``load_mix_grid(grid.yaml)`` (``grid``), mixtures drawn around the natural
token distribution (``sample``), the runs trained on one shared data stage through the
ablation runner (``run``), a regression from weights to the target and a search of
simulated mixtures (``regress``), and ``<runs-dir>/<grid>/mix.json`` + ``report.html``
(``report``). Only ``data.sources[*].weight`` differs between runs' data settings, and
weights act in the training loader, so the data stage is done once.
"""

from __future__ import annotations

from superlab.common.lazy import lazy_exports

__getattr__ = lazy_exports(__name__, {"mix": "superlab.mix.run", "plan": "superlab.mix.run"})


__all__ = ["mix", "plan"]
