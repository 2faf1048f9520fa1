"""Save and load a model: ``model.safetensors`` + ``model_config.json`` in one directory.

``model_config.json`` is ``cfg.model_dump(mode="json")`` with ``vocab_size`` filled in,
so a directory alone rebuilds the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from superlab.common.atomic import atomic_write_json
from superlab.config.recipe import ModelConfig
from superlab.model.transformer import Transformer

WEIGHTS = "model.safetensors"
CONFIG = "model_config.json"


def save_model(model: Transformer, directory: str | Path) -> None:
    """Write the weights and the resolved config into ``directory`` (created if needed)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS), metadata={"format": "pt"})
    atomic_write_json(directory / CONFIG, model.cfg.model_dump(mode="json"))


def load_model(directory: str | Path, device: str | torch.device = "cpu") -> Transformer:
    """Rebuild the model saved in ``directory`` and load its weights onto ``device``."""
    directory = Path(directory)
    cfg = ModelConfig.model_validate(json.loads((directory / CONFIG).read_text()))
    with torch.device(device):
        model = Transformer(cfg)
    model.load_state_dict(load_file(str(directory / WEIGHTS), device=str(device)))
    return model
