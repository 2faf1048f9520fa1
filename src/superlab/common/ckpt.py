"""Finding checkpoints on disk (no torch): ``ckpt/step-N/`` directories, complete ones only.

A checkpoint directory is complete when it holds ``state.json``: the trainer
writes a checkpoint into a temporary directory and renames it into place, so a
half-written one never carries the ``step-N`` name. Each complete checkpoint holds
``model.safetensors``, ``model_config.json`` (the resolved ``ModelConfig``),
``optim.pt`` and ``state.json``.
"""

from __future__ import annotations

import re
from pathlib import Path

_STEP = re.compile(r"^step-(\d+)$")


def list_checkpoints(ckpt_root: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``ckpt_root``, oldest first, as (step, path)."""
    root = Path(ckpt_root)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _STEP.match(p.name)
        if m and p.is_dir() and (p / "state.json").is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(ckpt_root: str | Path) -> Path | None:
    """The newest complete checkpoint under ``ckpt_root``, or None."""
    found = list_checkpoints(ckpt_root)
    return found[-1][1] if found else None


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a run directory, a ``ckpt/`` directory or a ``step-N`` directory."""
    p = Path(path)
    if (p / "state.json").is_file():
        return p
    for root in (p / "ckpt", p):
        found = latest_checkpoint(root)
        if found is not None:
            return found
    raise FileNotFoundError(f"{p}: no complete checkpoint (ckpt/step-N/state.json) found")
