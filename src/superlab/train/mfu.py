"""Model FLOPs utilisation: the model's training FLOPs per second over the devices' peak.

MFU (PaLM, Chowdhery et al. 2022, appendix B) = tokens/s x training FLOPs per token /
(devices x peak FLOP/s). FLOPs per token are the model's own count
(``superlab.model.counts.flops_per_token``): its forward FLOPs x 3 (the backward pass
costs twice the forward). The peak is one device's dense figure: ``train.peak_tflops``
when set, else on CUDA the plan catalog's (``superlab.plan.catalog``) entry whose name
appears in the device's name, at the precision in use. The catalog lists bf16 and fp8
peaks only, so fp32 on CUDA has none; a CPU has no catalog entry. Without a peak MFU is
left out of the metrics, not guessed.
"""

from __future__ import annotations

import re

import torch

from superlab.config.recipe import ModelConfig, TrainConfig
from superlab.model.counts import flops_per_token
from superlab.plan.catalog import load_catalog

# Variants whose peak differs from the catalog's SXM/OAM part of the same name
# (H100 PCIe: 756 bf16 TFLOP/s, not the SXM's 989).
_OTHER_FORM_FACTORS = ("pcie", "nvl")


def catalog_name(device_name: str) -> str | None:
    """The catalog entry for a CUDA device name, e.g. "NVIDIA H100 80GB HBM3" -> h100-sxm."""
    name = device_name.lower()
    if any(f in name for f in _OTHER_FORM_FACTORS):
        return None
    for entry in load_catalog():
        chip = entry.split("-")[0]  # h100-sxm -> h100, mi300x, b200, gb200, a100 ...
        if re.search(rf"(?<![a-z0-9]){re.escape(chip)}(?![a-z0-9])", name):
            return entry
    return None


def peak_tflops(tc: TrainConfig, device: torch.device, bf16: bool) -> tuple[float | None, str]:
    """One device's dense peak TFLOP/s for MFU and where it came from (None: unknown)."""
    if tc.peak_tflops is not None:
        return tc.peak_tflops, "train.peak_tflops"
    if device.type != "cuda":
        return None, f"no peak for {device.type}; set train.peak_tflops to log MFU"
    device_name = torch.cuda.get_device_name(device)
    entry = catalog_name(device_name)
    if entry is None:
        return None, f"{device_name!r} is not in the plan catalog; set train.peak_tflops"
    if not bf16:
        return None, f"the catalog lists bf16/fp8 peaks only; fp32 on {entry}: no MFU"
    return load_catalog()[entry].peak_tflops("bf16"), f"plan catalog {entry} bf16"


def train_flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
    """Forward FLOPs per token x 3 (forward + backward)."""
    return 3.0 * flops_per_token(cfg, seq_len)["forward"]


def mfu(tokens_per_s: float, flops_per_token: float, peak: float, devices: int) -> float:
    """Achieved FLOP/s over ``devices`` x ``peak`` TFLOP/s."""
    return tokens_per_s * flops_per_token / (devices * peak * 1e12)
