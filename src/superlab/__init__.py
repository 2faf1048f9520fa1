"""superlab: build frontier-style language models end to end, on a laptop first.

Packages: ``config`` (the recipe), ``data``, ``model``, ``train``, ``eval``,
``serve``, ``plan``, ``report``, ``run`` (stage orchestration) and ``cli``.
Importing ``superlab`` imports no torch.
"""

__version__ = "0.1.0"
