"""The tiny recipe's model can tell its images apart: what was broken when it learned
nothing from them (docs/multimodal.md, "Why the tiny model did not read the images")."""

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


def _color_questions(n: int) -> tuple[np.ndarray, list[dict[str, str]]]:
    """``n`` scenes that have a color question, and that question each."""
    images, rows = [], []
    for pixels, qas in scenes.examples(3 * n, seed=11, side=48):
        color = [q for q in qas if q.type == "color"]
        if color and len(rows) < n:
            rows.append({"image": len(images), **color[0].__dict__})
            images.append(pixels)
    return np.stack(images), rows


def test_image_tokens_start_at_the_scale_of_their_input_not_far_below_the_text():
    cfg = load_recipe(RECIPE).model
    torch.manual_seed(0)
    model = Transformer(cfg)
    assert model.vision is not None
    images, _ = _color_questions(8)
    with torch.no_grad():
        tokens = model.vision(normalize(images, cfg.vision))
    text_rms = model.tok_emb.weight.pow(2).mean().sqrt()
    # N(0, 0.02) projector weights gave 0.0035, a fifth of the embeddings' 0.02.
    assert tokens.pow(2).mean().sqrt() > 5 * text_rms


@pytest.fixture
def one_thread():
    """One torch thread: on a shared machine, threads spinning against each other made
    this test ~20x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_the_recipes_model_memorises_color_questions_about_its_images(one_thread):
    """16 color questions: the answers need the picture (the text-only model cannot beat
    the questions' priors). With Llama 4's [-1, 1] pixels and N(0, 0.02) projector weights
    this stayed at the text-only accuracy."""
    cfg = load_recipe(RECIPE).model
    cfg = cfg.model_copy(update={"n_layers": 2})
    assert cfg.vision is not None
    images, rows = _color_questions(16)
    x, y = (torch.from_numpy(a) for a in text.batch(rows, cfg.vision.tokens_per_image))
    pixels = normalize(images, cfg.vision)
    torch.manual_seed(0)
    model = Transformer(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    for _ in range(90):
        out = model(x, y, pixels_NCHW=pixels)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    with torch.no_grad():
        pred = model(x, pixels_NCHW=pixels).logits_BTV.argmax(-1)
    right = ((pred == y) | (y == -100)).all(dim=1).float().mean().item()
    assert right == 1.0
