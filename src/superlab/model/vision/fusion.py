"""Early fusion: image tokens replace the placeholders' embeddings; no loss on them.

An image in a sequence is ``image_start_id``, ``tokens_per_image`` x ``image_token_id``,
``image_end_id``. ``fuse`` writes the tower's rows for the images of a call, in order
(row-major over the batch, then the sequence), over the placeholders' embeddings, so
several images may sit anywhere in any row; the count must match exactly.

Legend: B batch, T sequence, D model dim, N images, P tokens per image.
"""

from __future__ import annotations

import torch

from superlab.model.vision.tower import VisionTower


def fuse(
    tower: VisionTower | None,
    idx_BT: torch.Tensor,
    x_BTD: torch.Tensor,
    pixels_NCHW: torch.Tensor | None,
) -> torch.Tensor:
    """``x_BTD`` with the image placeholders' rows replaced by ``tower(pixels_NCHW)``."""
    if tower is None:
        raise ValueError("pixels given to a text-only model (model.vision is not set)")
    image_id = tower.cfg.image_token_id
    if image_id is None:
        raise ValueError("model.vision.image_token_id is None; fill it in (the tokenizer's)")
    mask_BT = idx_BT == image_id
    slots = int(mask_BT.sum())
    if pixels_NCHW is None:
        if slots:
            raise ValueError(f"{slots} image placeholder tokens but no pixels")
        return x_BTD
    feats_NPD = tower(pixels_NCHW)
    N, P, _ = feats_NPD.shape
    if slots != N * P:
        raise ValueError(
            f"{slots} image placeholder tokens for {N} images of {P} tokens each ({N * P})"
        )
    return x_BTD.masked_scatter(mask_BT[..., None], feats_NPD.to(x_BTD.dtype))


def ignore_image_targets(
    idx_BT: torch.Tensor, targets_BT: torch.Tensor, image_token_id: int
) -> torch.Tensor:
    """``targets_BT`` with -100 (no loss) at image positions: where the input or the target
    is a placeholder (a placeholder is not text to predict, nor text to predict from)."""
    image_BT = (idx_BT == image_token_id) | (targets_BT == image_token_id)
    return targets_BT.masked_fill(image_BT, -100)
