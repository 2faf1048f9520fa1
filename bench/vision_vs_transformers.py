"""Early fusion: vision tower speed against transformers, and what images add on a VQA task.

1. ``vision_encoder_speedup_vs_transformers``: forward + backward of the vision tower and
   projector (``superlab.model.vision.VisionTower``) against transformers'
   ``Llama4VisionModel`` + ``Llama4MultiModalProjector`` holding the same weights (copied
   by our import mapping; outputs checked equal first), fp32 on CPU, transformers' default
   SDPA attention. Median seconds per step over alternating repeats; speedup = theirs / ours.
2. ``vqa_accuracy_gain_over_text_only``: ``recipes/vision-tiny.yaml`` run through
   ``superlab run``'s data, train and eval stages (``runs/vision-tiny/``): the data stage
   builds the generated shapes task (train and held-out splits from different seeds), the
   train stage trains the model and a text-only control (the same model without the tower,
   same seed, steps and batches of the same questions, without the images), the eval stage
   writes held-out exact match of the greedy answer per question type for both to
   ``eval.json``; gain = model - control overall, absolute. A finished run is read back,
   not retrained (remove its directory to measure again).

    .venv/bin/python bench/vision_vs_transformers.py --quick   # 300 steps, 1,500 images
    .venv/bin/python bench/vision_vs_transformers.py           # the recipe's steps
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from superlab.config.recipe import load_recipe
from superlab.config.vision import VisionConfig
from superlab.model.hf_arch.llama4_vision import tensor_names
from superlab.model.vision import VisionTower

ROOT = Path(__file__).resolve().parent.parent
QUICK_STEPS = 300


def _speed(quick: bool) -> float:
    from transformers import Llama4Config
    from transformers.models.llama4 import modeling_llama4 as hf

    v = VisionConfig(
        image_size=112,
        patch_size=14,
        d_model=256,
        n_layers=4,
        n_heads=8,
        ffn_hidden=1024,
        projector_dim=512,
    )
    d_text, batch = 384, 16
    config = Llama4Config(
        text_config={"hidden_size": d_text},
        vision_config={
            "hidden_size": v.d_model,
            "num_hidden_layers": v.n_layers,
            "num_attention_heads": v.n_heads,
            "intermediate_size": v.ffn_hidden,
            "image_size": v.image_size,
            "patch_size": v.patch_size,
            "vision_output_dim": v.projector_dim,
            "projector_input_dim": v.projector_dim,
            "projector_output_dim": v.projector_dim,
        },
    )
    torch.manual_seed(0)
    theirs_tower = hf.Llama4VisionModel(config.vision_config).float()
    theirs_proj = hf.Llama4MultiModalProjector(config).float()
    ours = VisionTower(v, d_text)
    their_state = {f"vision_model.{k}": p for k, p in theirs_tower.state_dict().items()}
    their_state |= {f"multi_modal_projector.{k}": p for k, p in theirs_proj.state_dict().items()}
    ours.load_state_dict(
        {o.removeprefix("vision."): their_state[h] for h, o in tensor_names(v)}, strict=True
    )
    x = torch.randn(
        batch, 3, v.image_size, v.image_size, generator=torch.Generator().manual_seed(0)
    )

    def theirs(px: torch.Tensor) -> torch.Tensor:
        return theirs_proj(theirs_tower(px).last_hidden_state)

    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-4, rtol=1e-4)

    def step(fn: Any) -> float:
        px = x.clone().requires_grad_(False)
        t0 = time.perf_counter()
        fn(px).square().mean().backward()
        return time.perf_counter() - t0

    times: dict[str, list[float]] = {"ours": [], "transformers": []}
    for _ in range(2):  # warm-up
        step(ours), step(theirs)
    for _ in range(5 if quick else 15):
        times["ours"].append(step(ours))
        times["transformers"].append(step(theirs))
    med = {k: statistics.median(t) for k, t in times.items()}
    print(
        f"vision tower + projector fwd+bwd, {batch} images of {v.image_size}px, "
        f"{v.n_layers} layers of {v.d_model}: ours {med['ours'] * 1e3:.1f} ms, "
        f"transformers {med['transformers'] * 1e3:.1f} ms"
    )
    return med["transformers"] / med["ours"]


def _vqa(quick: bool, runs_dir: Path, threads: int | None) -> float:
    """Run ``recipes/vision-tiny.yaml`` (data, train with the control, eval) through
    ``superlab run``'s stages; the gain from its eval.json."""
    from superlab.config import Recipe
    from superlab.run import run_recipe
    from superlab.run.display import Display

    raw = load_recipe(ROOT / "recipes" / "vision-tiny.yaml").model_dump(mode="json")
    if quick:  # fewer images and steps, its own run directory
        raw["name"] += "-quick"
        raw["data"]["images"] |= {"train_images": 1500, "heldout_images": 300}
        raw["train"] |= {"steps": QUICK_STEPS, "eval_every": 100, "ckpt_every": 100}
    if threads:
        raw["name"] += f"-t{threads}"
        raw["train"]["threads"] = threads
    recipe = Recipe.model_validate(raw)
    t0 = time.perf_counter()
    result = run_recipe(recipe, runs_dir, ["data", "train", "eval"], Display(quiet=True))
    for o in result.outcomes:
        print(f"  stage {o.name}: {o.status} ({o.seconds:.0f} s) {o.summary}")
    vqa = json.loads(result.run.eval.read_text())["vqa"]
    for name in ("vision", "text_only"):
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in vqa[name].items()))
    print(
        f"{vqa['questions']} held-out questions; {recipe.train.steps} steps each;"
        f" {time.perf_counter() - t0:.0f} s in all; {result.run.eval}"
    )
    return float(vqa["gain"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, steps and images")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-vqa", action="store_true")
    parser.add_argument("--threads", type=int, help="torch threads (default: the recipe's)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress shows when piped to a file
    results = []
    if not args.skip_speed:
        speed = _speed(args.quick)
        ok = "PASS" if speed >= 1.0 else "FAIL"
        results.append(
            f"RESULT vision_encoder_speedup_vs_transformers {speed:.2f} target >= 1.0 {ok}"
        )
    if not args.skip_vqa:
        gain = _vqa(args.quick, args.runs_dir, args.threads)
        ok = "PASS" if gain > 0.3 else "FAIL"
        results.append(f"RESULT vqa_accuracy_gain_over_text_only {gain:.3f} target > 0.3 {ok}")
    print("\n".join(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
