"""Held-out VQA on the image task: exact match per question type, with and without images.

The data stage stores the held-out split in ``data/images/`` (``heldout.tokens.npz``,
``heldout.pixels.npy``; layout in ``superlab.data.images.shards``); the train stage
trains the recipe's model and, with ``eval.vqa.control``, a text-only control on the same
questions without their images (``ckpt/text_only/``). A question is right when the model's
greedy answer is exactly the answer: with teacher forcing that is when the argmax at every
target position (each answer token and ``<eos>``) is the target, which is what is checked.
The gain (model minus control) is what the images contributed.

Legend: B batch, T sequence, Q questions.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from superlab.model.vision import normalize

PAD = 0  # tokens.npz pads inputs with 0 and targets with -100
CONTROL = "text_only"  # the control's ckpt/ subdirectory (superlab.train.vision)


@torch.no_grad()
def exact_match(
    model: nn.Module, images_dir: Path, with_images: bool, batch_size: int = 64
) -> list[bool]:
    """Per held-out question: is the model's greedy answer exactly right?"""
    tokens = np.load(images_dir / "heldout.tokens.npz")
    key = "" if with_images else "_text"
    x_QT, y_QT, image_Q = tokens[f"x{key}"], tokens[f"y{key}"], tokens["image"]
    pixels = np.load(images_dir / "heldout.pixels.npy", mmap_mode="r") if with_images else None
    vision = model.cfg.vision  # type: ignore[attr-defined]
    if with_images and vision is None:
        raise ValueError("a text-only model cannot be scored with the images")
    device = next(model.parameters()).device
    model.eval()
    right: list[bool] = []
    for i in range(0, len(x_QT), batch_size):
        x = x_QT[i : i + batch_size]
        t = int((x != PAD).any(axis=0).nonzero()[0].max()) + 1
        x_BT = torch.from_numpy(x[:, :t].astype(np.int64)).to(device)
        y_BT = torch.from_numpy(y_QT[i : i + batch_size, :t].astype(np.int64)).to(device)
        px = None
        if pixels is not None:
            px = normalize(np.asarray(pixels[image_Q[i : i + batch_size]]), vision).to(device)
        pred_BT = model(x_BT, pixels_NCHW=px).logits_BTV.argmax(-1)
        right += ((pred_BT == y_BT) | (y_BT == -100)).all(dim=1).tolist()
    return right


def by_type(right: list[bool], types: np.ndarray) -> dict[str, float]:
    """Accuracy per question type, and ``all`` over every question."""
    groups: dict[str, list[bool]] = defaultdict(list)
    for ok, kind in zip(right, types.tolist(), strict=True):
        groups[kind].append(ok)
    out = {k: sum(v) / len(v) for k, v in sorted(groups.items())}
    out["all"] = sum(right) / len(right) if right else 0.0
    return out


def evaluate(
    model: nn.Module, control: nn.Module | None, images_dir: Path, batch_size: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``vqa`` summary of eval.json and one row per held-out question."""
    types = np.load(images_dir / "heldout.tokens.npz")["type"]
    right = exact_match(model, images_dir, True, batch_size)
    summary: dict[str, Any] = {"questions": len(right), "vision": by_type(right, types)}
    rows = [
        {"id": q, "type": str(kind), "vision": ok}
        for q, (kind, ok) in enumerate(zip(types.tolist(), right, strict=True))
    ]
    if control is not None:
        plain = exact_match(control, images_dir, False, batch_size)
        summary[CONTROL] = by_type(plain, types)
        summary["gain"] = summary["vision"]["all"] - summary[CONTROL]["all"]
        summary["gain_by_type"] = {
            k: summary["vision"][k] - summary[CONTROL][k] for k in summary[CONTROL] if k != "all"
        }
        for row, ok in zip(rows, plain, strict=True):
            row[CONTROL] = ok
    return summary, rows
