"""Checkpoints: ``ckpt/step-N/`` with everything needed to resume exactly.

Written into a temporary directory and renamed into place (``atomic_dir``), with
``state.json`` written last, so a ``step-N`` directory is always complete and a
crash mid-write leaves only a ``.step-N.*.tmp`` directory that loading ignores
(``superlab.common.ckpt``). Contents: ``model.safetensors`` + ``model_config.json``
(``save_model``), ``optim.pt`` (the optimizer's state dict) and ``state.json``: the
step, the data loader's position, elapsed seconds, and the torch / CUDA / numpy /
Python RNG states as plain JSON lists (no pickles to load).
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from superlab.common.atomic import atomic_dir, atomic_write_json
from superlab.common.ckpt import list_checkpoints
from superlab.model.io import WEIGHTS, save_model
from superlab.model.transformer import Transformer


def rng_state() -> dict[str, Any]:
    """Every RNG's state, JSON-able."""
    np_state = np.random.get_state(legacy=False)
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state().tolist(),
        "cuda": [s.tolist() for s in torch.cuda.get_rng_state_all()]
        if torch.cuda.is_available()
        else [],
        "numpy": {
            **np_state,
            "state": {k: np.asarray(v).tolist() for k, v in np_state["state"].items()},
        },
        "python": [py_version, list(py_state), py_gauss],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned."""
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])
    np_state = dict(state["numpy"])
    np_state["state"] = {
        k: np.asarray(v, dtype=np.uint64) if k == "key" else v for k, v in np_state["state"].items()
    }
    np.random.set_state(np_state)
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def save_checkpoint(
    ckpt_root: str | Path,
    step: int,
    model: Transformer,
    optimizer: torch.optim.Optimizer,
    extra: dict[str, Any],
    keep_last: int,
) -> Path:
    """Write ``ckpt_root/step-{step}/`` atomically, then keep only the newest ``keep_last``."""
    path = Path(ckpt_root) / f"step-{step}"
    with atomic_dir(path) as tmp:
        save_model(model, tmp)
        torch.save(optimizer.state_dict(), tmp / "optim.pt")
        atomic_write_json(tmp / "state.json", {"step": step, **extra, "rng": rng_state()})
    for _, old in list_checkpoints(ckpt_root)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def load_checkpoint(
    path: str | Path, model: Transformer, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """Load weights, optimizer and RNG states from ``path``; return its ``state.json``."""
    from safetensors.torch import load_file

    path = Path(path)
    device = next(model.parameters()).device
    model.load_state_dict(load_file(str(path / WEIGHTS), device=str(device)))
    optimizer.load_state_dict(torch.load(path / "optim.pt", map_location=device))
    state = json.loads((path / "state.json").read_text())
    set_rng_state(state["rng"])
    return state


def remove_partial(ckpt_root: str | Path) -> None:
    """Delete temporary directories a crash mid-checkpoint left behind."""
    root = Path(ckpt_root)
    if root.is_dir():
        for p in root.glob(".step-*.tmp"):
            shutil.rmtree(p, ignore_errors=True)
