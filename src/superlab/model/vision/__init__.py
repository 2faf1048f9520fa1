"""Early-fusion vision (Llama 4): a ViT over patches, pixel shuffle, and a projector.

One shape throughout: ``VisionTower(cfg: VisionConfig, d_text)`` takes pixels
``(N, C, H, W)`` (N images, normalised by ``normalize`` with the model's
``pixel_mean`` / ``pixel_std``) and returns
``(N, P, D)``, P = ``cfg.tokens_per_image`` tokens of the text model's width D per image.
``fuse`` puts those rows, in order, where the text has ``image_token_id`` placeholders;
``ignore_image_targets`` keeps the loss off image positions. The transformer calls both
(``superlab.model.transformer``); the text-only path never reaches this package.

Modules: ``rope2d`` (2-D rotary embedding over patch rows and columns), ``encoder`` (the
ViT), ``projector`` (pixel shuffle + MLP + linear into the text width), ``fusion``,
``pixels`` (uint8 images -> the tower's normalised input, ``normalize``).
"""

from __future__ import annotations

from superlab.model.vision.fusion import fuse, ignore_image_targets
from superlab.model.vision.pixels import normalize
from superlab.model.vision.tower import VisionTower

__all__ = ["VisionTower", "fuse", "ignore_image_targets", "normalize"]
