"""Checkpoints: ``ckpt/step-N/`` with everything needed to resume exactly.

Written into a temporary directory and renamed into place (``atomic_dir``), with
``state.json`` written last, so a ``step-N`` directory is always complete and a
crash mid-write leaves only a ``.step-N.*.tmp`` directory that loading ignores
(``superlab.common.ckpt``). Contents: ``model.safetensors`` + ``model_config.json``
(the layout ``superlab.model.io.load_model`` reads), ``optim.pt`` (AdamW's full state
dict keyed by parameter name, loaded with ``weights_only``) and ``state.json``: the
step, the data loader's position, elapsed seconds, counters, and the torch / CUDA /
numpy / Python RNG states as plain JSON lists (no pickles to load).

The state dicts come in whole (``superlab.train.parallel.full_state`` gathers them
under FSDP), so this module knows nothing of ranks: rank 0 calls ``save_checkpoint``.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from superlab.common.atomic import atomic_dir, atomic_write_json
from superlab.common.ckpt import list_checkpoints
from superlab.config.recipe import ModelConfig
from superlab.model.io import CONFIG, WEIGHTS

OPTIMIZER = "optim.pt"
STATE = "state.json"


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
    model_state: dict[str, torch.Tensor],
    model_cfg: ModelConfig,
    optim_state: dict[str, Any],
    extra: dict[str, Any],
    keep_last: int,
) -> Path:
    """Write ``ckpt_root/step-{step}/`` atomically, then keep only the newest ``keep_last``."""
    path = Path(ckpt_root) / f"step-{step}"
    with atomic_dir(path) as tmp:
        weights = {k: v.detach().contiguous().cpu() for k, v in model_state.items()}
        save_file(weights, str(tmp / WEIGHTS), metadata={"format": "pt"})
        atomic_write_json(tmp / CONFIG, model_cfg.model_dump(mode="json"))
        torch.save(optim_state, tmp / OPTIMIZER)
        atomic_write_json(tmp / STATE, {"step": step, **extra, "rng": rng_state()})
    for _, old in list_checkpoints(ckpt_root)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def load_checkpoint(
    path: str | Path,
) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """Weights and optimizer state (on CPU) and ``state.json`` of ``path``; restores the RNGs."""
    path = Path(path)
    model_state = load_file(str(path / WEIGHTS))
    optim_state = torch.load(path / OPTIMIZER, map_location="cpu", weights_only=True)
    state = json.loads((path / STATE).read_text())
    set_rng_state(state["rng"])
    return model_state, optim_state, state


def remove_partial(ckpt_root: str | Path) -> None:
    """Delete temporary directories a crash mid-checkpoint left behind."""
    root = Path(ckpt_root)
    if root.is_dir():
        for p in root.glob(".step-*.tmp"):
            shutil.rmtree(p, ignore_errors=True)
