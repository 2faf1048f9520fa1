"""Hugging Face architectures, one module each, registered by name in ``ARCHS``.

Each module holds one architecture's ``config.json`` mapping in both directions (an
``HFArch``, ``superlab.model.hf_arch.base``); ``superlab.model.hf_config`` maps the
fields they share and dispatches by name. Adding an architecture: a new module with its
``ARCH``, its name in ``Arch`` and ``ARCHS`` below (and its tensor names in
``superlab.model.hf``).
"""

from __future__ import annotations

from typing import Literal

from superlab.model.hf_arch import llama, llama4, mixtral, qwen3_moe
from superlab.model.hf_arch.base import HFArch

Arch = Literal["llama", "mixtral", "llama4", "qwen3_moe"]
# In this order config_from_hf matches a config.json's ``architectures``.
ARCHS: dict[str, HFArch] = {
    a.name: a for a in (llama.ARCH, mixtral.ARCH, llama4.ARCH, qwen3_moe.ARCH)
}

__all__ = ["ARCHS", "Arch", "HFArch"]
