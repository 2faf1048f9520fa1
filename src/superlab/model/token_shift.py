"""Token shift: add a learned per-channel share of the previous position's input.

``x_t + g * x_{t-1}`` (``model.token_shift``), applied to each layer's attention input.
The previous position is the previous token of the same document: the first token of a
document (``doc_ids_BT`` changes) and of a sequence gets nothing added. In incremental
decoding the previous token of a step's first new token is the last one the cache saw
(``LayerKV.last_BD``); padding (``pos_BT`` = -1) is skipped, never shifted in.

Legend: B batch, T positions, D model dim.
"""

from __future__ import annotations

import torch

from superlab.model.cache import LayerKV


def previous(
    x_BTD: torch.Tensor,
    doc_ids_BT: torch.Tensor | None = None,
    kv: LayerKV | None = None,
    pos_BT: torch.Tensor | None = None,
    slot: str = "last_BD",
) -> torch.Tensor:
    """Each position's previous token's vector (zeros where there is none).

    With a cache, ``slot`` names the ``LayerKV`` attribute that carries each row's last
    vector between steps (``last_BD`` for token shift, ``last_k_BD`` for smeared keys).
    """
    B, T, D = x_BTD.shape
    if kv is None:
        prev_BTD = torch.cat([x_BTD.new_zeros(B, 1, D), x_BTD[:, :-1]], dim=1)
        if doc_ids_BT is not None:
            same_BT = torch.ones_like(doc_ids_BT, dtype=torch.bool)
            same_BT[:, 1:] = doc_ids_BT[:, 1:] == doc_ids_BT[:, :-1]
            prev_BTD = prev_BTD * same_BT[..., None].to(x_BTD.dtype)
        return prev_BTD
    assert pos_BT is not None
    # Column 0 is the cache's last token (zeros for a row that has none); column t + 1 is
    # this step's token t. A token's previous is the last valid column before it.
    kept = getattr(kv, slot)
    last_BD = kept if kept is not None else x_BTD.new_zeros(B, D)
    if last_BD.shape[0] != B:
        raise ValueError(f"cache holds {last_BD.shape[0]} rows, the step has {B}")
    all_BtD = torch.cat([last_BD[:, None].to(x_BTD.dtype), x_BTD], dim=1)
    col_BT = torch.arange(1, T + 1, device=x_BTD.device).expand(B, T)
    marks_Bt = torch.cat([col_BT.new_zeros(B, 1), torch.where(pos_BT >= 0, col_BT, 0)], dim=1)
    latest_Bt = marks_Bt.cummax(dim=1).values  # last valid column at or before each column
    prev_BTD = all_BtD.gather(1, latest_Bt[:, :T, None].expand(-1, -1, D))
    setattr(kv, slot, all_BtD.gather(1, latest_Bt[:, T:, None].expand(-1, -1, D))[:, 0])
    return prev_BTD
