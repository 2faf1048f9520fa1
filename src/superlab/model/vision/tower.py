"""The vision tower: encoder + projector, pixels in, text-width image tokens out.

Legend: N images, C channels, H x W pixels, P tokens per image, D text width.
"""

from __future__ import annotations

import torch
from torch import nn

from superlab.config.vision import VisionConfig
from superlab.model.vision.encoder import VisionEncoder
from superlab.model.vision.projector import Projector


class VisionTower(nn.Module):
    """``VisionEncoder`` then ``Projector``: (N, C, H, W) -> (N, P, D)."""

    def __init__(self, cfg: VisionConfig, d_text: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = VisionEncoder(cfg)
        self.projector = Projector(cfg, d_text)
        self.reset_parameters()

    def forward(self, pixels_NCHW: torch.Tensor) -> torch.Tensor:
        want = (self.cfg.channels, self.cfg.image_size, self.cfg.image_size)
        if pixels_NCHW.dim() != 4 or tuple(pixels_NCHW.shape[1:]) != want:
            raise ValueError(
                f"pixels: shape {tuple(pixels_NCHW.shape)}, expected (N, {want[0]}, {want[1]},"
                f" {want[2]}) (model.vision.channels, image_size)"
            )
        return self.projector(self.encoder(pixels_NCHW))

    def reset_parameters(self) -> None:
        """Both parts' init (``VisionEncoder`` / ``Projector.reset_parameters``)."""
        self.encoder.reset_parameters()
        self.projector.reset_parameters()
