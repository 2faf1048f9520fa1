"""An image-task run through ``superlab run``: data, train (model and text-only control),
eval with held-out exact match per question type; resume and the refusals."""

import json
from pathlib import Path

import numpy as np
import pytest

from superlab.config import Recipe
from superlab.config.recipe import load_recipe
from superlab.run import run_recipe
from superlab.run.runner import StageFailed

pytest.importorskip("PIL.Image", reason="pillow is not installed (superlab[vision])")
RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "vision-tiny.yaml"


def tiny(**eval_vqa) -> Recipe:
    """recipes/vision-tiny.yaml shrunk: 1 layer of 32, 12 train / 6 held-out images, 3 steps."""
    r = load_recipe(RECIPE).model_dump(mode="json")
    r["model"] |= {"d_model": 32, "n_layers": 1, "n_heads": 2, "n_kv_heads": 1}
    r["model"]["vision"] |= {
        "d_model": 16,
        "n_layers": 1,
        "n_heads": 2,
        "ffn_hidden": 64,
        "projector_dim": 16,
    }
    r["data"]["images"] |= {"train_images": 12, "heldout_images": 6}
    r["train"] |= {
        "steps": 3,
        "batch_size": 8,
        "threads": 1,
        "eval_every": 3,
        "eval_batches": 1,
        "ckpt_every": 3,
        "tensorboard": False,
    }
    r["eval"]["vqa"] |= eval_vqa
    return Recipe.model_validate(r)


def test_the_tiny_recipe_runs_data_train_and_eval_with_a_control(tmp_path):
    recipe = tiny()
    result = run_recipe(recipe, tmp_path, ["data", "train", "eval"])
    assert [o.status for o in result.outcomes] == ["ran"] * 3
    root = tmp_path / recipe.name
    images = root / "data" / "images"
    done = {s: json.loads((images / f"{s}.done").read_text()) for s in ("train", "heldout")}
    assert done["train"]["settings"]["seed"] == 1 and done["heldout"]["settings"]["seed"] == 2
    assert not np.array_equal(
        np.load(images / "train.pixels.npy")[:6], np.load(images / "heldout.pixels.npy")
    )
    assert (root / "ckpt" / "step-3" / "state.json").is_file()
    control = json.loads((root / "ckpt" / "text_only" / "step-3" / "model_config.json").read_text())
    assert control["vision"] is None  # the control has no tower
    ev = json.loads((root / "eval.json").read_text())["vqa"]
    n = done["heldout"]["questions"]
    assert ev["questions"] == n
    types = {"count", "color", "shape", "left_of", "size"}
    assert set(ev["vision"]) == set(ev["text_only"]) == types | {"all"}
    assert ev["gain"] == pytest.approx(ev["vision"]["all"] - ev["text_only"]["all"])
    rows = [json.loads(x) for x in (root / "eval" / "vqa.jsonl").read_text().splitlines()]
    assert len(rows) == n
    assert ev["vision"]["all"] == pytest.approx(sum(r["vision"] for r in rows) / n)
    color = [r["text_only"] for r in rows if r["type"] == "color"]
    assert ev["text_only"]["color"] == pytest.approx(sum(color) / len(color))
    metrics = [json.loads(x) for x in (root / "metrics.jsonl").read_text().splitlines()]
    assert {r.get("stage") for r in metrics} == {"train", "text_only"}
    # Rerun: every stage complete, nothing redone.
    assert run_recipe(recipe, tmp_path, ["data", "train", "eval"]).nothing_to_do


def test_an_interrupted_data_stage_keeps_the_finished_split(tmp_path):
    recipe = tiny()
    run_recipe(recipe, tmp_path, ["data"])
    images = tmp_path / recipe.name / "data" / "images"
    train_made = (images / "train.pixels.npy").stat().st_mtime_ns
    (images / "heldout.done").unlink()  # as if killed before the held-out marker
    (tmp_path / recipe.name / ".done" / "data.json").unlink()
    run_recipe(recipe, tmp_path, ["data"])
    assert (images / "train.pixels.npy").stat().st_mtime_ns == train_made
    assert (images / "heldout.done").is_file()
    log = (tmp_path / recipe.name / "run.log").read_text()
    assert "image split train kept" in log and "image split heldout built" in log


def test_without_a_control_eval_scores_the_model_alone(tmp_path):
    recipe = tiny(control=False)
    run_recipe(recipe, tmp_path, ["data", "train", "eval"])
    root = tmp_path / recipe.name
    assert not (root / "ckpt" / "text_only").exists()
    ev = json.loads((root / "eval.json").read_text())["vqa"]
    assert "text_only" not in ev and "gain" not in ev and 0 <= ev["vision"]["all"] <= 1


def test_refusals_name_the_field(tmp_path):
    r = tiny().model_dump(mode="json")
    r["model"]["vision"]["image_token_id"] = 7
    with pytest.raises(StageFailed, match=r"model\.vision\.image_token_id is 7"):
        run_recipe(Recipe.model_validate(r), tmp_path, ["data"])
    r = tiny().model_dump(mode="json")
    r["eval"]["perplexity"] = True
    r["name"] = "ppl"
    run_recipe(Recipe.model_validate(r), tmp_path, ["data", "train"])
    with pytest.raises(StageFailed, match=r"set eval\.perplexity: false"):
        run_recipe(Recipe.model_validate(r), tmp_path, ["eval"])
    r = tiny().model_dump(mode="json")
    r["data"]["images"]["heldout_seed"] = 1
    with pytest.raises(ValueError, match="heldout_seed"):
        Recipe.model_validate(r)


def test_the_serve_stage_skips_an_image_task_run(tmp_path):
    from superlab.common import RunDir, StageContext
    from superlab.serve.stage import run as serve_stage

    ctx = StageContext(recipe=tiny(), run=RunDir(tmp_path))
    assert "image-task" in serve_stage(ctx)["skipped"]
