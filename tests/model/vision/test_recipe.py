"""recipes/vision-tiny.yaml agrees with the image task's vocabulary and trains a step."""

from pathlib import Path

import numpy as np
import pytest
import torch

from superlab.config.recipe import load_recipe
from superlab.data.images import scenes, text
from superlab.model.transformer import Transformer
from superlab.model.vision import normalize

pytest.importorskip("PIL.Image", reason="pillow is not installed (superlab[vision])")
RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "vision-tiny.yaml"


def test_tiny_recipe_matches_the_task_and_takes_a_training_step():
    cfg = load_recipe(RECIPE).model
    v = cfg.vision
    assert v is not None and cfg.vocab_size is not None and cfg.vocab_size >= text.VOCAB
    assert (v.image_token_id, v.image_start_id, v.image_end_id) == (
        text.IMAGE,
        text.IMAGE_START,
        text.IMAGE_END,
    )
    assert v.tokens_per_image == scenes.GRID**2  # one image token per cell of the grid
    examples = scenes.examples(2, 0, v.image_size)
    rows = [{"image": i, **q.__dict__} for i, (_, qs) in enumerate(examples) for q in qs[:1]]
    x, y = text.batch(rows, v.tokens_per_image)
    assert x.shape[1] <= cfg.max_seq_len
    images = normalize(np.stack([img for img, _ in examples]), v)
    torch.manual_seed(0)
    model = Transformer(cfg)
    loss = model(torch.from_numpy(x), torch.from_numpy(y), pixels_NCHW=images).loss
    assert loss is not None and torch.isfinite(loss)
    loss.backward()
    assert model.vision is not None and model.vision.encoder.pos_LD.grad.abs().sum() > 0
