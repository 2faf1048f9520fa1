"""Which input positions a position's output depends on (by gradient), for sealing tests."""

import torch

from superlab.model.positions import Positions
from superlab.model.transformer import Transformer


def positions_reached(model: Transformer, idx_BT: torch.Tensor, at: int) -> list[int]:
    """Positions of row 0 whose embeddings the blocks' output at position ``at`` depends on."""
    T = idx_BT.shape[1]
    emb_BTD = model.tok_emb(idx_BT).detach().requires_grad_(True)
    positions = Positions(*model.rope(T))
    x_BTD = emb_BTD
    for block in model.blocks:
        x_BTD = block(x_BTD, positions)
    x_BTD[0, at].sum().backward()
    return (emb_BTD.grad[0].abs().sum(dim=1) > 0).nonzero().flatten().tolist()
