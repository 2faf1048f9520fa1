"""Pixels as the tower takes them: uint8 RGB images -> normalised float (N, C, H, W).

Every caller (training, eval, serving) turns stored or decoded images into the tower's
input here, with the model's own ``model.vision.pixel_mean`` / ``pixel_std``:
``(x / 255 - mean) / std`` per channel, as a Hugging Face image processor does.

Legend: N images, H height, W width, C channels.
"""

from __future__ import annotations

import numpy as np
import torch

from superlab.config.vision import VisionConfig


def normalize(images_NHWC: np.ndarray | torch.Tensor, cfg: VisionConfig) -> torch.Tensor:
    """(N, C, H, W) float32 tower input of uint8 (N, H, W, C) images."""
    x = torch.as_tensor(images_NHWC)
    if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[-1] != cfg.channels:
        raise ValueError(
            f"images: {tuple(x.shape)} {x.dtype}, expected uint8 (N, H, W, {cfg.channels})"
        )
    mean_C = torch.tensor(cfg.pixel_mean, dtype=torch.float32)
    std_C = torch.tensor(cfg.pixel_std, dtype=torch.float32)
    x_NHWC = (x.float() / 255.0 - mean_C) / std_C
    return x_NHWC.permute(0, 3, 1, 2).contiguous()
