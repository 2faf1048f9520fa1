"""Growing a model's vocabulary: new token rows start at the mean of the old ones.

A run trained before the chat format has no rows for the chat tokens. Starting a new
row at the mean embedding (and, untied, the mean head row) rather than at random keeps
the new token's logit near the average one, so adding it barely moves the model's
distribution (Hewitt, "Initializing new word embeddings for pretrained language models",
2021); every old row, and so every old logit over old tokens, is unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from superlab.model.transformer import Transformer


@torch.no_grad()
def _grown(weight_VD: torch.Tensor, new_vocab: int) -> nn.Parameter:
    mean_D = weight_VD.float().mean(dim=0).to(weight_VD.dtype)
    extra_ND = mean_D.expand(new_vocab - weight_VD.shape[0], -1)
    return nn.Parameter(torch.cat([weight_VD, extra_ND]), requires_grad=weight_VD.requires_grad)


def resize_vocab(model: Transformer, new_vocab: int) -> None:
    """Grow ``model`` to ``new_vocab`` tokens in place (embedding, untied head, config)."""
    old = model.tok_emb.num_embeddings
    if new_vocab < old:
        raise ValueError(f"new_vocab {new_vocab} < the model's {old}: shrinking drops tokens")
    if new_vocab == old:
        return
    model.tok_emb.weight = _grown(model.tok_emb.weight, new_vocab)
    model.tok_emb.num_embeddings = new_vocab
    if model.lm_head is not None:  # tied: the head is tok_emb.weight, grown above
        model.lm_head.weight = _grown(model.lm_head.weight, new_vocab)
        model.lm_head.out_features = new_vocab
    model.cfg = model.cfg.model_copy(update={"vocab_size": new_vocab})
