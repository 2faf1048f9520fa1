"""Pixel shuffle and the projector: patch vectors -> fewer, wider tokens -> text width.

Pixel shuffle with ratio r (0.5 in Llama 4) folds each (1/r x 1/r) block of the patch grid
into one token of D / r^2 channels, cutting the tokens per image by 1/r^2; a bias-free
MLP (fc1 -> GELU -> fc2 -> GELU, transformers' ``Llama4VisionPixelShuffleMLP``) then maps
it to ``projector_dim``, and one bias-free linear to the text model's width
(``Llama4MultiModalProjector``). The channel order inside a merged token is transformers'
``pixel_shuffle``, so imported weights line up.

Legend: N images, P patches (g x g), Q = P r^2 tokens, D vision width, E projector width,
T text width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from superlab.config.vision import VisionConfig


def pixel_shuffle(x_NPD: torch.Tensor, merge: int) -> torch.Tensor:
    """(N, g*g, D) -> (N, (g/merge)^2, D*merge^2), in transformers' channel order."""
    N, P, D = x_NPD.shape
    g = round(P**0.5)
    # Fold ``merge`` neighbours along the columns into channels, swap rows and columns,
    # fold ``merge`` neighbours along the (former) rows, and swap back.
    x = x_NPD.reshape(N, g, g // merge, D * merge).transpose(1, 2)
    x = x.reshape(N, g // merge, g // merge, D * merge * merge).transpose(1, 2)
    return x.reshape(N, -1, D * merge * merge)


class Projector(nn.Module):
    """Pixel shuffle, the adapter MLP, and the linear into the text width."""

    def __init__(self, cfg: VisionConfig, d_text: int) -> None:
        super().__init__()
        self.merge = cfg.merge
        self.fc1 = nn.Linear(cfg.d_model * cfg.merge**2, cfg.projector_dim, bias=False)
        self.fc2 = nn.Linear(cfg.projector_dim, cfg.projector_dim, bias=False)
        self.out = nn.Linear(cfg.projector_dim, d_text, bias=False)

    def forward(self, x_NPD: torch.Tensor) -> torch.Tensor:
        x_NQF = pixel_shuffle(x_NPD, self.merge)
        return self.out(F.gelu(self.fc2(F.gelu(self.fc1(x_NQF)))))

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Every weight N(0, 1 / fan_in), so each layer keeps its input's scale.

        With N(0, 0.02) (the text model's init) the three layers shrink unit-variance patch
        vectors to image tokens of rms ~0.004, a fifth of the text embeddings they replace,
        and training could not make the text model read them (docs/multimodal.md, "Why the
        tiny model did not read the images")."""
        for p in self.parameters():
            nn.init.normal_(p, std=p.shape[1] ** -0.5)
