"""Optional dependencies: import one where it is used, or fail naming what to install.

Heavy packages are optional (STYLE.md, rule 10); every path that needs one calls
``require`` so that a missing package always reads the same way: what needed it, the
package, the extra that brings it, and what to set instead when there is a way round.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def require(
    module: str,
    needed_for: str,
    extra: str | None = None,
    instead: str | None = None,
    error: type[Exception] = ImportError,
    package: str | None = None,
) -> ModuleType:
    """``import module``, or raise ``error`` naming the package and how to get it.

    ``module`` may be dotted (``"pyarrow.parquet"``); the package is its first part unless
    ``package`` names the distribution (``"scikit-learn"`` for ``sklearn``).
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        package = package or module.split(".")[0]
        how = f"pip install {package}" + (f", or the superlab[{extra}] extra" if extra else "")
        also = f"; or set {instead}" if instead else ""
        raise error(f"{needed_for} needs the '{package}' package ({how}{also})") from None
