"""Training on the image task (``data.images``): the recipe's model on questions about
images and, for ``eval.vqa.control``, a text-only control on the same questions without
them.

The data stage writes each split to ``data/images/`` (``<split>.pixels.npy`` and
``<split>.tokens.npz``, laid out in ``superlab.data.images.shards``); this module reads
only those files (stages talk through the run directory). Each model is a ``PostStage``
on the trainer's loop (AdamW, schedule, clipping, checkpoints with exact resume,
``metrics.jsonl``):

- ``train``: the recipe's model (with ``model.vision``), checkpoints in ``ckpt/``; a batch
  is the questions' token ids with their image's placeholders, and the images;
- ``text_only``: the same model without the tower, the same seed (so the same initial
  text weights), steps and batches of the same questions, without the image's tokens;
  checkpoints in ``ckpt/text_only/``, metrics rows tagged ``"stage": "text_only"``.

The loss is taken on the answer tokens and ``<eos>`` only: every other target is -100 in
``tokens.npz``, so the question text, the image and the padding carry no gradient.

Legend: B batch, T sequence, Q questions, N images, H = W side, C channels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from superlab.common import RunDir, StageContext, StageError
from superlab.config.recipe import ModelConfig, Recipe, TrainConfig
from superlab.config.vision import VisionConfig
from superlab.model.vision import normalize
from superlab.train.objective import Job, StepOut
from superlab.train.order import Order, Ordered
from superlab.train.trainer import Trainer

CONTROL = "text_only"  # the control's stage name and its ckpt/ subdirectory
PAD = 0  # tokens.npz pads inputs with 0 and targets with -100


class ImageBatch(NamedTuple):
    """Inputs, targets (-100 off the answers), and the rows' images (None: the control)."""

    x_BT: torch.Tensor
    y_BT: torch.Tensor
    pixels_NCHW: torch.Tensor | None


@dataclass
class ImageSplit:
    """One split of the image task as the data stage stored it."""

    x_QT: np.ndarray  # int16 inputs, with or without the image's tokens
    y_QT: np.ndarray  # int16 targets
    image_Q: np.ndarray  # the row of ``pixels_NHWC`` each question is about
    type_Q: np.ndarray  # question types (str)
    pixels_NHWC: np.ndarray | None  # uint8 images; None for the text-only control


def read_split(images_dir: Path, split: str, with_images: bool) -> ImageSplit:
    """``data/images/<split>``'s questions (and images); StageError if it is not finished."""
    done = images_dir / f"{split}.done"
    if not done.is_file():
        raise StageError(f"{done} is missing: split {split!r} is not built; run the data stage")
    tokens = np.load(images_dir / f"{split}.tokens.npz")
    key = "" if with_images else "_text"
    pixels = np.load(images_dir / f"{split}.pixels.npy", mmap_mode="r") if with_images else None
    return ImageSplit(tokens[f"x{key}"], tokens[f"y{key}"], tokens["image"], tokens["type"], pixels)


def make_batch(split: ImageSplit, rows: list[int], vision: VisionConfig | None) -> ImageBatch:
    """The questions ``rows`` as a batch, cut after the longest row's last token."""
    x_BT = split.x_QT[rows]
    t = int((x_BT != PAD).any(axis=0).nonzero()[0].max()) + 1
    pixels = None
    if vision is not None:
        assert split.pixels_NHWC is not None
        pixels = normalize(np.asarray(split.pixels_NHWC[split.image_Q[rows]]), vision)
    return ImageBatch(
        torch.from_numpy(x_BT[:, :t].astype(np.int64)),
        torch.from_numpy(split.y_QT[rows, :t].astype(np.int64)),
        pixels,
    )


class ImageLoader(Ordered):
    """Batches of questions in the ``Order``'s resumable order."""

    def __init__(self, split: ImageSplit, order: Order, vision: VisionConfig | None) -> None:
        self.split, self.order, self.vision = split, order, vision

    def next_batch(self) -> ImageBatch:
        return make_batch(self.split, self.order.next_indices(), self.vision)


class AnswerLoss:
    """Mean cross-entropy over the batch's answer tokens (the model masks image positions)."""

    def loss(self, model: nn.Module, batch: ImageBatch) -> StepOut:
        out = model(batch.x_BT, batch.y_BT, pixels_NCHW=batch.pixels_NCHW)
        return StepOut(out.loss, out.aux_loss, int((batch.x_BT != PAD).sum()), out.moe_stats)


class ImageTask:
    """The image task as the trainer's stage (``PostStage``): the recipe's model, or with
    ``with_images=False`` the text-only control."""

    def __init__(self, recipe: Recipe, run: RunDir, with_images: bool = True) -> None:
        if recipe.model.vision is None:
            raise StageError("data.images needs a model with model.vision (the image tower)")
        self.recipe, self.run, self.with_images = recipe, run, with_images
        self.name = "train" if with_images else CONTROL
        self.tc: TrainConfig = recipe.train

    @property
    def model_cfg(self) -> ModelConfig:
        m = self.recipe.model
        return m if self.with_images else m.model_copy(update={"vision": None})

    def build(self, rank: int, world_size: int, device: torch.device) -> Job:
        tc, cfg = self.tc, self.model_cfg
        images = self.run.data / "images"
        train = read_split(images, "train", self.with_images)
        heldout = read_split(images, "heldout", self.with_images)
        if train.x_QT.shape[1] > cfg.max_seq_len:
            raise StageError(
                f"model.max_seq_len ({cfg.max_seq_len}) is shorter than the image task's"
                f" longest question ({train.x_QT.shape[1]} tokens)"
            )
        order = Order(
            len(train.x_QT), tc.batch_size, seed=tc.seed, rank=rank, world_size=world_size
        )
        held_order = Order(
            len(heldout.x_QT), tc.batch_size, shuffle=False, rank=rank, world_size=world_size
        )
        ckpt = self.run.ckpt if self.with_images else self.run.ckpt / CONTROL
        return Job(
            self.name,
            ckpt,
            cfg,
            ImageLoader(train, order, cfg.vision),
            ImageLoader(heldout, held_order, cfg.vision),
            AnswerLoss(),
        )


def run(ctx: StageContext) -> dict[str, Any]:
    """Train the recipe's model on the image task, then (``eval.vqa.control``) the
    text-only control; each resumes from its newest checkpoint."""
    recipe = ctx.recipe
    summary = Trainer(recipe, ctx.run, ctx, post=ImageTask(recipe, ctx.run)).train()
    vqa = recipe.eval.vqa
    if vqa is not None and vqa.control:
        ctx.log.info("train: the text-only control (eval.vqa.control), same questions, no images")
        control = Trainer(recipe, ctx.run, ctx, post=ImageTask(recipe, ctx.run, False)).train()
        summary[CONTROL] = {k: control[k] for k in ("steps", "final_loss", "heldout_loss")}
    summary["images"] = json.loads((ctx.run.data / "images" / "train.done").read_text())["images"]
    return summary
